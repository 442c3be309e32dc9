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

    Names follow ``PPP_C_cKK_FFFFFF`` (pid, clothes, camera, frame) and
    give the labels of CAL's loader (``docs/methods/datasets.md``
    §2.2): the pid, the clothes string ``"pid_clothes"`` and the camera.
    The whole stem must have that form: CAL's clothes rule ``(\\w+)_c``
    would read ``001_1_c01_000001_copy.png`` as the outfit
    ``"001_1_c01_000001"``, a new clothes id made of a stray copy, so such
    a name is a bad sample (an error naming the file, or a counted skip).
    ``camid`` is the camera number of the name (``c11`` -> 11).

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
    #: pid, clothes, camera and frame: the whole stem.
    NAME_RE = re.compile(r'(\d+)_(\d+)_c(\d+)_(\d+)')
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
                m = self.NAME_RE.fullmatch(stem)
                if m is None:
                    self._bad_sample(
                        'unparseable file names', osp.join(path, name),
                        f'cannot parse the file name {osp.join(path, name)}:'
                        f' expected {self.PATTERN}')
                    continue
                pid, cam = int(m.group(1)), int(m.group(3))
                samples.append(
                    RawSample(
                        img_path=osp.join(path, name),
                        folder=folder,
                        rel_path=name,
                        pid=pid,
                        camid=cam,
                        clothes_key=f'{m.group(1)}_{m.group(2)}',
                        subset=subset))
        return samples
