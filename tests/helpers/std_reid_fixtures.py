"""Tiny trees in the real layouts of Market-1501, DukeMTMC-reID,
Occluded-Duke and MSMT17: real file names (junk pid -1 and distractor pid
0000 in Market-1501's gallery, MSMT17's list files), a few 8 x 4 JPEGs each.
Shared by the dataset tests and the config tests."""
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

# folder -> file names, as in Market-1501-v15.09.15
MARKET_FILES: Dict[str, List[str]] = {
    'bounding_box_train': [
        '0002_c1s1_000451_03.jpg',
        '0002_c3s1_000551_01.jpg',
        '0007_c2s3_070952_01.jpg',
        '0010_c6s4_002452_02.jpg',
    ],
    'query': [
        '0003_c1s1_001051_00.jpg',
        '0005_c4s2_000976_00.jpg',
    ],
    'bounding_box_test': [
        '-1_c1s1_000401_03.jpg',  # junk
        '-1_c4s2_000011_02.jpg',  # junk
        '0000_c1s1_000151_01.jpg',  # distractor
        '0000_c3s2_000411_04.jpg',  # distractor
        '0003_c1s1_001101_02.jpg',  # query 0003's camera: junk in the metric
        '0003_c2s1_000151_01.jpg',
        '0005_c5s3_000151_01.jpg',
    ],
}
# the counts of this tree, in the layout of the classes' EXPECTED_* tables
MARKET_COUNTS = dict(
    images={
        'bounding_box_train': 4,
        'query': 2,
        'bounding_box_test': 5
    },
    junk={'bounding_box_test': 2},
    ids={
        'train': 3,
        'query': 2,
        'gallery': 3
    })

# DukeMTMC-reID and Occluded-Duke share this layout and naming
DUKE_FILES: Dict[str, List[str]] = {
    'bounding_box_train': [
        '0001_c2_f0046182.jpg',
        '0001_c5_f0051341.jpg',
        '0008_c8_f0171000.jpg',
    ],
    'query': ['0005_c2_f0046985.jpg'],
    'bounding_box_test': [
        '0005_c1_f0045892.jpg',
        '0005_c2_f0047106.jpg',
        '0033_c3_f0092711.jpg',  # a distractor identity: one camera only
    ],
}

# list file -> (image folder, [(path under it, pid), ...]), as in MSMT17_V1
MSMT_LISTS: Dict[str, Tuple[str, List[Tuple[str, int]]]] = {
    'list_train.txt': ('train', [
        ('0000/0000_000_01_0303morning_0015_0.jpg', 0),
        ('0000/0000_001_05_0303noon_0102_1.jpg', 0),
        ('0001/0001_000_15_0303afternoon_0420_0.jpg', 1),
    ]),
    'list_val.txt': ('train', [
        ('0001/0001_003_07_0303morning_0880_2.jpg', 1),
        ('0002/0002_000_02_0303morning_0090_0.jpg', 2),
    ]),
    'list_query.txt': ('test', [
        ('0000/0000_000_03_0303noon_1033_0.jpg', 0),
    ]),
    'list_gallery.txt': ('test', [
        ('0000/0000_001_04_0303noon_1088_0.jpg', 0),
        ('0000/0000_002_03_0303noon_1102_1.jpg', 0),
        ('0004/0004_000_11_0303afternoon_2001_0.jpg', 4),
    ]),
}

_counter = [0]


def write_image(path: str) -> None:
    """Write an 8 x 4 JPEG (a different grey level each time)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    _counter[0] += 1
    arr = np.full((8, 4, 3), 10 * _counter[0] % 256, np.uint8)
    assert cv2.imwrite(path, arr), path


def write_market_layout(root: str,
                        files: Dict[str, List[str]] = MARKET_FILES) -> str:
    """Market-1501's folders (also DukeMTMC-reID's) under ``root``, with a
    ``Thumbs.db`` in the gallery as in the real archive."""
    for folder, names in files.items():
        for name in names:
            write_image(osp.join(root, folder, name))
    with open(osp.join(root, 'bounding_box_test', 'Thumbs.db'), 'wb') as f:
        f.write(b'not an image')
    return root


def write_msmt17(root: str,
                 lists: Dict[str, Tuple[str, List[Tuple[str, int]]]] = (
                     MSMT_LISTS)) -> str:
    """MSMT17_V1's image folders and list files under ``root``."""
    for list_name, (folder, entries) in lists.items():
        lines = []
        for rel, pid in entries:
            write_image(osp.join(root, folder, rel))
            lines.append(f'{rel} {pid}')
        with open(osp.join(root, list_name), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return root


def write_dataset(kind: str, root: str) -> str:
    """The tiny tree of dataset class ``kind`` (registry name)."""
    if kind == 'Market1501':
        return write_market_layout(root)
    if kind in ('DukeMTMCReID', 'OccludedDuke'):
        return write_market_layout(root, DUKE_FILES)
    if kind == 'MSMT17':
        return write_msmt17(root)
    raise KeyError(kind)
