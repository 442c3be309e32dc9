"""ATen ops the ONNX exporter needs translated by hand.

``aten::sort.stable`` has no translation of its own in the exporter
(torch 2.14); :func:`translation_table` is passed to ``torch.onnx.export``
as its ``custom_translation_table``.
"""
from typing import Optional

import torch

__all__ = ['translation_table']


def _sort_stable(self,
                 stable: Optional[bool] = None,
                 dim: int = -1,
                 descending: bool = False):
    """``aten::sort.stable`` as ONNX TopK over the whole axis.

    TopK breaks ties by the lower index (ONNX spec), which is exactly a
    stable sort; CFine's token selection (``torch.sort(stable=True)``)
    depends on that order for tied attention scores.
    """
    from onnxscript import opset18 as op
    k = (
        op.Shape(self, start=dim) if dim == -1 else op.Shape(
            self, start=dim, end=dim + 1))
    return op.TopK(self, k, axis=dim, largest=1 if descending else 0, sorted=1)


def translation_table() -> dict:
    """``custom_translation_table`` for ``torch.onnx.export``."""
    return {torch.ops.aten.sort.stable: _sort_stable}
