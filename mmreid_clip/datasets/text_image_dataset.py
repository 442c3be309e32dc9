"""Base class of the text-image person retrieval (TIPR) datasets.

The three benchmarks share one annotation shape (a JSON list with one entry
per image: ``split``, ``captions``, an image path and ``id``) and differ in
the file name, the name of the path field and the splits they have.
:class:`TextImageDataset` reads and validates that shape and builds the item
lists fixed by ``docs/design.md``; the subclasses only declare their
differences (and CUHK-PEDES rejects its look-alike ``caption_all.json``).

This module holds the dataset class: its arguments, the items built from
the parsed entries, and the pipelines run on an item. Reading and
validating the annotation file is :mod:`.text_image_annotations`, the
image-file checks :mod:`.text_image_images`, and the bad-sample errors
shared with the other datasets :mod:`.bad_samples` (still importable from
here).
"""
import collections
import logging
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmreid_clip.registry import DATASETS, TRANSFORMS
from .bad_samples import (BAD_SAMPLE_ACTIONS, AnnotationError, BadImageError,
                          image_file_problem)
from .pid_access import PidAccessMixin
from .text_image_annotations import TextImageAnnotationMixin
from .text_image_images import TextImageFileChecksMixin
from .utils import compose_pipeline, log_skipped

__all__ = [
    'AnnotationError', 'BadImageError', 'BAD_SAMPLE_ACTIONS',
    'TextImageDataset', 'image_file_problem'
]


