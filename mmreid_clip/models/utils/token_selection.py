"""Attention-ranked token selection of CFine (arXiv 2210.10276;
``docs/methods/cfine.md`` §3).

CFine (Yan et al., IEEE TIP 2023) ranks the tokens of each modality by the
last-layer attention of the global token and splits the top of the ranking
into groups of K tokens: G1 = ranks 1..K feeds MGF (cfine.md §4) and FCD
(§6), G2 = ranks K+1..2K feeds MGF, and their union U = ranks 1..2K feeds
CFR (§5).

The selection is one ``argsort`` plus one ``gather`` for the whole batch;
the indices carry no gradient, the gathered features do.
"""
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import torch
import torch.nn as nn

from mmreid_clip.registry import MODELS

__all__ = [
    'TokenGroups', 'TokenSelector', 'compute_num_selected', 'select_tokens'
]


def compute_num_selected(num_tokens: int, ratio: float) -> int:
    """Group size K = floor(ratio * N) (cfine.md §3).

    N is the *padded* sequence length, so K is the same for every sample
    (197 image tokens at 0.1 give 19; 100 text tokens at 0.2 give 20).
    The product is taken on the decimal value of ``ratio`` (``Fraction`` of
    its shortest repr), so ``0.29 * 100`` gives 29 and not the 28 that the
    binary float product 28.999999999999996 would truncate to; the two
    agree on every ratio the configs use.

    Args:
        num_tokens (int): Padded sequence length N (global token included).
        ratio (float): Selection ratio in (0, 1].

    Returns:
        int: K.
    """
    if not 0 < ratio <= 1:
        raise ValueError(f'ratio must be in (0, 1], got {ratio}')
    return math.floor(Fraction(repr(float(ratio))) * num_tokens)


@dataclass
class TokenGroups:
    """The ranked tokens kept by :func:`select_tokens`.

    All selected ranks are stored once, in descending-score order; group j
    (0-based) is the slice of ranks ``j*K .. (j+1)*K - 1`` and the union U
    is the whole of it, so G1 = ``group(0)``, G2 = ``group(1)``.

    Attributes:
        tokens (Tensor): B x (G*K) x W gathered token features (the union U),
            best-ranked first. Differentiable w.r.t. the input tokens.
        indices (Tensor): B x (G*K) int64 positions of ``tokens`` in the
            input sequence.
        valid (Tensor | None): B x (G*K) bool, True where a slot holds a real
            token. ``None`` in the faithful mode (every slot counts, PAD and
            global included, as in the official code, cfine.md §3); a tensor
            with ``exclude_padding=True``, where slots that fall on
            the global token or on padding are False and must be masked by
            the consumers (MGF self-attention, CFR softmax, FCD).
        k (int): Group size K.
        num_groups (int): Number of groups G (2 in CFine).
    """

    tokens: torch.Tensor
    indices: torch.Tensor
    valid: Optional[torch.Tensor]
    k: int
    num_groups: int

    def _slice(self, j: int) -> slice:
        if not 0 <= j < self.num_groups:
            raise IndexError(
                f'group {j} out of range for {self.num_groups} groups')
        return slice(j * self.k, (j + 1) * self.k)

    def group(self, j: int) -> torch.Tensor:
        """B x K x W tokens of group j (0-based; G1 is j=0)."""
        return self.tokens[:, self._slice(j)]

    def group_indices(self, j: int) -> torch.Tensor:
        """B x K positions of group j."""
        return self.indices[:, self._slice(j)]

    def group_valid(self, j: int) -> Optional[torch.Tensor]:
        """B x K validity of group j, or None when every slot counts."""
        return None if self.valid is None else self.valid[:, self._slice(j)]

    @property
    def union(self) -> torch.Tensor:
        """B x (G*K) x W union U (ranks 1..G*K), the CFR input."""
        return self.tokens

    @property
    def union_indices(self) -> torch.Tensor:
        return self.indices

    @property
    def union_valid(self) -> Optional[torch.Tensor]:
        return self.valid

    @property
    def group1(self) -> torch.Tensor:
        """B x K x W group G1 (ranks 1..K), the FCD input."""
        return self.group(0)

    @property
    def group2(self) -> torch.Tensor:
        """B x K x W group G2 (ranks K+1..2K)."""
        return self.group(1)


