"""Helpers writing tiny TIPR datasets in the real on-disk formats.

Each builder writes ``<tmp>/<NAME>/<annotation>.json`` and JPEGs under
``<tmp>/<NAME>/imgs/`` exactly as the released datasets lay them out
(``docs/methods/datasets.md`` §1), and returns the
data root and the entries it wrote.
"""
import json
import os
import os.path as osp
from typing import List

import cv2
import numpy as np


def write_jpeg(path: str,
               height: int = 24,
               width: int = 12,
               value: int = 0) -> None:
    """A small JPEG whose colour encodes ``value`` (to tell images apart)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = (value * 37) % 256  # B
    img[..., 1] = (value * 91) % 256  # G
    img[..., 2] = 200  # R: distinguishes BGR from RGB order
    assert cv2.imwrite(path, img)


def write_dataset(root: str, ann_name: str, entries: List[dict],
                  path_key: str) -> str:
    """Write ``entries`` as the annotation file and a JPEG per image path."""
    os.makedirs(root, exist_ok=True)
    for i, entry in enumerate(entries):
        rel = entry.get(path_key) if isinstance(entry, dict) else None
        if isinstance(rel, str):
            full = osp.join(root, 'imgs', rel)
            if not osp.exists(full):
                # vary the size: the pipeline's Resize must unify it
                write_jpeg(full, height=20 + i % 3 * 4, width=10, value=i)
    with open(osp.join(root, ann_name), 'w', encoding='utf-8') as f:
        json.dump(entries, f, ensure_ascii=False)
    return root


def cuhk_entries() -> List[dict]:
    """reid_raw.json entries: 1-based ids, ~2 captions per image.

    train: id 1 (2 images), id 2 (1 image), id 3 (1 image with 3 captions);
    val: id 4 (2 images); test: id 5 (2 images), id 6 (1 image).
    """

    def e(split, path, pid, captions):
        return dict(
            split=split,
            captions=captions,
            file_path=path,
            processed_tokens=[c.lower().split() for c in captions],
            id=pid)

    return [
        e('train', 'cam_a/0001_a.jpg', 1,
          ['A man in a black coat.', 'He wears black shoes.']),
        e('train', 'CUHK03/0001_b.jpg', 1,
          ['The man carries a bag.', 'A man walking.']),
        e('val', 'Market/0004_a.jpg', 4,
          ['A girl in red.', 'Red skirt girl.']),
        e('train', 'cam_b/0002_a.jpg', 2,
          ['A woman with a white hat.', 'Woman, white hat.']),
        e('test', 'test_query/0005_a.jpg', 5,
          ['Un homme en veste bleue, très grand.', 'A tall man.']),
        e('train', 'CUHK01/0003_a.jpg', 3,
          ['Person one.', 'Person two.', 'Person three.']),
        e('val', 'Market/0004_b.jpg', 4, ['Girl, red dress.', 'Red.']),
        e('test', 'test_query/0005_b.jpg', 5,
          ['He has a blue jacket.', 'Blue jacket man 日本.']),
        e('test', 'cam_a/0006_a.jpg', 6,
          ['A child with a ball.', 'Kid and ball.']),
    ]


def icfg_entries() -> List[dict]:
    """ICFG-PEDES entries: 0-based ids, one caption per image, no val."""
    entries = []
    for i, (split, pid) in enumerate([('train', 0), ('train', 0), ('train', 1),
                                      ('train', 2), ('test', 3), ('test', 3),
                                      ('test', 4)]):
        entries.append(
            dict(
                split=split,
                captions=[f'The person {pid} wears item number {i}.'],
                file_path=f'{split}/{pid:04d}/{i:04d}.jpg',
                processed_tokens=[],
                id=pid))
    return entries


def rstp_entries() -> List[dict]:
    """data_captions.json entries: ``img_path``, 2 captions per image."""
    entries = []
    layout = [('train', 10), ('train', 10), ('train', 3), ('train', 7),
              ('val', 20), ('val', 20), ('test', 30), ('test', 31)]
    for i, (split, pid) in enumerate(layout):
        entries.append(
            dict(
                id=pid,
                img_path=f'{pid:04d}_c{i}_{i:04d}.jpg',
                captions=[
                    f'A pedestrian {pid} in photo {i} wearing a long coat '
                    'and boots.', f'Second caption of photo {i}.'
                ],
                split=split))
    return entries


FORMATS = {
    'CUHKPEDES': ('CUHK-PEDES', 'reid_raw.json', 'file_path', cuhk_entries),
    'ICFGPEDES': ('ICFG-PEDES', 'ICFG-PEDES.json', 'file_path', icfg_entries),
    'RSTPReid': ('RSTPReid', 'data_captions.json', 'img_path', rstp_entries),
}
