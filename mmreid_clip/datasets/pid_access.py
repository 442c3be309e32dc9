"""Per-item identity access shared by the mmreid_clip dataset bases.

:class:`~mmreid_clip.datasets.TextImageDataset` and
:class:`~mmreid_clip.datasets.cloth_changing.ClothChangingDataset` both give
samplers and mmengine's class-aware wrappers the pid of each item; the
logic (and its cache, which subsetting must drop) lives here once.
"""
from typing import List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset


class PidAccessMixin:
    """``get_pids`` / ``get_cat_ids`` for a :class:`BaseDataset` subclass.

    Put it before ``BaseDataset`` in the bases; items must carry ``pid`` in
    their data info. The pid array is cached in ``_pids`` and dropped by
    ``get_subset_`` / ``get_subset``, whose item order it would no longer
    match.
    """

    _pids: Optional[np.ndarray] = None

    def get_pids(self) -> np.ndarray:
        """The pid of every item, in item order (cached).

        Used by :class:`IdentityBalancedSampler` (P x K batches); computed
        from ``get_data_info`` so it also holds after ``indices``
        subsetting.

        Returns:
            np.ndarray: int64 array of length ``len(self)``.
        """
        if self._pids is None or len(self._pids) != len(self):
            self._pids = np.array(
                [self.get_data_info(i)['pid'] for i in range(len(self))],
                dtype=np.int64)
        return self._pids

    def get_cat_ids(self, idx: int) -> List[int]:
        """The identity of item ``idx``, for mmengine's class-aware wrappers.

        Args:
            idx (int): Item index.

        Returns:
            list[int]: ``[pid]``.
        """
        return [int(self.get_data_info(idx)['pid'])]

    def get_subset_(self, indices: Union[Sequence[int], int]) -> None:
        """mmengine's in-place subset; also drops the cached pids."""
        super().get_subset_(indices)
        self._pids = None

    def get_subset(self, indices: Union[Sequence[int], int]) -> BaseDataset:
        """mmengine's subset copy, without the parent's cached pids."""
        subset = super().get_subset(indices)
        subset._pids = None
        return subset
