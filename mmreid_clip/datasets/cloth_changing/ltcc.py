"""LTCC (Qian et al., "Long-Term Cloth-Changing Person Re-identification",
ACCV 2020)."""
import os.path as osp
import re
from typing import List

from mmreid_clip.registry import DATASETS
from .base import ClothChangingDataset, RawSample


@DATASETS.register_module()
class LTCC(ClothChangingDataset):
    """LTCC: 77 train ids (about 9.6k images), 75 test ids, 12 cameras.

    Layout::

        LTCC_ReID/
          train/001_1_c11_015861.png  # PPP_C_cKK_FFFFFF: pid, clothes,
          query/...                   # camera, frame
          test/...                    # the gallery
          info/cloth-change_id_test.txt, ...  (not read)
          train-mask/001_1_c11_015861.png     # optional parsing masks
          query-mask/... test-mask/...

    Names are parsed with the rules of CAL's loader
    (shared ``datasets-and-protocols.md`` §2.2): pid and camera from
    ``(\\d+)_(\\d+)_c(\\d+)``, the clothes string ``"pid_clothes"`` from
    ``(\\w+)_c``; both must match at the start of the name. ``camid`` is the
    camera number of the name (``c11`` -> 11).

    Splits: ``'train'`` (``train/``) and ``'test'`` (``query/`` items with
    ``subset='query'``, then ``test/`` items with ``subset='gallery'``).
    Whether cloth-changing queries are restricted to the ids of
    ``info/cloth-change_id_test.txt`` is the metric's choice; every query
    image is loaded here.

    Args: see :class:`ClothChangingDataset`; ``mask_dir`` defaults to
    ``'{folder}-mask'`` (``train-mask/`` beside ``train/``).
    """

    DATASET_NAME = 'LTCC'
    SPLITS = ('train', 'test')
    LAYOUT = ('LTCC_ReID/{train,query,test}/PPP_C_cKK_FFFFFF.png (pid, '
              'clothes, camera, frame), e.g. 001_1_c11_015861.png')
    #: pid, clothes and camera (documented rule, anchored at the start).
    NAME_RE = re.compile(r'(\d+)_(\d+)_c(\d+)')
    #: The clothes string "pid_clothes".
    CLOTHES_RE = re.compile(r'(\w+)_c')
    PATTERN = 'PPP_C_cKK_FFFFFF.png, e.g. 001_1_c11_015861.png'

    def _read_split(self) -> List[RawSample]:
        if self.split == 'train':
            folders = [('train', 'train')]
        else:
            folders = [('query', 'query'), ('test', 'gallery')]
        samples = []
        for folder, subset in folders:
            path = self._path(folder)
            for name in self._list_images(path):
                stem = osp.splitext(name)[0]
                m = self.NAME_RE.match(stem)
                c = self.CLOTHES_RE.match(stem)
                if m is None or c is None:
                    self._bad_sample(
                        'unparseable file names', osp.join(path, name),
                        f'cannot parse the file name {osp.join(path, name)}:'
                        f' expected {self.PATTERN}')
                    continue
                pid, _, cam = (int(g) for g in m.groups())
                samples.append(
                    RawSample(
                        img_path=osp.join(path, name),
                        folder=folder,
                        rel_path=name,
                        pid=pid,
                        camid=cam,
                        clothes_key=c.group(1),
                        subset=subset))
        return samples
