"""PRCC (Yang et al., "Person Re-identification by Contour Sketch under
Moderate Clothing Change", TPAMI 2019)."""
import os.path as osp
import re
from typing import List

from mmreid_clip.registry import DATASETS
from .base import ClothChangingDataset, RawSample


@DATASETS.register_module()
class PRCC(ClothChangingDataset):
    """PRCC: about 150 train ids, 71 test ids, 3 cameras (A, B, C).

    Layout::

        prcc/
          rgb/train/<pid>/A_....jpg  # first letter of the name = camera
          rgb/val/<pid>/....jpg
          rgb/test/A/<pid>/....jpg   # camera from the folder
          rgb/test/B/<pid>/... rgb/test/C/<pid>/...
          sketch/...                 # not read
          mask/train/<pid>/A_....png # optional parsing masks, a tree
          mask/val/... mask/test/A/<pid>/...  # mirroring rgb/

    Rules of CAL's loader (``docs/methods/datasets.md`` §2.1):
    ``<pid>`` folders are numbers; cameras A and B show one outfit and C
    another, so the clothes string is the pid folder name for A/B images
    and the folder name + ``'C'`` for C images (two clothes labels per
    identity). ``camid`` is 0, 1, 2 for A, B, C.

    Splits:

    - ``'train'`` and ``'val'`` (``rgb/train``, ``rgb/val``), read in train
      format (pids and clothes relabelled from 0; ``subset`` is the split
      name). The first character of every image name must be A, B or C.
    - ``'test'``: cam-B items (``subset='query_sc'``, same-clothes
      queries), then cam-C items (``'query_cc'``, cloth-changing
      queries), then cam-A items (``'gallery'``, the full multi-shot
      gallery). Test image names carry no label.

    Args: see :class:`ClothChangingDataset`; ``mask_dir`` defaults to
    ``'mask/{folder}'`` with ``{folder}`` = ``train`` / ``val`` / ``test``.
    """

    DATASET_NAME = 'PRCC'
    SPLITS = ('train', 'val', 'test')
    TRAIN_SPLITS = ('train', 'val')
    DEFAULT_MASK_DIR = 'mask/{folder}'
    LAYOUT = ('prcc/rgb/{train,val}/<pid>/<A|B|C>*.jpg and '
              'prcc/rgb/test/{A,B,C}/<pid>/*.jpg')
    CAMERAS = {'A': 0, 'B': 1, 'C': 2}
    #: Test cameras in item order, with their subset.
    TEST_SUBSETS = (('B', 'query_sc'), ('C', 'query_cc'), ('A', 'gallery'))
    PID_RE = re.compile(r'[0-9]+')

    def _read_split(self) -> List[RawSample]:
        root = self._path('rgb', self.split)
        self._require_dir(root, f'{self.split} folder')
        if self.split == 'test':
            self._check_entries(root, set(self.CAMERAS),
                                'camera folders A, B and C')
            samples = []
            for cam, subset in self.TEST_SUBSETS:
                samples += self._read_pid_folders(
                    osp.join(root, cam), f'{cam}/', cam, subset)
            return samples
        return self._read_pid_folders(root, '', None, self.split)

    def _check_entries(self, folder: str, allowed: set, what: str) -> None:
        """Flag images and unexpected subfolders directly in ``folder``."""
        for name in self._list_images(folder, subfolders=True):
            self._bad_sample(
                'misplaced images', osp.join(folder, name),
                f'image {osp.join(folder, name)} is not inside a pid folder; '
                f'{folder} should hold only {what}. Expected layout: '
                f'{self.LAYOUT}')
        for name in self._list_dirs(folder):
            if name not in allowed:
                self._bad_sample(
                    'unexpected folders', osp.join(folder, name),
                    f'unexpected folder {osp.join(folder, name)}: expected '
                    f'{what}. Expected layout: {self.LAYOUT}')

    def _read_pid_folders(self, folder: str, rel_prefix: str, test_cam: str,
                          subset: str) -> List[RawSample]:
        pid_dirs = self._list_dirs(folder)
        self._check_entries(folder,
                            {d
                             for d in pid_dirs if self.PID_RE.fullmatch(d)},
                            'numeric <pid> folders (e.g. 001)')
        samples = []
        for pid_dir in pid_dirs:
            if not self.PID_RE.fullmatch(pid_dir):
                continue  # reported by _check_entries
            path = osp.join(folder, pid_dir)
            for name in self._list_images(path):
                cam = test_cam if test_cam is not None else name[0]
                if cam not in self.CAMERAS:
                    self._bad_sample(
                        'unparseable file names', osp.join(path, name),
                        f'cannot parse the file name {osp.join(path, name)}:'
                        ' expected the camera letter A, B or C as its first '
                        'character (e.g. A_cropped_rgb001.jpg)')
                    continue
                samples.append(
                    RawSample(
                        img_path=osp.join(path, name),
                        folder=self.split,
                        rel_path=f'{rel_prefix}{pid_dir}/{name}',
                        pid=int(pid_dir),
                        camid=self.CAMERAS[cam],
                        clothes_key=pid_dir + ('C' if cam == 'C' else ''),
                        subset=subset))
        return samples
