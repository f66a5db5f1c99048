"""edge-sdk: trained network -> microcontroller or edge Linux board, built on Apache TVM.

Pipeline stages, one package each: ``frontend`` (read models) -> ``compiler`` (integer lowering,
memory planning) -> ``codegen`` (C) -> ``project`` (boards, templates, build) -> ``device``
(serial protocol, QEMU, host). ``edge_sdk.api`` strings them together.
"""

from edge_sdk.api import build, compile, generate, load, report, run, write_compiled
from edge_sdk.errors import EdgeSDKError
from edge_sdk.quantize import quantize

__all__ = ["EdgeSDKError", "build", "compile", "generate", "load", "quantize", "report", "run",
           "write_compiled"]
__version__ = "0.1.0"
