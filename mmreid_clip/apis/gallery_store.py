"""Saving and loading a gallery index, and checking that it is still
fresh: made by the same model (:class:`StaleIndexError`) and of the folder
as it is now (:func:`folder_state`, :class:`StaleGalleryError`).
"""
import logging
import os
import os.path as osp
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import torch.nn as nn
from mmengine.logging import print_log

from mmreid_clip.datasets.utils import IMG_EXTENSIONS
from .inference import list_images
from .search_index import load_index

if TYPE_CHECKING:  # the class these methods belong to
    from .searchers import GallerySearcher

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


class GalleryStoreMixin:
    """The file part of :class:`~.searchers.GallerySearcher`: it writes
    and reads ``index``, ``root``, ``rel_paths``, ``fingerprint``,
    ``folder_state``, ``listing`` and ``skipped``.
    """

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
