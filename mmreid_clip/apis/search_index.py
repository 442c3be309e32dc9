"""Top-k search over a large gallery of L2-normalised features.

Two families of indices share one interface (:class:`FeatureIndex`: ``add``,
``search``, ``save``; :func:`load_index`):

* :class:`ExactIndex` keeps the ``N x D`` features and answers with
  :func:`chunked_topk`: exact inner-product scores, chunk by chunk of
  queries, so no buffer larger than ``chunk x N`` is built, and the result
  is the head of a *stable* descending sort (ties broken by ascending
  gallery index), the order :mod:`mmreid_clip.evaluation.functional.ranking`
  defines for evaluation.
* :class:`FaissIndex` wraps the optional ``faiss-cpu`` package:
  ``'flat'`` (``IndexFlatIP``, exact), ``'ivf'`` (``IndexIVFFlat``, an
  inverted file over k-means cells: approximate, fast on millions of items)
  and ``'hnsw'`` (``IndexHNSWFlat``, a proximity graph: approximate).
  faiss does not promise which of several equal scores it keeps at the k-th
  place; within the returned list the order is made stable as above.

Indices are saved to a single ``.npz`` file (no pickle) holding the arrays
and a JSON header, plus any JSON-serialisable ``meta`` the caller adds
(:class:`~mmreid_clip.apis.searchers.TextPersonSearcher` stores its image
paths and the model fingerprint there).
"""
import json
import math
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

__all__ = [
    'INDEX_KINDS', 'DEFAULT_SEARCH_BUDGET', 'search_chunk_size', 'stable_topk',
    'chunked_topk', 'FeatureIndex', 'ExactIndex', 'FaissIndex', 'build_index',
    'load_index', 'import_faiss'
]

ArrayLike = Union[Tensor, np.ndarray]

#: ``'exact'`` needs nothing; the others need ``faiss-cpu``.
INDEX_KINDS = ('exact', 'flat', 'ivf', 'hnsw')
#: Bytes the ``chunk x N`` buffers of :func:`chunked_topk` may take.
DEFAULT_SEARCH_BUDGET = 256 * 2**20
INDEX_FORMAT = 'mmreid_clip.FeatureIndex'
INDEX_FORMAT_VERSION = 1

# Peak bytes per (query, gallery) cell in stable_topk: the scores (4 or 8),
# two bool masks, the int32 running count of ties and the bool selection,
# with margin.
_BYTES_PER_CELL = {torch.float32: 16, torch.float64: 24}

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


