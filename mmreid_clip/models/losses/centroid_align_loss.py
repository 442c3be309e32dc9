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
    def padded_centroids(features: torch.Tensor, labels: torch.Tensor):
        """Identity centroids without reading a value back to the host.

        Returns ``(C, P)``: ``C`` is B x D, its first ``P`` rows the mean
        features of the identities in ``labels`` (sorted by label), the
        other rows zero; ``P`` (a 0-d tensor) is the number of identities.
        The group of each sample comes from a stable sort and a cumulative
        sum instead of ``torch.unique``, whose output size would need a
        synchronisation.
        """
        b = len(labels)
        order = labels.argsort(stable=True)
        ordered = labels[order]
        first = torch.ones_like(ordered, dtype=torch.bool)
        first[1:] = ordered[1:] != ordered[:-1]
        group = torch.empty_like(order)
        group[order] = first.long().cumsum(0) - 1
        # B x B row-stochastic averaging matrix (rows >= P empty): one
        # matmul, no loop.
        assign = torch.zeros(
            b, b, dtype=features.dtype, device=features.device)
        assign[group, torch.arange(b, device=group.device)] = 1
        assign = assign / assign.sum(dim=1, keepdim=True).clamp(min=1)
        return assign @ features, first.sum()

    @classmethod
    def centroids(cls, features: torch.Tensor,
                  labels: torch.Tensor) -> torch.Tensor:
        """P x D mean features of the identities in ``labels`` (sorted by
        label)."""
        padded, num = cls.padded_centroids(features, labels)
        return padded[:int(num)]

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
        mine, num = self.padded_centroids(x, labels)
        theirs, _ = self.padded_centroids(t, labels)
        # the mean over the P x D entries of the P real centroids (the
        # padding rows are zero on both sides)
        diff = mine - theirs
        return self.loss_weight * diff.pow(2).sum() / (num * x.shape[1])
