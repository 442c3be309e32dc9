"""DeepChange (Xu et al., "DeepChange: A Long-Term Person Re-Identification
Benchmark with Clothes Change", 2021)."""
import os.path as osp
import re
from typing import Dict, List, Set

from mmreid_clip.registry import DATASETS
from .base import ClothChangingDataset, RawSample


@DATASETS.register_module()
class DeepChange(ClothChangingDataset):
    """DeepChange: 450 train ids (about 75k images), 150 val ids, 521 test
    ids, 17 cameras.

    Layout::

        DeepChangeDataset/
          train-set/  train-set-bbox.txt
          val-set-query/  val-set-query-bbox.txt
          val-set-gallery/  val-set-gallery-bbox.txt
          test-set-query/  test-set-query-bbox.txt
          test-set-gallery/  test-set-gallery-bbox.txt
          train-set-mask/<stem>.png   # optional parsing masks

    Every ``<folder>-bbox.txt`` lists the split's images, one
    ``filename,tracklet_id`` per line; the list is authoritative (images in
    the folder that it does not name are not read, a listed image that is
    missing is a bad sample). Names follow CAL's rule
    (``docs/methods/datasets.md`` §2.4): the stem split on ``_`` gives
    ``pid = int(token0[1:])``, ``camid = int(token1[1:])`` and the pseudo
    clothes string token0 + token2 (e.g. a date field), so a name must
    start with ``<letter><digits>_<letter><digits>_<token>``.

    Splits: ``'train'``; ``'val'`` and ``'test'`` (the ``-query`` list's
    items with ``subset='query'``, then the ``-gallery`` list's with
    ``subset='gallery'``). Every item also has ``tracklet_id``, which the
    protocol uses in place of the camera.

    Args: see :class:`ClothChangingDataset`; ``mask_dir`` defaults to
    ``'{folder}-mask'`` (e.g. ``train-set-mask/``).
    """

    DATASET_NAME = 'DeepChange'
    SPLITS = ('train', 'val', 'test')
    LAYOUT = ('DeepChangeDataset/{train-set,val-set-query,val-set-gallery,'
              'test-set-query,test-set-gallery}/ with one '
              '<folder>-bbox.txt list ("filename,tracklet_id" lines) each')
    #: token0 = one character + pid digits, token1 = one character + camera
    #: digits, token2 = the rest of the clothes string up to the next "_".
    NAME_RE = re.compile(r'([^_])(\d+)_([^_])(\d+)_([^_]+)')
    PATTERN = ('<letter><pid>_<letter><camera>_<token>[_...].jpg, e.g. '
               'P00001_C01_D01_0001.jpg')
    FOLDERS = {
        'train': (('train-set', 'train'), ),
        'val': (('val-set-query', 'query'), ('val-set-gallery', 'gallery')),
        'test': (('test-set-query', 'query'), ('test-set-gallery', 'gallery')),
    }

    def _read_split(self) -> List[RawSample]:
        samples = []
        for folder, subset in self.FOLDERS[self.split]:
            path = self._path(folder)
            list_file = self._path(f'{folder}-bbox.txt')
            self._require_dir(path)
            self._require_file(list_file, 'list file')
            with open(list_file, encoding='utf-8') as f:
                lines = f.read().splitlines()
            present: Dict[str, Set[str]] = {}
            for lineno, line in enumerate(lines, 1):
                line = line.strip()
                if not line:
                    continue
                where = f'{list_file}, line {lineno}'
                name, sep, tracklet = line.rpartition(',')
                if not sep or not name.strip() or not re.fullmatch(
                        r'\s*-?\d+\s*', tracklet):
                    self._bad_sample(
                        'malformed list lines', where,
                        f'{where}: expected "filename,tracklet_id", got '
                        f'{line!r}')
                    continue
                name = name.strip()
                m = self.NAME_RE.match(osp.splitext(osp.basename(name))[0])
                if m is None:
                    self._bad_sample(
                        'unparseable file names', f'{where}: {name}',
                        f'{where}: cannot parse the file name {name!r}: '
                        f'expected {self.PATTERN}')
                    continue
                img_path = self._listed_image(path, name, where, present)
                if img_path is None:
                    continue
                name = osp.relpath(img_path, path)
                lead0, pid, _, cam, token2 = m.groups()
                samples.append(
                    RawSample(
                        img_path=img_path,
                        folder=folder,
                        rel_path=name,
                        pid=int(pid),
                        camid=int(cam),
                        # separator: see VCClothes (same order as CAL's
                        # concatenation on fixed-width names)
                        clothes_key=f'{lead0}{pid}_{token2}',
                        subset=subset,
                        tracklet_id=int(tracklet)))
        return samples
