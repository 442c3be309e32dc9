"""Encoding a gallery folder into a search index
(:meth:`~.searchers.GallerySearcher.index_folder`): images that cannot be
read are found, skipped, counted and logged, and never stop the indexing
of the others.
"""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log

from mmreid_clip.datasets.utils import IMG_EXTENSIONS
from .gallery_store import folder_state
from .inference import encode_images, list_images
from .search_index import build_index


def _image_problem(path: str) -> Optional[str]:
    """Why the image ``path`` cannot be indexed, or None."""
    if osp.islink(path) and not osp.exists(path):
        return f'a broken symbolic link (to {os.readlink(path)!r})'
    from mmreid_clip.datasets.text_image_dataset import image_file_problem
    return image_file_problem(path)


class GalleryIndexingMixin:
    """The indexing part of :class:`~.searchers.GallerySearcher`: it reads
    ``model``, ``index_kind``, ``index_cfg``, ``batch_size``,
    ``num_workers`` and ``PROGRESS_EVERY``, and sets ``index``, ``root``,
    ``rel_paths``, ``skipped``, ``listing`` and ``folder_state``.
    """

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
            shown = '\n  '.join(
                f'{p}: {why}' for p, why in list(self.skipped.items())[:10])
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

    def _encode_skipping(
            self, root: str, chunk: List[str],
            skipped: Dict[str, str]) -> Tuple[torch.Tensor, List[str]]:
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
