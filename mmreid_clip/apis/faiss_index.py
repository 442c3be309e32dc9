"""The optional ``faiss-cpu`` indices (:class:`FaissIndex`: ``'flat'``,
``'ivf'``, ``'hnsw'``), the import that says how to install faiss, and the
stable reordering of faiss's results.
"""
import math
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .feature_index import FeatureIndex
from .topk import ArrayLike

_FAISS_HINT = ("Install it with `pip install faiss-cpu` (the project's "
               "`faiss` extra: pip install -e '.[faiss]'), or use "
               "kind='exact', which needs nothing and is exact.")


def import_faiss():
    """Import faiss, or raise an ImportError that says how to get it."""
    try:
        import faiss
    except ImportError as err:
        raise ImportError(
            'faiss is not installed: the index kinds "flat", "ivf" and '
            f'"hnsw" need it. {_FAISS_HINT}') from err
    return faiss


def _stable_reorder(scores: np.ndarray,
                    ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Order each row by (score descending, index ascending); -1 last."""
    scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
    by_index = np.argsort(
        np.where(ids < 0,
                 np.iinfo(np.int64).max, ids), axis=1, kind='stable')
    scores = np.take_along_axis(scores, by_index, 1)
    ids = np.take_along_axis(ids, by_index, 1)
    by_score = np.argsort(-scores, axis=1, kind='stable')
    return (np.take_along_axis(scores, by_score,
                               1), np.take_along_axis(ids, by_score, 1))


class FaissIndex(FeatureIndex):
    """faiss inner-product index: exact ``'flat'`` or approximate.

    Args:
        dim (int): Feature dimension.
        kind (str): ``'flat'`` (``IndexFlatIP``), ``'ivf'``
            (``IndexIVFFlat``; trained by k-means on the first ``add``) or
            ``'hnsw'`` (``IndexHNSWFlat``).
        nlist (int, optional): IVF cells; None picks ``~4 sqrt(N)`` at the
            first ``add`` (at most ``N / 39``, faiss's minimum of training
            points per cell).
        nprobe (int, optional): IVF cells visited per query; None picks
            ``max(8, nlist / 16)`` (capped at ``nlist``). ``nprobe == nlist``
            is exact.
        hnsw_m (int): HNSW neighbours per node. Defaults to 32.
        ef_construction (int): HNSW build-time beam. Defaults to 80.
        ef_search (int): HNSW search-time beam (raised to ``k`` when
            smaller). Defaults to 128.

    Raises:
        ImportError: faiss is not installed (the message says how to get
            it).
    """

    def __init__(self,
                 dim: int,
                 kind: str = 'flat',
                 nlist: Optional[int] = None,
                 nprobe: Optional[int] = None,
                 hnsw_m: int = 32,
                 ef_construction: int = 80,
                 ef_search: int = 128) -> None:
        super().__init__(dim)
        if kind not in ('flat', 'ivf', 'hnsw'):
            raise ValueError(f"faiss index kind must be 'flat', 'ivf' or "
                             f"'hnsw', got {kind!r}")
        self._faiss = import_faiss()
        self.kind = kind
        self.nlist = None if nlist is None else int(nlist)
        self.nprobe = None if nprobe is None else int(nprobe)
        self.hnsw_m = int(hnsw_m)
        self.ef_construction = int(ef_construction)
        self.ef_search = int(ef_search)
        faiss = self._faiss
        self._index = None
        if kind == 'flat':
            self._index = faiss.IndexFlatIP(self.dim)
        elif kind == 'hnsw':
            self._index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m,
                                              faiss.METRIC_INNER_PRODUCT)
            self._index.hnsw.efConstruction = self.ef_construction
        # 'ivf' is built on the first add, when N (hence nlist) is known

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def _build_ivf(self, feats: np.ndarray) -> None:
        faiss = self._faiss
        n = feats.shape[0]
        if self.nlist is None:
            self.nlist = int(max(1, min(round(4 * math.sqrt(n)), n // 39)))
        if n < self.nlist:
            raise ValueError(f'an IVF index with nlist={self.nlist} needs at '
                             f'least {self.nlist} rows in its first add, got '
                             f'{n}')
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, self.nlist,
                                   faiss.METRIC_INNER_PRODUCT)
        index.train(feats)
        # faiss's Python wrapper keeps `quantizer` alive with `index`
        self._index = index

    def add(self, feats: ArrayLike) -> None:
        feats = self._check_rows(feats, 'features')
        arr = np.ascontiguousarray(
            feats.detach().cpu().numpy(), dtype=np.float32)
        if arr.shape[0] == 0:
            return
        if self._index is None:
            self._build_ivf(arr)
        self._index.add(arr)

    def search(self, queries: ArrayLike, k: int) -> Tuple[Tensor, Tensor]:
        queries = self._check_rows(queries, 'queries')
        if len(self) == 0:
            raise ValueError('the index is empty: add features first')
        if int(k) < 1:
            raise ValueError(f'k must be >= 1, got {k}')
        k = min(int(k), len(self))
        if self.kind == 'ivf':
            nprobe = self.nprobe or max(8, self.nlist // 16)
            self._index.nprobe = int(min(nprobe, self.nlist))
        elif self.kind == 'hnsw':
            self._index.hnsw.efSearch = max(self.ef_search, k)
        arr = np.ascontiguousarray(
            queries.detach().cpu().numpy(), dtype=np.float32)
        scores, ids = self._index.search(arr, k)
        scores, ids = _stable_reorder(scores, ids.astype(np.int64))
        return torch.from_numpy(scores), torch.from_numpy(ids)

    def params(self) -> Dict[str, Any]:
        return dict(
            kind=self.kind,
            nlist=self.nlist,
            nprobe=self.nprobe,
            hnsw_m=self.hnsw_m,
            ef_construction=self.ef_construction,
            ef_search=self.ef_search)

    def _arrays(self) -> Dict[str, np.ndarray]:
        if self._index is None:
            return {}
        return dict(faiss=self._faiss.serialize_index(self._index))

    @classmethod
    def _from_saved(cls, dim: int, params: dict,
                    arrays: Dict[str, np.ndarray]) -> 'FaissIndex':
        index = cls(dim, **params)
        if 'faiss' in arrays:
            index._index = index._faiss.deserialize_index(
                np.ascontiguousarray(arrays['faiss'], dtype=np.uint8))
            if index._index.d != dim:
                raise ValueError(f'saved faiss index is {index._index.d}-d, '
                                 f'its header says {dim}')
        return index
