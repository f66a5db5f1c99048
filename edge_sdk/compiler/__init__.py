"""INT8 TFLite graph -> integer-only C: lowering, memory planning, code generation, report.

The package's names are loaded on first use (:mod:`edge_sdk.compiler.compile` imports TVM), so
that importing a light submodule such as :mod:`edge_sdk.compiler.targets` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_sdk.compiler.compile import PREFERENCES, CompiledModel, compile_graph
    from edge_sdk.compiler.lower import supported_ops

__all__ = ["PREFERENCES", "CompiledModel", "compile_graph", "supported_ops"]

_WHERE = {"PREFERENCES": "compile", "CompiledModel": "compile", "compile_graph": "compile",
          "supported_ops": "lower"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"edge_sdk.compiler.{_WHERE[name]}"), name)
    if not name.startswith("_") and importlib.util.find_spec(f"edge_sdk.compiler.{name}"):
        return importlib.import_module(f"edge_sdk.compiler.{name}")
    raise AttributeError(f"module 'edge_sdk.compiler' has no attribute '{name}'")
