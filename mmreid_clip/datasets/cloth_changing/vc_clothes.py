"""VC-Clothes (Wan et al., "When Person Re-identification Meets Changing
Clothes", CVPR Workshops 2020), a synthetic (GTA-V) benchmark."""
import os.path as osp
import re
from typing import List

from mmreid_clip.registry import DATASETS
from .base import ClothChangingDataset, RawSample


@DATASETS.register_module()
class VCClothes(ClothChangingDataset):
    """VC-Clothes: 256 train ids (about 9.4k images), 256 test ids, 4
    cameras.

    Layout::

        VC-Clothes/
          train/0001-01-01-01.jpg  # PPPP-CC-OO-NN: pid, camera, outfit,
          query/...                # index
          gallery/...
          train-mask/0001-01-01-01.png  # optional parsing masks
          query-mask/... gallery-mask/...

    Names are parsed with CAL's rule ``(\\d+)-(\\d+)-(\\d+)-(\\d+)``
    (``docs/methods/datasets.md`` §2.3), anchored at the start of
    the name; the clothes string is pid + outfit (``'0001-01'``; the
    separator only keeps e.g. pid 1 outfit 11 apart from pid 11 outfit 1,
    and gives the same order as CAL's plain concatenation on the real,
    fixed-width names).
    ``camid`` is the camera number of the name (1..4), so the protocol's
    camera subsets (same-clothes: cameras 2 & 3; cloth-changing: cameras 3
    & 4) read directly on it; selecting them is the metric's job, every
    camera is loaded here.

    Splits: ``'train'`` and ``'test'`` (``query/`` items with
    ``subset='query'``, then ``gallery/`` items with ``subset='gallery'``).

    Args: see :class:`ClothChangingDataset`; ``mask_dir`` defaults to
    ``'{folder}-mask'``.
    """

    DATASET_NAME = 'VC-Clothes'
    SPLITS = ('train', 'test')
    LAYOUT = ('VC-Clothes/{train,query,gallery}/PPPP-CC-OO-NN.jpg (pid, '
              'camera, outfit, index), e.g. 0001-01-01-01.jpg')
    NAME_RE = re.compile(r'(\d+)-(\d+)-(\d+)-(\d+)')
    PATTERN = 'PPPP-CC-OO-NN.jpg (pid-camera-outfit-index), e.g. ' \
        '0001-01-01-01.jpg'

    def _read_split(self) -> List[RawSample]:
        if self.split == 'train':
            folders = [('train', 'train')]
        else:
            folders = [('query', 'query'), ('gallery', 'gallery')]
        samples = []
        for folder, subset in folders:
            path = self._path(folder)
            for name in self._list_images(path):
                m = self.NAME_RE.match(osp.splitext(name)[0])
                if m is None:
                    self._bad_sample(
                        'unparseable file names', osp.join(path, name),
                        f'cannot parse the file name {osp.join(path, name)}:'
                        f' expected {self.PATTERN}')
                    continue
                pid, cam, outfit, _ = m.groups()
                samples.append(
                    RawSample(
                        img_path=osp.join(path, name),
                        folder=folder,
                        rel_path=name,
                        pid=int(pid),
                        camid=int(cam),
                        clothes_key=f'{pid}-{outfit}',
                        subset=subset))
        return samples