def select_tokens(tokens: torch.Tensor,
                  scores: torch.Tensor,
                  ratio: float,
                  mask: Optional[torch.Tensor] = None,
                  num_groups: int = 2,
                  exclude_padding: bool = False,
                  global_index: Optional[torch.Tensor] = None) -> TokenGroups:
    """Select the G*K most attended tokens per sample, in rank order
    (cfine.md §3).

    Faithful mode (default): the score of the global token is set to 0 and
    every position is ranked by a stable descending sort, so ties (PAD
    positions score 0 after the softmax underflows, and so does the zeroed
    global token) keep their position order. For captions shorter than
    G*K + 1 tokens, PAD positions and the global token itself therefore enter
    the groups, as in the official code.

    ``exclude_padding=True`` (the alternative of cfine.md §3): the global and
    PAD positions get
    a score of -inf instead; they sort last and the slots they land in are
    flagged invalid in :attr:`TokenGroups.valid`.

    Args:
        tokens (Tensor): B x N x W token features, all positions.
        scores (Tensor): B x N attention of the global token's query row
            (last layer, head-averaged). Only its order is used; it is
            detached.
        ratio (float): K = floor(ratio * N); 0.1 for images, 0.2 for text.
        mask (Tensor, optional): B x N bool, True on real tokens, False on
            padding (the backbones' ``mask``). Only used with
            ``exclude_padding``; the faithful mode ignores it.
        num_groups (int): Number of groups G. Defaults to 2.
        exclude_padding (bool): Never select PAD or global positions.
            Defaults to False (faithful).
        global_index (Tensor, optional): B int64 position of the global
            token. Defaults to None, meaning position 0 (image CLS, BERT
            [CLS]); an open_clip text tower passes its EOT positions.

    Returns:
        TokenGroups: The union of the groups with indices and validity.
    """
    if tokens.dim() != 3 or scores.shape != tokens.shape[:2]:
        raise ValueError('expected tokens B x N x W and scores B x N, got '
                         f'{tuple(tokens.shape)} and {tuple(scores.shape)}')
    if num_groups < 1:
        raise ValueError(f'num_groups must be >= 1, got {num_groups}')
    b, n, w = tokens.shape
    k = compute_num_selected(n, ratio)
    if k < 1 or num_groups * k > n - 1:
        raise ValueError(
            f'{num_groups} groups of K={k} tokens (ratio {ratio}) do not fit '
            f'in the {n - 1} non-global tokens of a length-{n} sequence')

    if global_index is None:
        global_index = torch.zeros(b, dtype=torch.long, device=scores.device)
    global_index = global_index.view(b, 1).long()
    # Selection is discrete; the sort never needs the scores' graph.
    scores = scores.detach().float()
    fill = float('-inf') if exclude_padding else 0.0
    scores = scores.scatter(1, global_index, fill)
    if exclude_padding and mask is not None:
        scores = scores.masked_fill(~mask.bool(), float('-inf'))

    # Stable so that tied scores rank by position, deterministically on
    # every device (topk's tie order is unspecified).
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    indices = order[:, :num_groups * k]
    gathered = tokens.gather(1, indices.unsqueeze(-1).expand(-1, -1, w))
    valid = None
    if exclude_padding:
        valid = torch.isfinite(scores.gather(1, indices))
    return TokenGroups(
        tokens=gathered,
        indices=indices,
        valid=valid,
        k=k,
        num_groups=num_groups)


@MODELS.register_module()
class TokenSelector(nn.Module):
    """Module form of :func:`select_tokens` with a fixed ratio
    (cfine.md §3).

    Args:
        ratio (float): K = floor(ratio * N). CFine: 0.1 image, 0.2 text.
        num_groups (int): Number of groups G. Defaults to 2.
        exclude_padding (bool): Alternative of cfine.md §3; see
            :func:`select_tokens`. Defaults to False (faithful).

    Call ``selector(tokens, scores, mask=None, global_index=None)`` with
    B x N x W tokens and B x N scores; returns :class:`TokenGroups`.
    """

    def __init__(self,
                 ratio: float,
                 num_groups: int = 2,
                 exclude_padding: bool = False) -> None:
        super().__init__()
        compute_num_selected(1, ratio)  # validates the ratio early
        self.ratio = ratio
        self.num_groups = num_groups
        self.exclude_padding = exclude_padding

    def num_selected(self, num_tokens: int) -> int:
        """K for a padded length N."""
        return compute_num_selected(num_tokens, self.ratio)

    def forward(self,
                tokens: torch.Tensor,
                scores: torch.Tensor,
                mask: Optional[torch.Tensor] = None,
                global_index: Optional[torch.Tensor] = None) -> TokenGroups:
        return select_tokens(
            tokens,
            scores,
            self.ratio,
            mask=mask,
            num_groups=self.num_groups,
            exclude_padding=self.exclude_padding,
            global_index=global_index)

    def extra_repr(self) -> str:
        return (f'ratio={self.ratio}, num_groups={self.num_groups}, '
                f'exclude_padding={self.exclude_padding}')
