"""ICFG-PEDES (Ding et al., "Semantically Self-Aligned Network for
Text-to-Image Part-aware Person Re-identification", arXiv 2107.12666)."""
from mmreid_clip.registry import DATASETS
from .text_image_dataset import TextImageDataset


@DATASETS.register_module()
class ICFGPEDES(TextImageDataset):
    """ICFG-PEDES: 3,102 train and 1,000 test identities, one caption each.

    Layout::

        ICFG-PEDES/
          ICFG-PEDES.json  # or ICFG_PEDES.json:
                           # [{split, captions, file_path, id}]
          imgs/train/... imgs/test/...

    Distributions and loaders name the annotation file either way; with
    ``ann_file=None`` the first of ``ICFG-PEDES.json``, ``ICFG_PEDES.json``
    found in ``data_root`` is used. There is no val split: asking for one is
    an error (the configs validate on ``split='test'``, as peers do). The
    test protocol uses all 19,848 test captions against all 19,848 test
    images (SSAN's query/gallery image split is not used).

    Args: see :class:`TextImageDataset`.
    """

    DATASET_NAME = 'ICFG-PEDES'
    DEFAULT_ANN_FILES = ('ICFG-PEDES.json', 'ICFG_PEDES.json')
    PATH_KEY = 'file_path'
    SPLITS = ('train', 'test')
    LAYOUT = ('ICFG-PEDES/ICFG-PEDES.json (or ICFG_PEDES.json) and '
              'ICFG-PEDES/imgs/... (imgs/train, imgs/test), with file_path '
              'relative to imgs/')
    SPLIT_HINT = (' ICFG-PEDES has no validation split; validate on '
                  "split='test' (as configs/_base_/datasets/icfg_pedes.py "
                  'does) and report last-epoch numbers.')
