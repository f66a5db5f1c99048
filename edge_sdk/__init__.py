"""edge-sdk: trained network -> microcontroller or edge Linux board, built on Apache TVM.

Pipeline stages, one package each: ``frontend`` (read models) -> ``compiler`` (integer lowering,
memory planning) -> ``codegen`` (C) -> ``project`` (boards, templates, build) -> ``device``
(serial protocol, QEMU, host). ``edge_sdk.api`` strings them together.

The API's names load on first use: ``import edge_sdk`` does not import TVM, so the command
line's light commands (``--version``, ``boards``, ``monitor``, ...) answer at once.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from edge_sdk.version import __version__

if TYPE_CHECKING:
    from edge_sdk.api import build, compile, generate, load, report, run, write_compiled
    from edge_sdk.errors import EdgeSDKError
    from edge_sdk.quantization import quantize

__all__ = ["EdgeSDKError", "__version__", "build", "compile", "generate", "load", "quantize",
           "report", "run", "write_compiled"]

_WHERE = {"EdgeSDKError": "errors", "quantize": "quantization",
          **{name: "api" for name in ("build", "compile", "generate", "load", "report", "run",
                                      "write_compiled")}}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"edge_sdk.{_WHERE[name]}"), name)
    if not name.startswith("_") and importlib.util.find_spec(f"edge_sdk.{name}") is not None:
        # ``edge_sdk.api.compile_for`` after a bare ``import edge_sdk``, as before names were lazy.
        return importlib.import_module(f"edge_sdk.{name}")
    raise AttributeError(f"module 'edge_sdk' has no attribute '{name}'")
