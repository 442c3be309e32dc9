"""Label-smoothed cross-entropy of CLIP-ReID / CCAF (arXiv 2211.13977;
``docs/methods/ccaf.md`` §5)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_clip.registry import MODELS

__all__ = ['LabelSmoothCrossEntropyLoss']


@MODELS.register_module()
class LabelSmoothCrossEntropyLoss(nn.Module):
    """Cross-entropy against label-smoothed one-hot targets (L_ID, L_I2T).

    With N classes, logits z and label y::

        q = (1 - eps) onehot(y) + eps / N
        L = mean_i  -sum_k q_k log softmax(z_i)_k

    the ``CrossEntropyLabelSmooth`` of CLIP-ReID's code and mmpretrain's
    ``LabelSmoothLoss(mode='original')``, computed by
    ``F.cross_entropy(..., label_smoothing=eps)``. It replaces mmpretrain's
    loss in the CLIP-ReID / CCAF configs because that one converts index
    labels to one-hot through ``convert_to_one_hot``, which reads
    ``labels.max()`` back to the host on every call (a GPU
    synchronisation, five per CCAF step); here an out-of-range label stops
    the run through ``cross_entropy``'s own check (an ``IndexError`` on the
    CPU, a device assertion on a GPU). The values agree with mmpretrain's
    to float rounding (``tests/test_models/test_ccaf_losses.py``).

    Args:
        label_smooth_val (float): eps, in [0, 1). Defaults to 0.1.
        loss_weight (float): Defaults to 1.0.
    """

    def __init__(self,
                 label_smooth_val: float = 0.1,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if not 0 <= label_smooth_val < 1:
            raise ValueError('label_smooth_val must be in [0, 1), got '
                             f'{label_smooth_val}')
        self.label_smooth_val = float(label_smooth_val)
        self.loss_weight = loss_weight

    def forward(self, cls_score: torch.Tensor,
                label: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            cls_score (Tensor): B x N logits.
            label (Tensor): B class indices.

        Returns:
            Tensor: The weighted scalar loss (mean over the batch).
        """
        if cls_score.dim() != 2 or label.numel() != cls_score.shape[0]:
            raise ValueError(
                'LabelSmoothCrossEntropyLoss expects B x N logits and B '
                f'labels, got {tuple(cls_score.shape)} and '
                f'{tuple(label.shape)}')
        z = cls_score if cls_score.dtype == torch.float64 else \
            cls_score.float()
        return self.loss_weight * F.cross_entropy(
            z, label.view(-1).long(), label_smoothing=self.label_smooth_val)
