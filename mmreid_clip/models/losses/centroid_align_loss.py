"""Per-identity batch-centroid alignment of CCAF's I2I (arXiv
2406.09198; ``docs/methods/ccaf.md`` §7 and §12 row 9)."""
import torch
import torch.nn as nn

from mmreid_clip.registry import MODELS

__all__ = ['CentroidAlignLoss']


@MODELS.register_module()
class CentroidAlignLoss(nn.Module):
    """MSE between the per-identity centroids of two feature sets (I2I).

    For each identity p present in the batch, with I_p = {i : y_i = p},
    c_p = mean_{i in I_p} f_i (raw view) and c^s_p = mean_{i in I_p} g_i
    (shielding view)::

        L_I2I = (1/P) sum_p (1/D) ||c_p - c^s_p||^2

    i.e. the MSE averaged over feature dimensions, then over the P
    identities of the batch (the "mutual learning" form MAPL credits to
    CCAF; a reconstructed choice, ``docs/methods/ccaf.md`` §12 row 9).
    CCAF sums this over the feature
    spaces G = {BN1(f12), BN2(fp)}; call the loss once per space and add.

    Both views get gradients by default ("mutual"); ``detach_target=True``
    stops the gradient into the second set, making the shielding branch a
    fixed teacher (``docs/methods/ccaf.md`` §7).

    Args:
        detach_target (bool): Stop-gradient on ``target_features``.
            Defaults to False.
        loss_weight (float): lambda_I2I. Defaults to 1.0.
        loss_name (str): Key in the loss dict. Defaults to 'loss_i2i'.
    """

    def __init__(self,
                 detach_target: bool = False,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_i2i') -> None:
        super().__init__()
        self.detach_target = detach_target
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    @staticmethod
    def centroids(features: torch.Tensor,
                  labels: torch.Tensor) -> torch.Tensor:
        """P x D mean features of the identities in ``labels`` (sorted by
        label)."""
        _, inverse = torch.unique(labels, return_inverse=True)
        # P x B row-stochastic averaging matrix: one matmul, no loop.
        assign = torch.zeros(
            int(inverse.max()) + 1,
            len(labels),
            dtype=features.dtype,
            device=features.device)
        assign[inverse, torch.arange(len(labels), device=inverse.device)] = 1
        assign = assign / assign.sum(dim=1, keepdim=True)
        return assign @ features

    def forward(self, features: torch.Tensor, target_features: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            features (Tensor): B x D features of the raw view.
            target_features (Tensor): B x D features of the paired view
                (shielding images), row i from the same sample as row i of
                ``features``.
            labels (Tensor): B identity labels.

        Returns:
            Tensor: The weighted scalar loss.
        """
        if features.dim() != 2 or features.shape != target_features.shape \
                or features.shape[0] == 0:
            raise ValueError(
                'CentroidAlignLoss expects two B x D feature '
                f'sets of one shape with B > 0, got {tuple(features.shape)}'
                f' and {tuple(target_features.shape)}')
        labels = labels.view(-1)
        if labels.numel() != features.shape[0]:
            raise ValueError(f'CentroidAlignLoss got {labels.numel()} labels '
                             f'for {features.shape[0]} features')
        if self.detach_target:
            target_features = target_features.detach()
        x = features if features.dtype == torch.float64 else features.float()
        t = target_features.to(x.dtype)
        diff = self.centroids(x, labels) - self.centroids(t, labels)
        return self.loss_weight * diff.pow(2).mean()
