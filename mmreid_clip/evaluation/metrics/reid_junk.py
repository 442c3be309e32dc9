"""The junk rules of the ReID modes (:data:`MODES`: ``general``,
``cloth-changing``, ``same-clothes``; ``docs/methods/datasets.md`` §5.2,
§5.3) as :func:`~mmreid_clip.evaluation.functional.rank_queries`
callbacks.
"""
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from mmreid_clip.evaluation.functional import JunkFn, LabelJunkFn

#: Modes of a setting and what they add to the junk of a query q
#: (``docs/methods/datasets.md`` §5.2, §5.3); junk items are removed from
#: q's ranking, the positives are the other items of q's identity.
MODES = ('general', 'cloth-changing', 'same-clothes')


def _check_mode(mode: str, query_clothes: Optional[Tensor],
                gallery_clothes: Optional[Tensor]) -> None:
    """Raise for an unknown mode, or a clothes-aware one without clothes."""
    if mode not in MODES:
        raise ValueError(f'unknown ReID mode {mode!r}; choose from {MODES}')
    if mode != 'general' and (query_clothes is None
                              or gallery_clothes is None):
        raise ValueError(f'mode {mode!r} needs the clothes ids of the '
                         'queries and the gallery')


def reid_junk_fn(mode: str,
                 query_pids: Tensor,
                 gallery_pids: Tensor,
                 query_cams: Tensor,
                 gallery_cams: Tensor,
                 query_clothes: Optional[Tensor] = None,
                 gallery_clothes: Optional[Tensor] = None) -> JunkFn:
    """The junk rule of a ReID mode as a ``rank_queries`` callback.

    Same pid and same camera is junk in every mode; ``cloth-changing`` also
    drops same pid and same clothes, ``same-clothes`` same pid and other
    clothes (``docs/methods/datasets.md`` §5.2, §5.3).

    Args:
        mode (str): One of :data:`MODES`.
        query_pids, gallery_pids (Tensor): int64 ``(Q,)``, ``(G,)``.
        query_cams, gallery_cams (Tensor): Camera (or tracklet) ids.
        query_clothes, gallery_clothes (Tensor, optional): Clothes ids,
            needed by the two clothes-aware modes.

    Returns:
        Callable: ``rows -> bool (n, G)`` junk of the queries ``rows``.
    """
    _check_mode(mode, query_clothes, gallery_clothes)

    def junk_fn(rows: slice) -> Tensor:
        same_pid = query_pids[rows, None] == gallery_pids[None, :]
        removed = query_cams[rows, None] == gallery_cams[None, :]
        if mode == 'cloth-changing':
            removed |= query_clothes[rows, None] == gallery_clothes[None, :]
        elif mode == 'same-clothes':
            removed |= query_clothes[rows, None] != gallery_clothes[None, :]
        return removed.logical_and_(same_pid)

    return junk_fn


def reid_label_junk_fn(mode: str,
                       query_cams: Tensor,
                       gallery_cams: Tensor,
                       query_clothes: Optional[Tensor] = None,
                       gallery_clothes: Optional[Tensor] = None
                       ) -> LabelJunkFn:
    """The junk rule of a ReID mode on the query's own-pid items only.

    Same rule as :func:`reid_junk_fn`, for ``rank_queries(label_junk_fn=)``
    with pids as the labels: junk is always "same pid and ...", so only
    the gallery items of the query's pid (``cols``) are tested, O(M) per
    query instead of an O(G) mask row.

    Args:
        mode (str): One of :data:`MODES`.
        query_cams, gallery_cams (Tensor): Camera (or tracklet) ids.
        query_clothes, gallery_clothes (Tensor, optional): Clothes ids,
            needed by the two clothes-aware modes.

    Returns:
        Callable: ``(rows, cols) -> bool (n, M)``.
    """
    _check_mode(mode, query_clothes, gallery_clothes)
    query_cams, gallery_cams = map(torch.as_tensor, (query_cams, gallery_cams))
    if mode != 'general':
        query_clothes, gallery_clothes = map(torch.as_tensor,
                                             (query_clothes, gallery_clothes))

    def label_junk_fn(rows: slice, cols: Tensor) -> Tensor:
        if cols.device.type == 'cpu' and query_cams.device.type == 'cpu':
            # NumPy on the calling thread: torch would split these c x M
            # ops over its intra-op threads, and on a loaded machine each
            # op then waits for a descheduled thread (12-36 ms per call at
            # PRCC with 2 threads, under 2 ms in NumPy)
            return torch.from_numpy(_label_junk_numpy(rows, cols.numpy()))
        removed = query_cams[rows, None] == gallery_cams[cols]
        if mode == 'cloth-changing':
            removed |= query_clothes[rows, None] == gallery_clothes[cols]
        elif mode == 'same-clothes':
            removed |= query_clothes[rows, None] != gallery_clothes[cols]
        return removed

    def _label_junk_numpy(rows: slice, cols: np.ndarray) -> np.ndarray:
        """The rule above on NumPy views of the (CPU) label tensors."""
        removed = query_cams.numpy()[rows, None] == gallery_cams.numpy()[cols]
        if mode != 'general':
            same = (query_clothes.numpy()[rows, None] ==
                    gallery_clothes.numpy()[cols])
            removed |= same if mode == 'cloth-changing' else ~same
        return removed

    return label_junk_fn
