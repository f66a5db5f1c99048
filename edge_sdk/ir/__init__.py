"""The bottom layer: what a model is once read (:mod:`.graph`). Frontends produce it; every
other package reads it. It imports nothing of edge-sdk's above :mod:`edge_sdk.errors`."""

from edge_sdk.ir.graph import Graph, Operator, QuantParams, Tensor

__all__ = ["Graph", "Operator", "QuantParams", "Tensor"]
