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

This module holds :class:`ExactIndex` and the factory and reader
(:func:`build_index`, :func:`load_index`); beside it are :mod:`.topk`
(:func:`stable_topk`, :func:`chunked_topk`), :mod:`.feature_index` (the
interface and the file format) and :mod:`.faiss_index`
(:class:`FaissIndex`). Every name stays importable from here.
"""
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .faiss_index import (_FAISS_HINT, FaissIndex,  # noqa: F401
                          _stable_reorder, import_faiss)
from .feature_index import INDEX_FORMAT, INDEX_FORMAT_VERSION, FeatureIndex
from .topk import (_BYTES_PER_CELL, DEFAULT_SEARCH_BUDGET,  # noqa: F401
                   ArrayLike, _as_tensor, _order_stably, _select_with_ties,
                   chunked_topk, search_chunk_size, stable_topk)

__all__ = [
    'INDEX_KINDS', 'DEFAULT_SEARCH_BUDGET', 'search_chunk_size', 'stable_topk',
    'chunked_topk', 'FeatureIndex', 'ExactIndex', 'FaissIndex', 'build_index',
    'load_index', 'import_faiss'
]

#: ``'exact'`` needs nothing; the others need ``faiss-cpu``.
INDEX_KINDS = ('exact', 'flat', 'ivf', 'hnsw')


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
