"""The interface every search index implements (:class:`FeatureIndex`:
``add``, ``search``, ``params``) and the one-file ``.npz`` format it saves
to (read back by :func:`~.search_index.load_index`).
"""
import json
import os
import os.path as osp
from typing import Any, Dict, Optional, Tuple

import numpy as np
from torch import Tensor

from .topk import ArrayLike, _as_tensor

INDEX_FORMAT = 'mmreid_clip.FeatureIndex'
INDEX_FORMAT_VERSION = 1


class FeatureIndex:
    """Inner-product top-k search over a growing set of feature rows.

    Args:
        dim (int): Feature dimension D.
    """

    kind: str = ''

    def __init__(self, dim: int) -> None:
        if int(dim) < 1:
            raise ValueError(f'dim must be >= 1, got {dim}')
        self.dim = int(dim)

    def __len__(self) -> int:
        raise NotImplementedError

    def _check_rows(self, feats: ArrayLike, name: str) -> Tensor:
        feats = _as_tensor(feats, name)
        if feats.size(1) != self.dim:
            raise ValueError(f'{name} are {feats.size(1)}-d but the index is '
                             f'{self.dim}-d')
        return feats

    def add(self, feats: ArrayLike) -> None:
        """Append ``N x D`` rows; their indices continue from ``len(self)``.
        """
        raise NotImplementedError

    def search(self, queries: ArrayLike, k: int) -> Tuple[Tensor, Tensor]:
        """The ``k`` best rows of every query.

        Args:
            queries (Tensor | ndarray): ``Q x D``.
            k (int): Results per query (>= 1).

        Returns:
            tuple[Tensor, Tensor]: float32 ``scores`` and int64 ``indices``
            (CPU), ``Q x min(k, len(self))``, best first; an approximate
            index that finds fewer than k rows pads with index -1 and
            score -inf.
        """
        raise NotImplementedError

    def params(self) -> Dict[str, Any]:
        """The constructor arguments, for saving (JSON-serialisable)."""
        raise NotImplementedError

    def _arrays(self) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    @classmethod
    def _from_saved(cls, dim: int, params: dict,
                    arrays: Dict[str, np.ndarray]) -> 'FeatureIndex':
        raise NotImplementedError

    def save(self, path: str, meta: Optional[dict] = None) -> str:
        """Write the index (and ``meta``) to one ``.npz`` file.

        The file is written next to ``path`` and renamed into place, so an
        interrupted save never leaves a truncated index.

        Args:
            path (str): Output file (any name; ``.npz`` is conventional).
            meta (dict, optional): JSON-serialisable data stored with the
                index and returned by :func:`load_index`.

        Returns:
            str: ``path``.
        """
        header = dict(
            format=INDEX_FORMAT,
            version=INDEX_FORMAT_VERSION,
            kind=self.kind,
            dim=self.dim,
            size=len(self),
            params=self.params(),
            meta=meta or {})
        try:
            encoded = json.dumps(header).encode('utf-8')
        except TypeError as err:
            raise TypeError(
                f'index meta must be JSON-serialisable: {err}') from err
        arrays = dict(self._arrays())
        arrays['__header__'] = np.frombuffer(encoded, dtype=np.uint8)
        folder = osp.dirname(osp.abspath(path))
        os.makedirs(folder, exist_ok=True)
        tmp = f'{path}.tmp{os.getpid()}'
        try:
            with open(tmp, 'wb') as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)
        return path
