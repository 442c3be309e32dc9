"""Labels of :func:`~.ranking.rank_queries`: checking the query and
gallery label inputs, and the per-label index of the gallery that looks up
each query's positives without a ``chunk x G`` comparison.
"""
from typing import Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

ArrayLike = Union[Tensor, np.ndarray, Sequence]


def _as_labels(labels: ArrayLike, name: str, length: int,
               device: torch.device) -> Tensor:
    """1-D integer label tensor on ``device``, checked against ``length``."""
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.numel() != length:
        raise ValueError(f'{name} must be 1-D with {length} entries (one per '
                         f'row/column of the scores), got shape '
                         f'{tuple(labels.shape)}')
    # an empty list becomes a float tensor: there is no label to misread
    if labels.numel() and (labels.is_floating_point() or labels.is_complex()):
        raise TypeError(f'{name} must hold integer labels, got {labels.dtype}')
    return labels.to(device=device, dtype=torch.int64)


class _GalleryIndex:
    """The gallery items of every label, to look positives up per query.

    Building a ``chunk x G`` label-equality mask and extracting its nonzeros
    would cost three passes over every chunk; instead the gallery indices
    are grouped by label once (CSR layout: ``members[start_k : start_k +
    count_k]`` are the items of the k-th distinct label, ascending), and a
    chunk gathers its queries' groups into a ``chunk x M`` table, ``M`` the
    largest group among them (a few to a few hundred in practice; a label
    that covers most of the gallery would make these tables, and the chunk's
    memory, grow towards ``chunk x G``).

    Args:
        gallery_labels (Tensor): ``(G,)`` integer labels, ``G >= 1``.
    """

    def __init__(self, gallery_labels: Tensor) -> None:
        if gallery_labels.device.type == 'cpu':
            self._build_numpy(gallery_labels.numpy())
            return
        self.labels, inverse, self.counts = torch.unique(
            gallery_labels, return_inverse=True, return_counts=True)
        self.starts = self.counts.cumsum(0) - self.counts
        # stable: items of one label stay in ascending gallery order
        self.members = torch.argsort(inverse, stable=True)

    def _build_numpy(self, labels: np.ndarray) -> None:
        """The same tables from one stable NumPy argsort of the labels.

        Why: ``torch.unique`` and ``torch.argsort`` sort the gallery twice
        and split over torch's intra-op threads (0.45 ms at LTCC's 7,050
        items on one idle core, a fifth of what remains outside the
        ranking kernel); one stable argsort on the calling thread gives
        the groups, their starts and their members at once.
        """
        order = np.argsort(labels, kind='stable')
        ordered = labels[order]
        first = np.ones(ordered.size, dtype=bool)
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        self.labels = torch.from_numpy(ordered[starts])
        self.starts = torch.from_numpy(starts.astype(np.int64))
        self.counts = torch.from_numpy(
            np.diff(np.append(starts, ordered.size)).astype(np.int64))
        self.members = torch.from_numpy(order.astype(np.int64, copy=False))

    def lookup(self, query_labels: Tensor) -> Tuple[Tensor, Tensor]:
        """Gallery items sharing each query's label.

        Args:
            query_labels (Tensor): ``(c,)`` labels of a chunk of queries.

        Returns:
            tuple[Tensor, Tensor]: ``cols`` int64 ``(c, M)`` gallery indices
            (padding points at item 0) and ``valid`` bool ``(c, M)``, True
            on real entries.
        """
        if query_labels.device.type == 'cpu':
            return self._lookup_numpy(query_labels)
        last = self.labels.numel() - 1
        k = torch.searchsorted(self.labels, query_labels).clamp_(max=last)
        found = self.labels[k] == query_labels
        count = torch.where(found, self.counts[k], 0)
        width = int(count.max()) if count.numel() else 0
        slots = torch.arange(width, device=query_labels.device)
        valid = slots[None, :] < count[:, None]
        where = (self.starts[k][:, None] +
                 slots[None, :]).clamp_(max=self.members.numel() - 1)
        cols = torch.where(valid, self.members[where], 0)
        return cols, valid

    def _lookup_numpy(self, query_labels: Tensor) -> Tuple[Tensor, Tensor]:
        """:meth:`lookup` on CPU tensors, in NumPy.

        Same tables. Why: the ``c x M`` tables are large enough (some 10^5
        entries at PRCC) for torch to split each of their six ops over its
        intra-op threads, and on a machine whose other cores are busy
        every such op waits for a descheduled thread: 60-70 ms per lookup
        at PRCC with 2 threads on a loaded 2-core machine, against about
        1 ms single-threaded (the ranking kernel itself takes 40-130 ms).
        NumPy runs them on the calling thread.
        """
        labels, counts = self.labels.numpy(), self.counts.numpy()
        starts, members = self.starts.numpy(), self.members.numpy()
        query = query_labels.numpy()
        if not labels.size or not query.size:
            empty = torch.zeros((query.size, 0), dtype=torch.int64)
            return empty, empty.bool()
        k = np.minimum(np.searchsorted(labels, query), labels.size - 1)
        count = np.where(labels[k] == query, counts[k], 0)
        slots = np.arange(int(count.max()))
        valid = slots[None, :] < count[:, None]
        where = np.minimum(starts[k][:, None] + slots[None, :],
                           members.size - 1)
        cols = np.where(valid, members[where], 0)
        return torch.from_numpy(cols), torch.from_numpy(valid)
