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
"""
import logging
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log

from mmreid_clip.datasets.utils import IMG_EXTENSIONS
from .inference import (ImageInput, encode_images, encode_texts, init_model,
                        list_images, model_fingerprint)
from .search_index import (INDEX_KINDS, FeatureIndex, build_index,
                           import_faiss, load_index)

__all__ = [
    'SearchResult', 'StaleIndexError', 'StaleGalleryError', 'GallerySearcher',
    'TextPersonSearcher', 'PersonReIdentifier', 'SEARCHER_INDEX_FORMAT',
    'folder_state'
]

SEARCHER_INDEX_FORMAT = 'mmreid_clip.GalleryIndex/1'


class StaleIndexError(ValueError):
    """A saved index was made by another model, weights or pipeline."""


class StaleGalleryError(StaleIndexError):
    """The indexed folder changed after the index was made.

    Attributes:
        root (str): The folder.
    """

    def __init__(self, message: str, root: str) -> None:
        super().__init__(message)
        self.root = root


def folder_state(root: str, rel_paths: Sequence[str]) -> Dict[str, list]:
    """``{relative path: [size, mtime_ns]}`` of image files, the folder
    fingerprint a gallery index is checked against.

    A file that cannot be stat-ed (a dangling link) gets ``[-1, -1]``.
    """
    state = {}
    for rel in rel_paths:
        try:
            st = os.stat(osp.join(root, rel))
            state[rel] = [int(st.st_size), int(st.st_mtime_ns)]
        except OSError:
            state[rel] = [-1, -1]
    return state


def _folder_changes(saved: Dict[str, list],
                    now: Dict[str, list]) -> List[str]:
    """What changed between two :func:`folder_state` results, in words."""
    added = sorted(set(now) - set(saved))
    removed = sorted(set(saved) - set(now))
    replaced = sorted(p for p in set(now) & set(saved)
                      if list(now[p]) != list(saved[p]))
    out = []
    for what, paths in (('added', added), ('removed', removed),
                        ('replaced or modified', replaced)):
        if paths:
            out.append(f'{len(paths)} {what} (e.g. {paths[0]})')
    return out


def _image_problem(path: str) -> Optional[str]:
    """Why the image ``path`` cannot be indexed, or None."""
    if osp.islink(path) and not osp.exists(path):
        return f'a broken symbolic link (to {os.readlink(path)!r})'
    from mmreid_clip.datasets.text_image_dataset import image_file_problem
    return image_file_problem(path)


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


class GallerySearcher:
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

    def index_folder(self,
                     folder: str,
                     recursive: bool = True,
                     extensions: Sequence[str] = IMG_EXTENSIONS) -> int:
        """Encode every image under ``folder`` into a new index.

        An image that cannot be read (empty, corrupt, a broken link, over
        the pixel limit) is skipped and counted (:attr:`skipped`), and the
        skips are logged with their reasons; the others are indexed.

        Args:
            folder (str): The gallery folder.
            recursive (bool): Include sub-folders. Defaults to True.
            extensions (Sequence[str]): Image file endings.

        Returns:
            int: The number of images indexed.

        Raises:
            NotADirectoryError: ``folder`` is not a folder.
            ValueError: It holds no image, or none can be read (the message
                names the files and why).
        """
        root = osp.abspath(folder)
        listed = list_images(root, recursive, extensions)
        if not listed:
            raise ValueError(f'no image ({", ".join(extensions)}) found in '
                             f'{root}')
        # stat before encoding: a file replaced meanwhile shows as changed
        state = folder_state(root, listed)
        skipped: Dict[str, str] = {}
        for rel in listed:  # cheap checks first: no decoding
            path = osp.join(root, rel)
            if osp.islink(path) and not osp.exists(path):
                skipped[rel] = _image_problem(path)
            elif state[rel][0] == 0:
                skipped[rel] = 'the file is empty (0 bytes)'
        rel_paths = [p for p in listed if p not in skipped]
        blocks, kept = [], []
        for start in range(0, len(rel_paths), self.PROGRESS_EVERY):
            chunk = rel_paths[start:start + self.PROGRESS_EVERY]
            feats, good = self._encode_skipping(root, chunk, skipped)
            if good:
                blocks.append(feats)
                kept += good
            if len(rel_paths) > self.PROGRESS_EVERY:
                print_log(
                    f'encoded {start + len(chunk)} / {len(rel_paths)} '
                    f'images of {root}',
                    logger='current')
        self.skipped = dict(sorted(skipped.items()))
        if skipped:
            shown = '\n  '.join(f'{p}: {why}'
                                 for p, why in list(self.skipped.items())[:10])
            more = (f'\n  ... and {len(skipped) - 10} more'
                    if len(skipped) > 10 else '')
            print_log(
                f'skipped {len(skipped)} of {len(listed)} images of {root} '
                f'that cannot be read:\n  {shown}{more}',
                logger='current',
                level=logging.WARNING)
        if not kept:
            raise ValueError(f'none of the {len(listed)} images of {root} '
                             'can be read: ' + '; '.join(
                                 f'{p}: {why}'
                                 for p, why in list(self.skipped.items())[:5]))
        feats = torch.cat(blocks)
        index = build_index(self.index_kind, feats=feats, **self.index_cfg)
        self.index, self.root, self.rel_paths = index, root, kept
        self.listing = dict(recursive=bool(recursive),
                            extensions=list(extensions))
        self.folder_state = state
        print_log(
            f'indexed {len(kept)} images of {root} '
            f'({self.index_kind} index, {feats.size(1)}-d)',
            logger='current')
        return len(kept)

    def _encode_skipping(self, root: str, chunk: List[str],
                         skipped: Dict[str, str]
                         ) -> Tuple[torch.Tensor, List[str]]:
        """Encode ``chunk``; on a failure, find the unreadable images
        (recorded in ``skipped``) and encode the others."""
        paths = [osp.join(root, p) for p in chunk]
        try:
            return encode_images(
                self.model, paths, self.batch_size,
                num_workers=self.num_workers), chunk
        except (ValueError, OSError) as err:
            first = err
        bad = {}
        for rel, path in zip(chunk, paths):
            problem = _image_problem(path)
            if problem is not None:
                bad[rel] = problem
        if not bad:
            raise first  # every file decodes: a pipeline or model error
        skipped.update(bad)
        good = [p for p in chunk if p not in bad]
        if not good:
            return torch.empty(0), []
        return encode_images(
            self.model, [osp.join(root, p) for p in good],
            self.batch_size,
            num_workers=self.num_workers), good

    def save(self, path: str) -> str:
        """Write the index, the relative paths and the fingerprint.

        Args:
            path (str): Output ``.npz`` file.

        Returns:
            str: ``path``.
        """
        self._check_ready()
        meta = dict(
            format=SEARCHER_INDEX_FORMAT,
            root=self.root,
            rel_paths=self.rel_paths,
            fingerprint=self.fingerprint,
            folder_state=self.folder_state,
            listing=self.listing,
            skipped=self.skipped)
        return self.index.save(path, meta)

    def load(self,
             path: str,
             root: Optional[str] = None,
             check_folder: bool = True) -> 'GallerySearcher':
        """Read an index saved by :meth:`save` (by either searcher class).

        Args:
            path (str): The ``.npz`` file.
            root (str, optional): Where the images are now; defaults to the
                folder that was indexed (paths are stored relative to it,
                so a moved gallery only needs ``root``).
            check_folder (bool): Compare the folder with the fingerprint
                saved in the index (image files added, removed or
                replaced). Defaults to True.

        Returns:
            GallerySearcher: ``self``.

        Raises:
            StaleIndexError: The index was made by another model, other
                weights or other pipelines (the message says which).
            StaleGalleryError: The folder changed since it was indexed
                (the message says how), or the index predates folder
                fingerprints.
            ValueError: The file is not a gallery index.
        """
        index, meta = load_index(path)
        if meta.get('format') != SEARCHER_INDEX_FORMAT:
            raise ValueError(f'{path} is a feature index but not a gallery '
                             f'index ({SEARCHER_INDEX_FORMAT}); make it with '
                             'TextPersonSearcher/PersonReIdentifier.save')
        saved = meta.get('fingerprint') or {}
        keys = sorted(set(saved) | set(self.fingerprint))
        changed = [k for k in keys if saved.get(k) != self.fingerprint.get(k)]
        if changed:
            raise StaleIndexError(
                f'index {path} was made with another model: its '
                f'{", ".join(changed)} differ from the current model\'s. '
                'Its features are not comparable with this model\'s queries; '
                're-index the folder (index_folder, or --rebuild in the '
                'demos).')
        rel_paths = list(meta.get('rel_paths') or [])
        if len(rel_paths) != len(index):
            raise ValueError(f'{path}: {len(rel_paths)} paths for '
                             f'{len(index)} features')
        root = osp.abspath(root or meta.get('root') or '.')
        listing = dict(meta.get('listing') or self.listing)
        state = meta.get('folder_state')
        if check_folder:
            if not isinstance(state, dict):
                raise StaleGalleryError(
                    f'index {path} carries no fingerprint of its folder (it '
                    'was made by an older version): cannot tell whether '
                    f'{root} changed since. Re-index the folder '
                    '(index_folder, or --rebuild in the demos).', root)
            now = folder_state(
                root,
                list_images(root, bool(listing.get('recursive', True)),
                            listing.get('extensions') or IMG_EXTENSIONS)
                if osp.isdir(root) else [])
            diff = _folder_changes(state, now)
            if diff:
                raise StaleGalleryError(
                    f'index {path} does not match the folder {root} any '
                    f'more: images {", ".join(diff)} since it was indexed. '
                    'Its results would miss new images or show replaced '
                    'ones; re-index the folder (index_folder, or --rebuild '
                    'in the demos; load_or_build does it by itself).', root)
        self.root = root
        self.index, self.rel_paths = index, rel_paths
        self.index_kind = index.kind
        self.folder_state = dict(state or {})
        self.listing = listing
        self.skipped = dict(meta.get('skipped') or {})
        return self

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

    @classmethod
    def load_or_build(cls,
                      model: nn.Module,
                      folder: Optional[str] = None,
                      index_path: Optional[str] = None,
                      rebuild: bool = False,
                      **kwargs) -> 'GallerySearcher':
        """The searcher of the demos: reuse a saved index when it is fresh.

        With ``index_path`` pointing at an existing file and ``rebuild``
        False, the index is loaded (one made by another model raises
        :class:`StaleIndexError`; one whose folder changed since is rebuilt,
        with a warning saying what changed); otherwise ``folder`` is
        indexed and, when ``index_path`` is given, saved there.

        Args:
            model (nn.Module): The model.
            folder (str, optional): Gallery folder (needed to build; when
                loading it overrides the saved root).
            index_path (str, optional): Index file to load or write.
            rebuild (bool): Re-index even if ``index_path`` exists.
            **kwargs: Constructor arguments.

        Returns:
            GallerySearcher: A searcher with a gallery.
        """
        searcher = cls(model, **kwargs)
        if index_path and osp.isfile(index_path) and not rebuild:
            try:
                return searcher.load(index_path, root=folder)
            except StaleGalleryError as err:
                if folder is None and not osp.isdir(err.root):
                    raise
                folder = folder if folder is not None else err.root
                print_log(
                    f'{err} Re-indexing {folder} into {index_path}.',
                    logger='current',
                    level=logging.WARNING)
        if folder is None:
            raise ValueError('give the gallery folder to index (no saved '
                             f'index at {index_path!r})')
        searcher.index_folder(folder)
        if index_path:
            searcher.save(index_path)
        return searcher


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
