"""Base class of the standard image person ReID datasets.

Market-1501, DukeMTMC-reID, Occluded-Duke and MSMT17 keep their labels in
file names (MSMT17 also in list files) and have no outfit labels. They are
read through :class:`~mmreid_clip.datasets.cloth_changing.ClothChangingDataset`
so that they produce the same items as the cloth-changing sets (the ReID data
contract of ``docs/design.md``): relabelling of the train split, counted
skipping of bad samples, optional parsing masks and error messages come from
there. This module adds what the standard benchmarks share: junk images
(pid -1) left out as the protocol says, distractors kept in the gallery,
0-based camera indices in a fixed range, and an optional check of the
folder sizes against the full release.
"""
import collections
import os.path as osp
import re
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

from mmengine.logging import print_log

from ..cloth_changing.base import ClothChangingDataset, RawSample
from ..text_image_dataset import AnnotationError

__all__ = ['CountMismatchError', 'StandardReIDDataset']


class CountMismatchError(AnnotationError):
    """A split whose image or identity counts differ from the full release
    (``check_counts=True``); the message names every folder or list file
    that differs."""


class StandardReIDDataset(ClothChangingDataset):
    """Common logic of the standard (single-outfit) image ReID datasets.

    Subclasses set the class attributes below; the default reader walks
    Market-1501-style folders (one image per file, labels in the name,
    parsed with :attr:`NAME_RE`, whose groups ``pid`` and ``cam`` give the
    identity and the camera number), and MSMT17 overrides
    :meth:`_read_source` to read its list files. Items are those of
    :class:`ClothChangingDataset`:

    * ``pid``: ``0..N_id-1`` in sorted order of the raw ids on the train
      split, the dataset's own id on the test split;
    * ``camid``: the 0-based camera index, i.e. the camera number of the
      name minus 1 (``c1`` -> 0). It indexes the SIE camera table
      (``OpenCLIPReIDVisionTransformer(sie_cameras=NUM_CAMERAS)``), as in
      CLIP-ReID; the metric only compares camids, so the offset does not
      change any number. A camera outside ``1..NUM_CAMERAS`` is a bad
      sample;
    * ``clothes_id``: these datasets have no outfit labels, so every
      identity counts as one outfit (``clothes_id`` is the identity's index
      among the split's pids, equal to the relabelled pid on the train
      split). The clothes-aware metric modes are meaningless here; use the
      datasets' own ``ReIDMetric`` presets (standard rule);
    * ``subset``: ``'train'``, or ``'query'`` / ``'gallery'`` on the test
      split (query items first).

    Junk and distractors (Zheng et al., ICCV 2015, the Market-1501
    protocol): images with pid :attr:`JUNK_PID` (-1) are neither matches
    nor mismatches, so they are left out of every split, counted per
    folder in ``metainfo['num_junk']`` and logged. Distractors (pid
    :attr:`DISTRACTOR_PID`, 0 in Market-1501) stay in the gallery, where
    the metric ranks them as ordinary negatives (no query has pid 0); a
    distractor in another folder is a bad sample.

    Counts: ``check_counts=True`` compares every folder (or list file) of
    the split with the full release (:attr:`EXPECTED_IMAGES`,
    :attr:`EXPECTED_JUNK`) and every subset's number of identities with
    :attr:`EXPECTED_IDS`, and raises :class:`CountMismatchError` naming
    each file that differs, e.g. for a truncated copy. The configs turn it
    on; turn it off to train on a modified copy on purpose.

    ``metainfo`` adds ``num_cameras`` and ``num_junk`` (folder or list file
    -> junk images left out) to that of :class:`ClothChangingDataset`, and
    on the test split ``num_distractors`` (gallery items with pid
    :attr:`DISTRACTOR_PID`) when the dataset has distractors.

    Args:
        data_root (str): The dataset folder (e.g.
            ``.../Market-1501-v15.09.15``).
        split (str): ``'train'`` or ``'test'``. Defaults to 'train'.
        pipeline (Sequence[dict | Callable]): Transforms. Defaults to ().
        check_counts (bool): Check the split against the full release (see
            above). Defaults to False.
        with_mask, mask_dir, on_bad_sample, test_mode, metainfo, indices,
        serialize_data, lazy_init, max_refetch: see
            :class:`ClothChangingDataset`.
    """

    DATASET_NAME = 'image ReID dataset'
    SPLITS = ('train', 'test')
    TRAIN_SPLITS = ('train', )
    #: Cameras of the dataset; camera numbers in names run 1..NUM_CAMERAS.
    NUM_CAMERAS: int = 0
    #: pid of junk images (left out).
    JUNK_PID: int = -1
    #: pid of distractor images (kept in the gallery); None if there are
    #: none.
    DISTRACTOR_PID: Optional[int] = None
    #: Split -> ((folder or list file, subset), ...), read in this order.
    SOURCES: Dict[str, Tuple[Tuple[str, str], ...]] = {}
    #: Folder or list file -> kept (non-junk) images in the full release.
    EXPECTED_IMAGES: Dict[str, int] = {}
    #: Folder or list file -> junk images in the full release (default 0).
    EXPECTED_JUNK: Dict[str, int] = {}
    #: Subset -> identities in the full release (distractor id included).
    EXPECTED_IDS: Dict[str, int] = {}
    #: File-name rule with groups ``pid`` and ``cam`` (matched on the whole
    #: stem).
    NAME_RE: re.Pattern = re.compile(r'(?P<pid>-1|\d+)_c(?P<cam>\d+)_.+')
    #: The naming rule as quoted in messages.
    PATTERN: str = ''

    def __init__(self,
                 data_root: str = '',
                 split: str = 'train',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 check_counts: bool = False,
                 with_mask: bool = False,
                 mask_dir: Optional[str] = None,
                 on_bad_sample: str = 'error',
                 test_mode: Optional[bool] = None,
                 metainfo: Optional[dict] = None,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 serialize_data: bool = True,
                 lazy_init: bool = False,
                 max_refetch: int = 1000) -> None:
        # set before the parent reads the split (it does unless lazy_init)
        self.check_counts = bool(check_counts)
        self._junk: Dict[str, int] = {}
        super().__init__(
            data_root=data_root,
            split=split,
            pipeline=pipeline,
            with_mask=with_mask,
            mask_dir=mask_dir,
            on_bad_sample=on_bad_sample,
            test_mode=test_mode,
            metainfo=metainfo,
            indices=indices,
            serialize_data=serialize_data,
            lazy_init=lazy_init,
            max_refetch=max_refetch)

    # ------------------------------------------------------------------
    # reading

    def _sources(self) -> Tuple[Tuple[str, str], ...]:
        """The (folder or list file, subset) pairs of the split."""
        return self.SOURCES[self.split]

    def _expected_ids(self, subset: str) -> Optional[int]:
        """Identities of ``subset`` in the full release (None: unchecked)."""
        return self.EXPECTED_IDS.get(subset)

    def _make_sample(self, img_path: str, folder: str, rel_path: str,
                     pid: int, cam: int, subset: str) -> Optional[RawSample]:
        """A raw sample, or None (after :meth:`_bad_sample`) when the camera
        is out of range or a distractor is outside the gallery."""
        if not 1 <= cam <= self.NUM_CAMERAS:
            self._bad_sample(
                'cameras out of range', img_path,
                f'{img_path}: camera {cam} is outside 1..{self.NUM_CAMERAS}'
                f', the cameras of {self.DATASET_NAME}')
            return None
        if (self.DISTRACTOR_PID is not None and pid == self.DISTRACTOR_PID
                and subset != 'gallery'):
            self._bad_sample(
                'distractors outside the gallery', img_path,
                f'{img_path}: pid {pid} marks a distractor, which the '
                f'release has only in the gallery, not in the {subset} '
                'images')
            return None
        return RawSample(
            img_path=img_path,
            folder=folder,
            rel_path=rel_path,
            pid=pid,
            camid=cam - 1,
            # no outfit labels: one "outfit" per identity; zero-padded so
            # the string order is the numeric one (junk never gets here)
            clothes_key=f'{pid:010d}',
            subset=subset)

    def _read_source(self, source: str,
                     subset: str) -> Tuple[List[RawSample], int]:
        """Read one folder of the Market-1501 layout.

        Args:
            source (str): The folder, relative to ``data_root``.
            subset (str): The items' subset.

        Returns:
            tuple: The kept samples and the number of junk images.
        """
        path = self._path(source)
        samples, junk = [], 0
        for name in self._list_images(path):
            img_path = osp.join(path, name)
            m = self.NAME_RE.fullmatch(osp.splitext(name)[0])
            if m is None:
                self._bad_sample(
                    'unparseable file names', img_path,
                    f'cannot parse the file name {img_path}: expected '
                    f'{self.PATTERN}')
                continue
            pid = int(m.group('pid'))
            if pid == self.JUNK_PID:
                junk += 1
                continue
            sample = self._make_sample(img_path, source, name, pid,
                                       int(m.group('cam')), subset)
            if sample is not None:
                samples.append(sample)
        return samples, junk

    def _read_split(self) -> List[RawSample]:
        self._junk = {}
        read = []
        for source, subset in self._sources():
            samples, junk = self._read_source(source, subset)
            self._junk[source] = junk
            read.append((source, subset, samples, junk))
            if junk:
                print_log(
                    f'{self.DATASET_NAME} {self.split}: left out {junk} junk '
                    f'images (pid {self.JUNK_PID}) of '
                    f'{self._path(source)}, as the standard protocol does',
                    logger='current')
        if self.check_counts:
            self._check_counts(read)
        return [s for _, _, samples, _ in read for s in samples]

    def _check_counts(self, read: List[Tuple[str, str, List[RawSample],
                                             int]]) -> None:
        """Raise :class:`CountMismatchError` listing every file whose
        counts differ from the full release."""
        problems = []
        ids: Dict[str, Set[int]] = collections.defaultdict(set)
        files: Dict[str, List[str]] = collections.defaultdict(list)
        for source, subset, samples, junk in read:
            path = self._path(source)
            ids[subset].update(s.pid for s in samples)
            files[subset].append(path)
            expected = self.EXPECTED_IMAGES.get(source)
            if expected is not None and len(samples) != expected:
                problems.append(
                    f'{path}: {len(samples):,} images (junk left out), the '
                    f'full release has {expected:,}')
            expected_junk = self.EXPECTED_JUNK.get(source, 0)
            if junk != expected_junk:
                problems.append(
                    f'{path}: {junk:,} junk images (pid {self.JUNK_PID}), '
                    f'the full release has {expected_junk:,}')
        for subset, found in ids.items():
            expected = self._expected_ids(subset)
            if expected is not None and len(found) != expected:
                problems.append(
                    f'{" + ".join(files[subset])}: {len(found):,} {subset} '
                    f'identities, the full release has {expected:,}')
        if problems:
            skipped = sum(len(v) for v in self._skipped.values())
            note = (f' ({skipped} bad samples were skipped)'
                    if skipped else '')
            raise CountMismatchError(
                f'{self.DATASET_NAME} {self.split}: the data differ from the '
                f'full release (check_counts=True){note}: ' +
                '; '.join(problems) + '. Is the copy truncated or modified? '
                'Re-extract the original archive, or pass check_counts=False'
                ' to load it as it is.')

    def load_data_list(self) -> List[dict]:
        """Read the split (see :class:`ClothChangingDataset`) and add the
        junk, camera and distractor counts to ``metainfo``."""
        items = super().load_data_list()
        meta = dict(num_cameras=self.NUM_CAMERAS, num_junk=dict(self._junk))
        if not self.is_train_format and self.DISTRACTOR_PID is not None:
            meta['num_distractors'] = sum(
                1 for item in items if item['subset'] == 'gallery'
                and item['pid'] == self.DISTRACTOR_PID)
        self._metainfo.update(meta)
        return items
