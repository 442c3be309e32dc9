"""MSMT17 (Wei, Zhang, Gao, Tian, "Person Transfer GAN to Bridge Domain Gap
for Person Re-Identification", CVPR 2018)."""
import os.path as osp
import re
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

from mmreid_clip.registry import DATASETS
from ..cloth_changing.base import RawSample
from .base import StandardReIDDataset


@DATASETS.register_module()
class MSMT17(StandardReIDDataset):
    """MSMT17 (V1): 4,101 identities from 15 cameras (12 outdoor, 3 indoor).

    Layout (the ``MSMT17_V1`` release, unchanged)::

        MSMT17_V1/
          train/0000/0000_000_01_0303morning_0015_0.jpg  # <pid>/ folders
          test/0000/...
          list_train.txt  list_val.txt                   # under train/
          list_query.txt  list_gallery.txt               # under test/

    Every list file names its images, one ``<path> <pid>`` line each, the
    path relative to ``train/`` (train and val lists) or ``test/`` (query
    and gallery lists); the lists are authoritative (an image they do not
    name is not read, a listed image that is missing is a bad sample). The
    pid is the list's label (train and val lists share the labels
    0..1040). The camera is the third ``_``-separated field of the file
    name (``0000_000_01_...`` -> camera 1, range 1-15); ``camid`` is the
    camera number minus 1 (0-14). MSMT17 has no junk or distractor
    images. (MSMT17_V2, with ``mask_train_v2/`` folders and other names,
    is not read.)

    Standard split (checked with ``check_counts=True``):

    ========= ================================== ========== =============
    subset    list files                         identities images
    ========= ================================== ========== =============
    train     list_train.txt + list_val.txt      1,041      32,621 (30,248
                                                            + 2,373)
    query     list_query.txt                     3,060      11,659
    gallery   list_gallery.txt                   3,060      82,161
    ========= ================================== ========== =============

    The train split reads the train **and** val lists, as CLIP-ReID and
    most published MSMT17 results do; ``train_with_val=False`` reads
    ``list_train.txt`` only (the identity count is then not checked).

    Splits: ``'train'`` and ``'test'`` (query items, then gallery items).
    Evaluate with ``ReIDMetric(settings='msmt17')``.

    Args:
        train_with_val (bool): Add ``list_val.txt`` to the train split.
            Defaults to True.
        others: see :class:`StandardReIDDataset`; masks (``with_mask``)
            mirror the image folders, e.g. ``train-mask/0000/<stem>.png``.
    """

    DATASET_NAME = 'MSMT17'
    LAYOUT = ('MSMT17_V1/{train,test}/<pid>/<name>.jpg with list_train.txt, '
              'list_val.txt (paths under train/) and list_query.txt, '
              'list_gallery.txt (paths under test/), one "<path> <pid>" '
              'line per image')
    NUM_CAMERAS = 15
    #: pid, sequence, camera, then the rest (date and time, frame, ...).
    NAME_RE = re.compile(r'(?P<pid>\d+)_\d+_(?P<cam>\d+)_.+')
    PATTERN = ('<pid>_<seq>_<camera>_<date+time>_<frame>_<n>.jpg, e.g. '
               '0000_000_01_0303morning_0015_0.jpg')
    SOURCES = {
        'train': (('list_train.txt', 'train'), ('list_val.txt', 'train')),
        'test': (('list_query.txt', 'query'),
                 ('list_gallery.txt', 'gallery')),
    }
    #: List file -> the folder its paths are relative to.
    IMAGE_DIRS = {
        'list_train.txt': 'train',
        'list_val.txt': 'train',
        'list_query.txt': 'test',
        'list_gallery.txt': 'test',
    }
    EXPECTED_IMAGES = {
        'list_train.txt': 30248,
        'list_val.txt': 2373,
        'list_query.txt': 11659,
        'list_gallery.txt': 82161,
    }
    EXPECTED_IDS = {'train': 1041, 'query': 3060, 'gallery': 3060}

    def __init__(self,
                 data_root: str = '',
                 split: str = 'train',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 check_counts: bool = False,
                 train_with_val: bool = True,
                 **kwargs) -> None:
        self.train_with_val = bool(train_with_val)
        super().__init__(
            data_root=data_root,
            split=split,
            pipeline=pipeline,
            check_counts=check_counts,
            **kwargs)

    def _sources(self) -> Tuple[Tuple[str, str], ...]:
        sources = self.SOURCES[self.split]
        if not self.train_with_val:
            sources = tuple(s for s in sources if s[0] != 'list_val.txt')
        return sources

    def _expected_ids(self, subset: str) -> Optional[int]:
        if subset == 'train' and not self.train_with_val:
            return None  # not documented for list_train.txt alone
        return super()._expected_ids(subset)

    def _read_source(self, source: str,
                     subset: str) -> Tuple[List[RawSample], int]:
        """Read one list file.

        Args:
            source (str): The list file, relative to ``data_root``.
            subset (str): The items' subset.

        Returns:
            tuple: The listed samples and 0 (MSMT17 has no junk).
        """
        folder = self.IMAGE_DIRS[source]
        image_dir = self._path(folder)
        list_file = self._path(source)
        self._require_dir(image_dir)
        self._require_file(list_file, 'list file')
        with open(list_file, encoding='utf-8') as f:
            lines = f.read().splitlines()
        present: Dict[str, Set[str]] = {}
        samples = []
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f'{list_file}, line {lineno}'
            fields = line.split()
            if len(fields) != 2 or not re.fullmatch(r'\d+', fields[1]):
                self._bad_sample(
                    'malformed list lines', where,
                    f'{where}: expected "<path> <pid>", got {line!r}')
                continue
            rel_path, pid = fields[0], int(fields[1])
            m = self.NAME_RE.fullmatch(
                osp.splitext(osp.basename(rel_path))[0])
            if m is None:
                self._bad_sample(
                    'unparseable file names', f'{where}: {rel_path}',
                    f'{where}: cannot parse the file name {rel_path!r}: '
                    f'expected {self.PATTERN}')
                continue
            img_path = self._listed_image(image_dir, rel_path, where,
                                          present)
            if img_path is None:
                continue
            rel_path = osp.relpath(img_path, image_dir)
            sample = self._make_sample(img_path, folder, rel_path, pid,
                                       int(m.group('cam')), subset)
            if sample is not None:
                samples.append(sample)
        return samples, 0
