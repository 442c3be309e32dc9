"""BNNeck + identity classifiers on several features (CLIP-ReID style)."""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmreid_clip.registry import MODELS


@MODELS.register_module()
class BNNeckHead(BaseModule):
    """A BNNeck and a bias-free identity classifier per feature.

    arXiv 2211.13977; ``docs/methods/ccaf.md`` §2: CLIP-ReID puts
    ``BatchNorm1d`` on ``f12`` (``bottleneck``) and on ``fp``
    (``bottleneck_proj``), with the BN bias frozen at 0 and the weight at
    1 (Luo et al.'s BNNeck), and classifies each BN output with a
    bias-free linear layer initialised ``N(0, 0.001)``. The triplet loss
    uses the features *before* BN, the ID loss the logits.

    Args:
        in_channels: Size of each feature, in the order of ``keys``.
        num_classes: Number of training identities.
        keys: Names of the features in the backbone output dict.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_classes: int,
                 keys: Sequence[str] = ('f12', 'fp'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(keys):
            raise ValueError(f'{len(in_channels)} in_channels for '
                             f'{len(keys)} keys {list(keys)}')
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.keys = tuple(keys)
        self.num_classes = num_classes
        self.bns = nn.ModuleList()
        self.classifiers = nn.ModuleList()
        for ch in in_channels:
            bn = nn.BatchNorm1d(ch)
            nn.init.ones_(bn.weight)
            nn.init.zeros_(bn.bias)
            bn.bias.requires_grad_(False)
            fc = nn.Linear(ch, num_classes, bias=False)
            nn.init.normal_(fc.weight, std=0.001)
            self.bns.append(bn)
            self.classifiers.append(fc)

    def init_weights(self) -> None:
        """Keep the BNNeck/classifier init (mmengine would re-init)."""
        if self.init_cfg is not None:
            super().init_weights()

    def forward(self,
                feats: Dict[str, torch.Tensor],
                with_logits: bool = True,
                stats_rows: Optional[int] = None) -> Dict[str, torch.Tensor]:
        """Apply BN (and the classifiers) to ``feats[key]`` for each key.

        Args:
            feats: Backbone features by name.
            with_logits: Also apply the classifiers.
            stats_rows: In train mode, take the batch statistics (and update
                the running ones) from the first ``stats_rows`` rows only and
                normalise the remaining rows with them; None uses all rows
                (plain ``BatchNorm1d``). CCAF's shielding branch, appended
                after the raw images, uses it to keep the BN statistics those
                of raw images (``IFP(bn_stats='raw')``).

        Returns:
            dict: ``'bn_<key>'`` (``B x C``) and, with ``with_logits``,
            ``'logits_<key>'`` (``B x num_classes``) for each key.
        """
        out = {}
        for key, bn, fc in zip(self.keys, self.bns, self.classifiers):
            if key not in feats:
                raise KeyError(f'BNNeckHead needs feature {key!r}; got '
                               f'{sorted(feats)}')
            z = self._bn(bn, feats[key], stats_rows)
            out[f'bn_{key}'] = z
            if with_logits:
                out[f'logits_{key}'] = fc(z)
        return out

    def _bn(self, bn: nn.BatchNorm1d, x: torch.Tensor,
            stats_rows: Optional[int]) -> torch.Tensor:
        if stats_rows is None or not self.training or \
                stats_rows >= x.shape[0]:
            return bn(x)
        if stats_rows < 2:
            raise ValueError(f'stats_rows must be >= 2 in train mode, got '
                             f'{stats_rows}')
        ref = x[:stats_rows]
        head = bn(ref)  # updates the running statistics from ref only
        mean = ref.mean(0)
        var = ref.var(0, unbiased=False)
        rest = (x[stats_rows:] - mean) * torch.rsqrt(var + bn.eps)
        return torch.cat([head, rest * bn.weight + bn.bias])
