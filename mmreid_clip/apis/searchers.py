"""Search a folder of person images with a description or a photo.

:class:`TextPersonSearcher` (text -> images) and :class:`PersonReIdentifier`
(image -> images) both encode a gallery folder once with the model's image
tower, keep the features in a :class:`~.search_index.FeatureIndex` and save
them with the image paths (relative to the folder) and the model's
fingerprint (:func:`~.inference.model_fingerprint`). Loading an index made
by another model, other weights or other pipelines raises
:class:`StaleIndexError`: its features would not be comparable with the
queries. The index also carries a fingerprint of the folder (every image
file's relative path, size and modification time); an index whose folder
has changed since (images added, removed or replaced) raises
:class:`StaleGalleryError` on :meth:`GallerySearcher.load`, and
:meth:`GallerySearcher.load_or_build` re-indexes the folder instead.
Images that cannot be read are skipped, counted and named in the log; they
never stop the indexing of the others (``docs/reliability.md``, "Search").

This module holds the searchers and their queries; beside it are
:mod:`.gallery_indexing` (encoding a folder, skipping unreadable images)
and :mod:`.gallery_store` (saving and loading an index, the staleness
checks and their errors). Every name stays importable from here.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.config import Config

from mmreid_clip.datasets.utils import IMG_EXTENSIONS
from .gallery_indexing import GalleryIndexingMixin, _image_problem  # noqa
from .gallery_store import (SEARCHER_INDEX_FORMAT,  # noqa: F401
                            GalleryStoreMixin, StaleGalleryError,
                            StaleIndexError, _folder_changes, folder_state)
from .inference import (ImageInput, encode_images, encode_texts, init_model,
                        model_fingerprint)
from .search_index import INDEX_KINDS, FeatureIndex, import_faiss

__all__ = [
    'SearchResult', 'StaleIndexError', 'StaleGalleryError', 'GallerySearcher',
    'TextPersonSearcher', 'PersonReIdentifier', 'SEARCHER_INDEX_FORMAT',
    'folder_state'
]


@dataclass
class SearchResult:
    """A ranked list of gallery images, best first.

    Attributes:
        paths (list[str]): Absolute image paths.
        rel_paths (list[str]): Paths relative to the indexed folder.
        scores (list[float]): Cosine similarities to the query.
        indices (list[int]): Rows of the gallery index.
    """
    paths: List[str] = field(default_factory=list)
    rel_paths: List[str] = field(default_factory=list)
    scores: List[float] = field(default_factory=list)
    indices: List[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Tuple[str, float]]:
        return iter(zip(self.paths, self.scores))

    def to_dict(self) -> Dict[str, list]:
        """Plain lists, e.g. for JSON."""
        return dict(
            paths=list(self.paths),
            rel_paths=list(self.rel_paths),
            scores=list(self.scores),
            indices=list(self.indices))


class GallerySearcher(GalleryIndexingMixin, GalleryStoreMixin):
    """A gallery of image features from one model, searchable and saveable.

    Use :class:`TextPersonSearcher` or :class:`PersonReIdentifier`; both
    read and write the same index files.

    Args:
        model (nn.Module): A model from :func:`~.inference.init_model`
            whose ``predict`` sets ``img_feat``.
        index_kind (str): ``'exact'`` (default, needs nothing), or
            ``'flat'``, ``'ivf'``, ``'hnsw'`` (faiss).
        index_cfg (dict, optional): Extra arguments of the index
            (:func:`~.search_index.build_index`), e.g. ``dict(nprobe=16)``.
        batch_size (int): Images per forward pass when indexing.
            Defaults to 32.
        num_workers (int): Processes loading the gallery images while
            indexing (0: this one). Defaults to 0.
    """

    #: Images encoded between two progress messages while indexing.
    PROGRESS_EVERY = 2048

    def __init__(self,
                 model: nn.Module,
                 index_kind: str = 'exact',
                 index_cfg: Optional[dict] = None,
                 batch_size: int = 32,
                 num_workers: int = 0) -> None:
        if index_kind not in INDEX_KINDS:
            raise ValueError(f'unknown index kind {index_kind!r}; use one of '
                             f'{INDEX_KINDS}')
        if index_kind != 'exact':
            import_faiss()  # fail now, not after encoding the whole folder
        self.model = model
        self.index_kind = index_kind
        self.index_cfg = dict(index_cfg or {})
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.fingerprint = model_fingerprint(model)
        self.index: Optional[FeatureIndex] = None
        self.root: Optional[str] = None
        self.rel_paths: List[str] = []
        #: Images of the last indexed folder that could not be read, with
        #: the reason.
        self.skipped: Dict[str, str] = {}
        #: ``{path: [size, mtime_ns]}`` of every image file of the folder
        #: when it was indexed (:func:`folder_state`).
        self.folder_state: Dict[str, list] = {}
        #: How the folder was listed (``recursive``, ``extensions``).
        self.listing: Dict[str, object] = dict(
            recursive=True, extensions=list(IMG_EXTENSIONS))

    @classmethod
    def from_config(cls,
                    config: Union[str, Config],
                    checkpoint: Optional[str] = None,
                    device: str = 'cpu',
                    cfg_options: Optional[dict] = None,
                    **kwargs) -> 'GallerySearcher':
        """Build the model with :func:`~.inference.init_model` first.

        Args:
            config (str | Config): The model's config.
            checkpoint (str, optional): Its checkpoint.
            device (str): Defaults to 'cpu'.
            cfg_options (dict, optional): Config overrides.
            **kwargs: The searcher's other arguments.
        """
        return cls(
            init_model(config, checkpoint, device, cfg_options), **kwargs)

    def __len__(self) -> int:
        return len(self.rel_paths)

    @property
    def paths(self) -> List[str]:
        """Absolute paths of the indexed images, in index order."""
        if self.root is None:
            return []
        return [osp.join(self.root, p) for p in self.rel_paths]

    def _check_ready(self) -> None:
        if self.index is None:
            raise RuntimeError(f'{type(self).__name__} has no gallery yet: '
                               'call index_folder() or load() first')

    def _search(self,
                feats: torch.Tensor,
                topk: int,
                exclude: Sequence[int] = ()) -> SearchResult:
        self._check_ready()
        if int(topk) < 1:
            raise ValueError(f'topk must be >= 1, got {topk}')
        exclude = set(int(i) for i in exclude)
        k = min(int(topk) + len(exclude), len(self.rel_paths))
        scores, ids = self.index.search(feats, k)
        out = SearchResult()
        for score, i in zip(scores[0].tolist(), ids[0].tolist()):
            if i < 0 or i in exclude:
                continue
            rel = self.rel_paths[i]
            out.paths.append(osp.join(self.root, rel))
            out.rel_paths.append(rel)
            out.scores.append(float(score))
            out.indices.append(int(i))
            if len(out) == int(topk):
                break
        return out


class TextPersonSearcher(GallerySearcher):
    """Find the people of an image folder that match a description.

    Example::

        searcher = TextPersonSearcher.from_config(
            'configs/baselines/clip-baseline_synthpedes-tiny.py',
            'work_dirs/demo/epoch_6.pth')
        searcher.index_folder('my_photos/')
        searcher.save('my_photos.index.npz')
        result = searcher.query('a woman in a red coat with a black bag', 5)
        for path, score in result: ...

    The model needs a text tower (``predict`` sets ``text_feat`` on caption
    items) and an image tower (``img_feat``). Arguments: see
    :class:`GallerySearcher`.
    """

    def query(self, text: str, topk: int = 10) -> SearchResult:
        """The ``topk`` images most similar to ``text``.

        Args:
            text (str): A description of the person.
            topk (int): Results to return. Defaults to 10.

        Returns:
            SearchResult: Best first.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError('the query must be a non-empty description')
        self._check_ready()
        return self._search(encode_texts(self.model, [text]), topk)