def search_chunk_size(num_gallery: int,
                      memory_budget: int = DEFAULT_SEARCH_BUDGET,
                      dtype: torch.dtype = torch.float32) -> int:
    """Queries per chunk that keep the ``chunk x N`` buffers in budget.

    Args:
        num_gallery (int): N, the length of a buffer row.
        memory_budget (int): Bytes for the buffers.
        dtype (torch.dtype): Score dtype (float32 or float64).

    Returns:
        int: At least 1.
    """
    per_cell = _BYTES_PER_CELL[torch.float64 if dtype ==
                               torch.float64 else torch.float32]
    return int(max(1, memory_budget // (per_cell * max(int(num_gallery), 1))))


def _order_stably(values: Tensor, indices: Tensor) -> Tuple[Tensor, Tensor]:
    """Sort each row by (value descending, index ascending)."""
    by_index = indices.argsort(dim=1)
    values, indices = values.gather(1, by_index), indices.gather(1, by_index)
    by_value = values.argsort(dim=1, descending=True, stable=True)
    return values.gather(1, by_value), indices.gather(1, by_value)


def _select_with_ties(scores: Tensor, kth: Tensor,
                      k: int) -> Tuple[Tensor, Tensor]:
    """Rows whose ties straddle the k-th place: keep the leftmost ties."""
    c = scores.size(0)
    above = scores > kth
    room = k - above.sum(dim=1, keepdim=True, dtype=torch.int32)
    tied = scores == kth
    # the leftmost `room` tied columns: a running count of ties per row
    take = tied.cumsum(dim=1, dtype=torch.int32) <= room
    select = above.logical_or_(take.logical_and_(tied))
    del take, tied
    # nonzero walks rows in order and columns ascending: exactly k per row
    indices = select.nonzero()[:, 1].view(c, k)
    return scores.gather(1, indices), indices


def stable_topk(scores: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """The first ``k`` columns of a stable descending sort of every row.

    Equal to ``torch.sort(scores, dim=1, descending=True, stable=True)``
    cut to ``k`` columns (ties broken by ascending column index, whichever
    side of the k-th place they fall), but O(N) per row instead of
    O(N log N). ``topk`` gives the k-th largest value ``t`` and a set of k
    columns; that set is the right one unless some column equal to ``t``
    was left out (a tie across the k-th place, where ``topk`` may keep any
    of the tied columns). Those rows, found by counting the columns equal
    to ``t``, are redone: every column above ``t`` and the leftmost of the
    columns equal to ``t``. The k columns are then ordered stably.

    Args:
        scores (Tensor): ``(c, N)`` floating-point scores without NaN.
        k (int): Columns to keep; ``k > N`` keeps N.

    Returns:
        tuple[Tensor, Tensor]: ``(values, indices)``, both ``(c, min(k,
        N))``; indices are int64.
    """
    if scores.dim() != 2:
        raise ValueError(f'scores must be 2-D, got {tuple(scores.shape)}')
    if k < 0:
        raise ValueError(f'k must be >= 0, got {k}')
    c, n = scores.shape
    k = min(int(k), n)
    if k == 0 or c == 0:
        return (scores.new_empty((c, k)),
                torch.empty((c, k), dtype=torch.int64, device=scores.device))
    if 2 * k >= n:
        # a large share of the row: sorting all of it is as cheap
        values, indices = torch.sort(
            scores, dim=1, descending=True, stable=True)
        return values[:, :k].contiguous(), indices[:, :k].contiguous()
    values, indices = scores.topk(k, dim=1, sorted=True)
    kth = values[:, k - 1:k]
    ties_in_row = (scores == kth).sum(dim=1)
    ties_kept = (values == kth).sum(dim=1)
    straddle = torch.nonzero(ties_in_row != ties_kept).flatten()
    if straddle.numel():
        v, i = _select_with_ties(scores[straddle], kth[straddle], k)
        values[straddle], indices[straddle] = v, i
    return _order_stably(values, indices)


def _as_tensor(x: ArrayLike, name: str) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise TypeError(f'{name} must be a tensor or an array, got '
                        f'{type(x).__name__}')
    if x.dim() != 2:
        raise ValueError(f'{name} must be 2-D (N x D), got shape '
                         f'{tuple(x.shape)}')
    if not x.is_floating_point():
        raise TypeError(f'{name} must be floating point, got {x.dtype}')
    return x


def chunked_topk(
        queries: ArrayLike,
        gallery: ArrayLike,
        k: int,
        chunk_size: Optional[int] = None,
        memory_budget: int = DEFAULT_SEARCH_BUDGET) -> Tuple[Tensor, Tensor]:
    """Exact top-k inner products of every query over the gallery.

    Queries are processed ``chunk_size`` at a time; a chunk's ``chunk x N``
    score block (and a few masks of the same shape) is the only large
    buffer. The order is the stable one of :func:`stable_topk`.

    Note:
        Scores are computed in float32 (float64 when an input is float64).
        The matrix product of a chunk may round a dot product differently
        for another chunk size (BLAS blocking), which can only swap scores
        equal to within an ulp.

    Args:
        queries (Tensor | ndarray): ``Q x D`` query features.
        gallery (Tensor | ndarray): ``N x D`` gallery features.
        k (int): Results per query (``min(k, N)`` are returned).
        chunk_size (int, optional): Queries per chunk; None picks it from
            ``memory_budget`` (:func:`search_chunk_size`).
        memory_budget (int): Bytes for the chunk buffers. Defaults to
            256 MiB.

    Returns:
        tuple[Tensor, Tensor]: ``(scores, indices)`` of shape
        ``Q x min(k, N)`` on the gallery's device; indices are int64.

    Raises:
        ValueError: Bad shapes, ``k < 1`` or NaN scores.
        TypeError: Non-float inputs.
    """
    queries = _as_tensor(queries, 'queries')
    gallery = _as_tensor(gallery, 'gallery')
    if queries.size(1) != gallery.size(1):
        raise ValueError(f'queries are {queries.size(1)}-d but the gallery '
                         f'is {gallery.size(1)}-d')
    if int(k) < 1:
        raise ValueError(f'k must be >= 1, got {k}')
    dtype = (
        torch.float64 if torch.float64 in (queries.dtype,
                                           gallery.dtype) else torch.float32)
    device = gallery.device
    gallery = gallery.to(dtype)
    queries = queries.to(device=device, dtype=dtype)
    num_query, num_gallery = queries.size(0), gallery.size(0)
    k = min(int(k), num_gallery)
    if chunk_size is None:
        chunk_size = search_chunk_size(num_gallery, memory_budget, dtype)
    elif int(chunk_size) < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    chunk_size = int(chunk_size)
    values = torch.empty((num_query, k), dtype=dtype, device=device)
    indices = torch.empty((num_query, k), dtype=torch.int64, device=device)
    gallery_t = gallery.t()
    for start in range(0, num_query, chunk_size):
        stop = min(start + chunk_size, num_query)
        block = queries[start:stop] @ gallery_t
        if torch.isnan(block.sum()) and torch.isnan(block).any():
            raise ValueError(f'NaN scores for queries {start}..{stop - 1}: '
                             'check the features')
        values[start:stop], indices[start:stop] = stable_topk(block, k)
        del block
    return values, indices


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


class ExactIndex(FeatureIndex):
    """Exact search with :func:`chunked_topk` over the stored features.

    Args:
        dim (int): Feature dimension.
        chunk_size (int, optional): Queries per chunk; None: from
            ``memory_budget``.
        memory_budget (int): Bytes for the chunk buffers. Defaults to
            256 MiB.
        device (str): Where the features live and the scores are computed
            (``'cpu'``, ``'cuda'``). Defaults to 'cpu'.
    """

    kind = 'exact'

    def __init__(self,
                 dim: int,
                 chunk_size: Optional[int] = None,
                 memory_budget: int = DEFAULT_SEARCH_BUDGET,
                 device: str = 'cpu') -> None:
        super().__init__(dim)
        self.chunk_size = chunk_size
        self.memory_budget = int(memory_budget)
        self.device = torch.device(device)
        self._blocks: List[Tensor] = []
        self._features: Optional[Tensor] = torch.empty((0, self.dim),
                                                       dtype=torch.float32,
                                                       device=self.device)

    @property
    def features(self) -> Tensor:
        """All rows, ``N x D`` float32."""
        if self._blocks:
            self._features = torch.cat([self._features, *self._blocks])
            self._blocks = []
        return self._features

    def __len__(self) -> int:
        return self._features.size(0) + sum(b.size(0) for b in self._blocks)

    def add(self, feats: ArrayLike) -> None:
        feats = self._check_rows(feats, 'features')
        self._blocks.append(feats.detach().to(
            device=self.device, dtype=torch.float32))

    def search(self, queries: ArrayLike, k: int) -> Tuple[Tensor, Tensor]:
        queries = self._check_rows(queries, 'queries')
        if len(self) == 0:
            raise ValueError('the index is empty: add features first')
        scores, ids = chunked_topk(queries, self.features, k, self.chunk_size,
                                   self.memory_budget)
        return scores.float().cpu(), ids.cpu()

    def params(self) -> Dict[str, Any]:
        return dict(
            chunk_size=self.chunk_size, memory_budget=self.memory_budget)

    def _arrays(self) -> Dict[str, np.ndarray]:
        return dict(features=self.features.cpu().numpy())

    @classmethod
    def _from_saved(cls, dim: int, params: dict,
                    arrays: Dict[str, np.ndarray]) -> 'ExactIndex':
        index = cls(dim, **params)
        index.add(torch.from_numpy(np.ascontiguousarray(arrays['features'])))
        return index


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


def build_index(kind: str = 'exact',
                dim: Optional[int] = None,
                feats: Optional[ArrayLike] = None,
                **kwargs) -> FeatureIndex:
    """Make an index of one of :data:`INDEX_KINDS` and optionally fill it.

    Args:
        kind (str): ``'exact'``, ``'flat'``, ``'ivf'`` or ``'hnsw'``.
            Defaults to 'exact'.
        dim (int, optional): Feature dimension; taken from ``feats`` when
            omitted.
        feats (Tensor | ndarray, optional): ``N x D`` rows to add.
        **kwargs: Passed to :class:`ExactIndex` / :class:`FaissIndex`.

    Returns:
        FeatureIndex: The index.
    """
    if kind not in INDEX_KINDS:
        raise ValueError(f'unknown index kind {kind!r}; use one of '
                         f'{INDEX_KINDS}')
    if feats is not None:
        feats = _as_tensor(feats, 'features')
        dim = feats.size(1) if dim is None else dim
    if dim is None:
        raise ValueError('build_index needs dim or feats')
    if kind == 'exact':
        index: FeatureIndex = ExactIndex(dim, **kwargs)
    else:
        index = FaissIndex(dim, kind=kind, **kwargs)
    if feats is not None:
        index.add(feats)
    return index


def load_index(path: str) -> Tuple[FeatureIndex, dict]:
    """Read an index written by :meth:`FeatureIndex.save`.

    Args:
        path (str): The ``.npz`` file.

    Returns:
        tuple[FeatureIndex, dict]: The index and the ``meta`` saved with it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not an index of this format or version.
        ImportError: A faiss index and faiss is not installed.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'index file {path!r} does not exist')
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as err:
        raise ValueError(f'{path} is not a saved index (.npz): {err}') from err
    raw = arrays.pop('__header__', None)
    try:
        header = json.loads(bytes(raw).decode('utf-8'))
    except (TypeError, ValueError):
        header = None
    if not isinstance(header, dict) or header.get('format') != INDEX_FORMAT:
        raise ValueError(f'{path} is not a mmreid_clip search index (no '
                         f'{INDEX_FORMAT} header)')
    if header.get('version') != INDEX_FORMAT_VERSION:
        raise ValueError(f'{path} has index format version '
                         f'{header.get("version")}; this code reads version '
                         f'{INDEX_FORMAT_VERSION}. Rebuild the index.')
    kind, dim = header['kind'], int(header['dim'])
    params = dict(header.get('params') or {})
    if kind == 'exact':
        index: FeatureIndex = ExactIndex._from_saved(dim, params, arrays)
    elif kind in ('flat', 'ivf', 'hnsw'):
        params['kind'] = kind
        index = FaissIndex._from_saved(dim, params, arrays)
    else:
        raise ValueError(f'{path}: unknown index kind {kind!r}')
    if len(index) != int(header.get('size', len(index))):
        raise ValueError(f'{path}: header says {header["size"]} rows, the '
                         f'arrays hold {len(index)}')
    return index, header.get('meta') or {}
