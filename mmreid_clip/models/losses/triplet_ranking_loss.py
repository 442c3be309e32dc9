"""Bidirectional triplet ranking loss on a similarity matrix (CFine's
``CRLoss``; arXiv 2210.10276, ``docs/methods/cfine.md`` §7.4)."""
import torch
import torch.nn as nn

from mmreid_clip.registry import MODELS

__all__ = ['TripletRankingLoss']


@MODELS.register_module()
class TripletRankingLoss(nn.Module):
    """Hardest-violating-negative triplet loss on S = S_c + S_f (§7.4).

    S is B x B with rows = images and columns = texts of the same B pairs.
    For image anchor i the positive is (i, i) *only*; negatives are the
    columns j with y_j != y_i (other same-identity columns are ignored).
    With the faithful ``mining='violating'`` a triplet exists only when some
    negative outranks the positive (S(i, j) > S(i, i), i.e.
    l_j = S(i, j) - S(i, i) + margin > margin); it then uses the hardest
    negative j* = argmax_j S(i, j)::

        L = sum_i relu(margin - S(i, i) + S(i, j*))          image anchors
          + sum_j relu(margin - S(j, j) + S(i*, j))          text anchors (S^T)

    a **sum** over anchors, not a mean (cfine.md §7.4). When one side has no
    triplet at all, the official code adds one dummy triplet (last anchor,
    its first negative) to that side; ``dummy_triplet`` replicates it.
    ``mining='hardest'`` is the VSE++ max-violation alternative:
    every anchor with a negative uses its hardest one, violating
    or not, and no dummy is needed.

    Args:
        margin (float): alpha. Defaults to 0.2.
        mining (str): 'violating' (faithful) or 'hardest'. Defaults to
            'violating'.
        dummy_triplet (bool): Replicate the official dummy triplet.
            Defaults to True.
        loss_weight (float): Defaults to 10.0, CFine's triplet weight
            (cfine.md §7.5), so the retriever adds the output as is.
        loss_name (str): Defaults to 'loss_triplet'.

    Call ``loss(sim, pids) -> Tensor`` with ``sim`` B x B (rows images) and
    ``pids`` B int64; returns the scalar loss. With a single identity in the
    batch there is no negative and the loss is 0.
    """

    def __init__(self,
                 margin: float = 0.2,
                 mining: str = 'violating',
                 dummy_triplet: bool = True,
                 loss_weight: float = 10.0,
                 loss_name: str = 'loss_triplet') -> None:
        super().__init__()
        if mining not in ('violating', 'hardest'):
            raise ValueError("mining must be 'violating' or 'hardest', got "
                             f'{mining!r}')
        self.margin = margin
        self.mining = mining
        self.dummy_triplet = dummy_triplet
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    def _anchor_side(self, sim: torch.Tensor,
                     is_neg: torch.Tensor) -> torch.Tensor:
        """Summed loss of the anchors in the rows of ``sim``."""
        pos = sim.diagonal().unsqueeze(1)
        neg_sim = sim.masked_fill(~is_neg, float('-inf'))
        hardest = neg_sim.max(dim=1).values
        has_neg = is_neg.any(dim=1)
        if self.mining == 'violating':
            use = has_neg & (neg_sim > pos).any(dim=1)
        else:
            use = has_neg
        hinge = (self.margin - pos.squeeze(1) + hardest).clamp(min=0)
        # where() rather than a product: hardest is -inf on unused rows.
        loss = torch.where(use, hinge, hinge.new_zeros(())).sum()
        if self.mining == 'violating' and self.dummy_triplet:
            # No triplet on this side: the official code falls back to the
            # last anchor and its first negative (all anchors have a
            # negative as soon as the batch holds two identities). Both
            # candidates are computed and where() picks one, so the choice
            # needs no value on the host (argmax of a bool row: its first
            # True); the gradient flows through the chosen one only.
            last = sim.shape[0] - 1
            first_neg = is_neg[last].to(torch.uint8).argmax()
            dummy = (self.margin - sim[last, last] +
                     sim[last, first_neg]).clamp(min=0)
            fall_back = ~use.any() & has_neg[last]
            loss = torch.where(fall_back, dummy, loss)
        return loss

    def forward(self, sim: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
            raise ValueError(
                f'expected a B x B matrix, got {tuple(sim.shape)}')
        if pids.numel() != sim.shape[0]:
            raise ValueError(f'{pids.numel()} labels for a '
                             f'{sim.shape[0]} x {sim.shape[0]} matrix')
        sim = sim.float()
        is_neg = pids.view(-1, 1) != pids.view(1, -1)  # symmetric
        loss = (
            self._anchor_side(sim, is_neg) +
            self._anchor_side(sim.t(), is_neg))
        return self.loss_weight * loss
