"""Graph -> Program: each operator lowered to a TIR kernel (the operator library in
:mod:`.kernels`), constants folded, the arena planned. :mod:`edge_sdk.pipeline` runs it and
prints the C (:mod:`edge_sdk.codegen`), which this package never imports.

The package's names are loaded on first use (:mod:`.lower` imports TVM), so that importing a
light submodule such as :mod:`edge_sdk.compiler.targets` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_sdk.compiler.lower import supported_ops

__all__ = ["supported_ops"]

_WHERE = {"supported_ops": "lower"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"edge_sdk.compiler.{_WHERE[name]}"), name)
    if not name.startswith("_") and importlib.util.find_spec(f"edge_sdk.compiler.{name}"):
        return importlib.import_module(f"edge_sdk.compiler.{name}")
    raise AttributeError(f"module 'edge_sdk.compiler' has no attribute '{name}'")