class PersonReIdentifier(GallerySearcher):
    """Find the images of a folder that show the person of a query image.

    Works with any model whose ``predict`` sets ``img_feat`` on image-only
    batches: the image ReID models (CCAF, CLIP-ReID) and the text-image
    ones alike. Arguments: see :class:`GallerySearcher`.
    """

    def query(self,
              image: ImageInput,
              topk: int = 10,
              exclude_self: bool = True,
              array_order: str = 'bgr') -> SearchResult:
        """The ``topk`` gallery images closest to ``image``.

        Args:
            image: A path, a PIL image or an ``H x W x 3`` uint8 array
                (BGR unless ``array_order='rgb'``).
            topk (int): Results to return. Defaults to 10.
            exclude_self (bool): When ``image`` is a path of an indexed
                file, leave that file out of the results. Defaults to True.
            array_order (str): Channel order of an array query.

        Returns:
            SearchResult: Best first.
        """
        self._check_ready()
        feats = encode_images(self.model, [image], 1, array_order)
        exclude: List[int] = []
        if exclude_self and isinstance(image, (str, os.PathLike)):
            exclude = self._rows_of(os.fspath(image))
        return self._search(feats, topk, exclude)

    def _rows_of(self, path: str) -> List[int]:
        """Index rows holding the file ``path`` (none if outside root)."""
        rel = osp.relpath(osp.realpath(path), osp.realpath(self.root))
        if rel.startswith('..'):
            return []
        rel = rel.replace(os.sep, '/')
        if getattr(self, '_row_of', None) is None or len(self._row_of) != len(
                self.rel_paths):
            self._row_of = {p: i for i, p in enumerate(self.rel_paths)}
        row = self._row_of.get(rel)
        return [] if row is None else [row]