@DATASETS.register_module()
class TextImageDataset(TextImageAnnotationMixin, TextImageFileChecksMixin,
                       PidAccessMixin, BaseDataset):
    """Image-caption person retrieval data in the common JSON-list format.

    The annotation file is a JSON list with one entry per image::

        {"split": "train", "captions": ["A man ...", "..."],
         "file_path": "cam_a/0001.jpg", "id": 1, ...}

    (the path field is named by ``PATH_KEY``; other fields are ignored).
    Items (``get_data_info``), as in ``docs/design.md``:

    - ``split='train'``: one (image, caption) pair per caption, in file
      order; ``pid`` is remapped to ``0..C-1`` in sorted order of the raw
      ids and ``metainfo['num_classes'] = C``.
    - ``split='val'`` / ``'test'``: an image item for every unique image,
      then a text item for every caption; ``pid`` is the raw id.

    Every item has ``pid``, ``image_id`` (index of the unique image within
    the split, in file order) and ``caption_id`` (index of the caption
    within the split, -1 on image items); pair and image items have an
    absolute ``img_path``, pair and text items a ``caption``. Entries that
    repeat an image path (with the same id) add their captions to that
    image; an image without any caption is left out of the train split (it
    gives no pair, and its identity would be a class without samples) and
    kept in the gallery of val/test. ``docs/reliability.md`` lists how each
    kind of bad input is reported.

    Args:
        data_root (str): Dataset folder; relative ``ann_file`` and
            ``img_prefix`` are joined to it. Defaults to ''.
        ann_file (str, optional): Annotation file; defaults to the dataset's
            standard name under ``data_root`` (``DEFAULT_ANN_FILES``).
        split (str): ``'train'``, ``'val'`` or ``'test'`` (among the
            dataset's ``SPLITS``). Defaults to ``'train'``.
        pipeline (Sequence[dict | Callable]): Image transforms (mmcv /
            mmpretrain ones, starting with ``LoadImageFromFile``), run on
            items with ``img_path``. Defaults to ().
        text_pipeline (Sequence[dict | Callable]): Caption transforms (e.g.
            ``TokenizeCaption``), run on items with ``caption``.
            Defaults to ().
        pack (dict | Callable): The packing transform. Defaults to
            ``dict(type='PackTextImageInputs')``.
        img_prefix (str): Image folder, relative to ``data_root`` unless
            absolute; the path field is relative to it. Defaults to 'imgs'.
        check_files (bool): Check at load time that every image of the split
            exists, so a partial copy fails at once with the list of missing
            files instead of mid-epoch. Defaults to True.
        allow_outside_root (bool): Accept image paths that are absolute or
            climb out of the image folder with ``..``. Off by default: such
            an entry is a bad sample naming the path (so a stray or hostile
            annotation file cannot make the dataset read files elsewhere);
            turn it on if your images really live outside ``img_prefix``.
            Paths are normalised either way (``a/./b.jpg`` is ``a/b.jpg``),
            so one image listed under two spellings is one image.
            Defaults to False.
        on_bad_sample (str): ``'error'`` raises on the first bad sample,
            naming the file and the offending entry; ``'skip'`` drops it,
            counts it and logs it (never silently). Bad samples are: an
            entry with missing fields or wrong types, an empty or
            whitespace-only (or non-string) caption (only that caption is
            dropped), an entry repeating an earlier one, an image given two
            identities, a missing image file (with ``check_files``), and on
            the train split an image that cannot be read or decoded when it
            is loaded (mmengine then draws another item). A malformed file,
            or a split left without samples, is an error in both modes; so
            is an undecodable image of a val/test split, since skipping it
            would change the evaluation protocol. The counts are in
            ``metainfo['num_skipped']`` and :attr:`num_bad_images`.
            Defaults to 'error'.
        metainfo (dict, optional): Extra meta information.
        indices (int | Sequence[int], optional): Keep only these items
            (mmengine's subset option). Defaults to None.
        serialize_data (bool): mmengine's shared-memory item storage.
            Defaults to True.
        lazy_init (bool): Defer reading the annotations. Defaults to False.
        max_refetch (int): mmengine's retries when a train pipeline returns
            None. Defaults to 1000.

    ``test_mode`` follows the split (True for val/test), so mmengine never
    swaps a failing evaluation item for a random one.
    """

    #: Name used in messages.
    DATASET_NAME: str = 'text-image dataset'
    #: Annotation file names tried in order under ``data_root``.
    DEFAULT_ANN_FILES: Tuple[str, ...] = ()
    #: Field of an entry holding the image path, relative to ``img_prefix``.
    PATH_KEY: str = 'file_path'
    #: The splits this dataset has.
    SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
    #: Expected on-disk layout, quoted when files are missing.
    LAYOUT: str = ('<data_root>/<annotation>.json (a list of {split, '
                   'captions, file_path, id}) and <data_root>/imgs/...')
    #: Extra advice when images are missing.
    MISSING_FILES_HINT: str = ''
    #: Extra advice when an unknown split is asked for.
    SPLIT_HINT: str = ''
    #: How many missing images a FileNotFoundError lists.
    NUM_MISSING_SHOWN: int = 5
    #: How many skipped samples are logged one by one.
    NUM_SKIPS_LOGGED: int = 5

    def __init__(self,
                 data_root: str = '',
                 ann_file: Optional[str] = None,
                 split: str = 'train',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 text_pipeline: Sequence[Union[dict, Callable]] = (),
                 pack: Union[dict,
                             Callable] = dict(type='PackTextImageInputs'),
                 img_prefix: str = 'imgs',
                 check_files: bool = True,
                 on_bad_sample: str = 'error',
                 allow_outside_root: bool = False,
                 metainfo: Optional[dict] = None,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 serialize_data: bool = True,
                 lazy_init: bool = False,
                 max_refetch: int = 1000) -> None:
        if split not in self.SPLITS:
            raise ValueError(
                f'{self.DATASET_NAME} has no {split!r} split; it has '
                f'{", ".join(self.SPLITS)}.{self.SPLIT_HINT}')
        if on_bad_sample not in BAD_SAMPLE_ACTIONS:
            raise ValueError(f'on_bad_sample must be one of '
                             f'{BAD_SAMPLE_ACTIONS}, got {on_bad_sample!r}')
        if ann_file is None:
            ann_file = self._default_ann_file(data_root)
        self.split = split
        self.check_files = check_files
        self.on_bad_sample = on_bad_sample
        self.allow_outside_root = bool(allow_outside_root)
        #: Load-time skips: one message per skipped entry/caption/image.
        self.skipped: List[str] = []
        #: Train items whose image failed to load and were skipped (counted
        #: per process: each DataLoader worker holds its own copy).
        self.num_bad_images = 0
        # image_id -> index of the annotation entry that introduced it
        self._image_entries: List[int] = []
        self.text_pipeline = compose_pipeline(text_pipeline)
        self.pack = TRANSFORMS.build(pack) if isinstance(pack, dict) else pack
        self._pids: Optional[np.ndarray] = None
        super().__init__(
            ann_file=ann_file,
            metainfo=metainfo,
            data_root=data_root,
            data_prefix=dict(img_path=img_prefix),
            indices=indices,
            serialize_data=serialize_data,
            # built below through our registry (see compose_pipeline)
            pipeline=[],
            test_mode=split != 'train',
            lazy_init=True,
            max_refetch=max_refetch)
        self.pipeline = compose_pipeline(pipeline)
        if not lazy_init:
            self.full_init()

    # ------------------------------------------------------------------
    # items

    def load_data_list(self) -> List[dict]:
        """Read the annotation file and build the split's items."""
        self.skipped = []
        raw = self._read_json()
        entries = []
        split_counts = collections.Counter()
        for index, entry in enumerate(raw):
            try:
                parsed = self._parse_entry(index, entry)
            except AnnotationError as err:
                self._reject(str(err))
                continue
            split_counts[parsed['split']] += 1
            if parsed['split'] == self.split:
                parsed['index'] = index
                parsed['spelled'] = entry[self.PATH_KEY]
                entries.append(parsed)
        if not entries:
            skipped = (f'; {len(self.skipped)} bad entries were skipped'
                       if self.skipped else '')
            raise AnnotationError(
                f'{self.ann_file}: split {self.split!r} has no entries '
                f'(entries per split: {dict(split_counts) or "none"})'
                f'{skipped}')

        img_dir = osp.abspath(self.data_prefix['img_path'])
        images: Dict[str, int] = {}  # relative path -> image_id
        image_rows: List[dict] = []  # one per unique image
        no_caption = []
        seen_entries: Dict[tuple, int] = {}
        merged = 0
        respelled: List[Tuple[str, str]] = []  # (this spelling, first one)
        for entry in entries:
            signature = (entry['path'], entry['pid'], tuple(entry['captions']))
            if signature in seen_entries:
                self._reject(
                    f'{self.ann_file}: entry #{entry["index"]} repeats entry '
                    f'#{seen_entries[signature]} (same {self.PATH_KEY} '
                    f'{entry["path"]!r}, id {entry["pid"]} and captions): a '
                    'duplicated entry would count its captions twice')
                continue
            seen_entries[signature] = entry['index']
            image_id = images.get(entry['path'])
            if image_id is None:
                image_id = images[entry['path']] = len(image_rows)
                image_rows.append(
                    dict(
                        path=entry['path'],
                        img_path=osp.join(img_dir, entry['path']),
                        pid=entry['pid'],
                        index=entry['index'],
                        spelled=entry['spelled'],
                        captions=[]))
            elif image_rows[image_id]['pid'] != entry['pid']:
                first = image_rows[image_id]
                self._reject(
                    f'{self.ann_file}: entry #{entry["index"]} gives image '
                    f'{entry["path"]!r} id {entry["pid"]}, entry '
                    f'#{first["index"]} gives it id {first["pid"]}')
                continue
            else:
                merged += 1
                if image_rows[image_id]['spelled'] != entry['spelled']:
                    respelled.append((entry['spelled'],
                                      image_rows[image_id]['spelled']))
            if not entry['captions']:
                no_caption.append(entry['index'])
            image_rows[image_id]['captions'].extend(entry['captions'])

        if self.check_files:
            image_rows = self._check_images(image_rows, img_dir)
        num_captions = sum(len(r['captions']) for r in image_rows)
        if num_captions == 0:
            skipped = (f' ({len(self.skipped)} bad samples were skipped)'
                       if self.skipped else '')
            raise AnnotationError(f'{self.ann_file}: split {self.split!r} has '
                                  f'{len(image_rows)} images but no captions'
                                  f'{skipped}')
        if no_caption:
            if self.split == 'train':
                # no pair item: keeping the image would count its identity
                # as a class that no training sample has
                image_rows = [r for r in image_rows if r['captions']]
                fate = 'they give no training pair and are left out'
            else:
                fate = 'their images are kept in the gallery'
            print_log(
                f'{self.ann_file}: {len(no_caption)} entries of split '
                f'{self.split!r} have no caption (first: entry '
                f'#{no_caption[0]}); {fate}',
                logger='current',
                level=logging.WARNING)
        if merged:
            print_log(
                f'{self.ann_file}: {merged} entries of split {self.split!r} '
                'repeat the image of an earlier entry with other captions; '
                'their captions were added to that image',
                logger='current')
        if respelled:
            print_log(
                f'{self.ann_file}: {len(respelled)} entries of split '
                f'{self.split!r} name an earlier image with another spelling '
                f'of its path (e.g. {respelled[0][0]!r} is '
                f'{respelled[0][1]!r}); they count as that image',
                logger='current',
                level=logging.WARNING)
        log_skipped(f'{self.DATASET_NAME} {self.split} ({self.ann_file})',
                    self.skipped, self.NUM_SKIPS_LOGGED)
        self._image_entries = [r['index'] for r in image_rows]

        raw_ids = sorted({r['pid'] for r in image_rows})
        if self.split == 'train':
            remap = {pid: label for label, pid in enumerate(raw_ids)}
        else:
            remap = {pid: pid for pid in raw_ids}
        items = self._build_items(image_rows, remap)

        meta = dict(
            split=self.split,
            num_identities=len(raw_ids),
            num_images=len(image_rows),
            num_captions=num_captions,
            num_skipped=len(self.skipped))
        if self.split == 'train':
            meta['num_classes'] = len(raw_ids)
        self._metainfo.update(meta)
        classes = (f', num_classes={len(raw_ids)} (raw ids '
                   f'{raw_ids[0]}..{raw_ids[-1]} -> 0..{len(raw_ids) - 1})'
                   if self.split == 'train' else '')
        skipped = (f', {len(self.skipped)} bad samples skipped'
                   if self.skipped else '')
        print_log(
            f'{self.DATASET_NAME} {self.split}: {len(items)} items from '
            f'{self.ann_file}: {len(image_rows)} images, {num_captions} '
            f'captions, {len(raw_ids)} identities{classes}{skipped}',
            logger='current')
        return items

    def _build_items(self, image_rows: List[dict],
                     remap: Dict[int, int]) -> List[dict]:
        items = []
        caption_id = 0
        if self.split == 'train':
            for image_id, row in enumerate(image_rows):
                for caption in row['captions']:
                    items.append(
                        dict(
                            img_path=row['img_path'],
                            caption=caption,
                            pid=remap[row['pid']],
                            image_id=image_id,
                            caption_id=caption_id))
                    caption_id += 1
            return items
        for image_id, row in enumerate(image_rows):
            items.append(
                dict(
                    img_path=row['img_path'],
                    pid=remap[row['pid']],
                    image_id=image_id,
                    caption_id=-1))
        for image_id, row in enumerate(image_rows):
            for caption in row['captions']:
                items.append(
                    dict(
                        caption=caption,
                        pid=remap[row['pid']],
                        image_id=image_id,
                        caption_id=caption_id))
                caption_id += 1
        return items

    # ------------------------------------------------------------------
    # access

    def prepare_data(self, idx: int) -> Optional[dict]:
        """Run ``pipeline`` / ``text_pipeline`` as the item needs, then pack.

        Args:
            idx (int): Item index.

        Returns:
            dict | None: ``{'inputs': ..., 'data_samples': ...}``, or None
            when a transform drops the item or, with
            ``on_bad_sample='skip'`` on the train split, its image cannot be
            loaded (mmengine then draws another item).

        Raises:
            BadImageError: the item's image file is missing, empty or not
                decodable (and not skipped); the message names the file, the
                item and the annotation entry.
        """
        results = self.get_data_info(idx)
        if 'img_path' in results:
            try:
                results = self.pipeline(results)
            except Exception as err:
                problem = image_file_problem(results['img_path'])
                if problem is None:
                    raise  # the file is fine: a pipeline error, not data
                return self._bad_image(idx, results, problem, err)
            if results is None:
                return None
        if 'caption' in results:
            results = self.text_pipeline(results)
            if results is None:
                return None
        return self.pack(results)

    def __repr__(self) -> str:
        size = len(self) if self._fully_initialized else 'not loaded'
        return (f'{type(self).__name__}(split={self.split!r}, '
                f'ann_file={self.ann_file!r}, items={size})')
