"""Write SynthPedes, a generated text-image person dataset, in the exact
CUHK-PEDES format.

Layout (identical to CUHK-PEDES, so ``mmreid_clip``'s ``CUHKPEDES`` dataset
reads it unchanged)::

    <root>/
      reid_raw.json          # [{split, captions, file_path, processed_tokens,
                             #   id}], one entry per image
      imgs/synth_cam_a/00001_00.jpg
      imgs/synth_cam_b/...   # one folder per synthetic camera ("source")
      imgs/synth_cam_c/...
      README.txt             # generator version, seed, counts
      synth_attributes.json  # extra: each identity's attributes and each
                             # image's view (what the captions were made from)
      synth_manifest.json    # extra: the parameters, to make re-runs no-ops

Ids are 1-based: train ``1..N_train``, then val, then test, as in the real
file. Identity ``pid`` and its ``k``-th image depend on ``(seed, pid, k)``
only, so any subset of a dataset can be regenerated identically.
"""
import json
import logging
import os
import os.path as osp
from typing import Any, Dict, List, Sequence, Tuple, Union

import cv2

from .captions import generate_captions, tokenize
from .pedestrian import sample_identity, sample_view
from .renderer import check_img_size, render_view
from .writer import (DatasetFolder, check_int, file_sha256, map_tasks,
                     readme_text, write_image, write_json)

__all__ = [
    'GENERATOR_VERSION', 'DEFAULT_IMAGES_PER_ID', 'SOURCES', 'MANIFEST_FILE',
    'ANNOTATION_FILE', 'ATTRIBUTES_FILE', 'generate_synth_pedes',
    'split_ranges'
]

#: Bumped whenever the output for a given seed changes.
GENERATOR_VERSION = '1.0.0'
DEFAULT_IMAGES_PER_ID: Dict[str, int] = {'train': 4, 'val': 3, 'test': 3}
#: Image folder (CUHK-PEDES "source") of each synthetic camera.
SOURCES: Dict[str, str] = {
    'a': 'synth_cam_a',
    'b': 'synth_cam_b',
    'c': 'synth_cam_c'
}
ANNOTATION_FILE = 'reid_raw.json'
ATTRIBUTES_FILE = 'synth_attributes.json'
MANIFEST_FILE = 'synth_manifest.json'
README_FILE = 'README.txt'
#: Fixed JPEG quality: the encoder is deterministic for fixed settings.
JPEG_QUALITY = 92
SPLITS = ('train', 'val', 'test')

logger = logging.getLogger(__name__)


def split_ranges(train_ids: int, val_ids: int,
                 test_ids: int) -> Dict[str, range]:
    """1-based id range of each split: train first, then val, then test.

    Args:
        train_ids (int): Number of train identities.
        val_ids (int): Number of val identities.
        test_ids (int): Number of test identities.

    Returns:
        dict[str, range]: ``{'train': range(1, N+1), 'val': ..., 'test':
        ...}``.
    """
    start, out = 1, {}
    for split, n in zip(SPLITS, (train_ids, val_ids, test_ids)):
        out[split] = range(start, start + n)
        start += n
    return out


def _render_identity(task: Tuple) -> Tuple[List[dict], dict, List[dict]]:
    """Render, save and caption every image of one identity.

    A module-level function so that worker processes can run it.

    Args:
        task (tuple): ``(root, seed, pid, split, num_images, img_size,
            captions_per_image)``.

    Returns:
        tuple: The identity's ``reid_raw.json`` entries, its attributes, and
        one ``{file_path, id, view}`` record per image.
    """
    root, seed, pid, split, num_images, img_size, num_captions = task
    identity = sample_identity(seed, pid)
    entries, views = [], []
    for k in range(num_images):
        view = sample_view(seed, identity, k)
        rel = f'{SOURCES[view.camera]}/{pid:05d}_{k:02d}.jpg'
        write_image(
            osp.join(root, 'imgs', rel),
            render_view(identity, view, img_size, seed),
            (cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY))
        captions = generate_captions(identity, view, num_captions, seed)
        entries.append(
            dict(
                split=split,
                captions=captions,
                file_path=rel,
                processed_tokens=[tokenize(c) for c in captions],
                id=pid))
        views.append(dict(file_path=rel, id=pid, view=view.to_dict()))
    return entries, identity.to_dict(), views


def _normalise_images_per_id(
        images_per_id: Union[int, Dict[str, int], None]) -> Dict[str, int]:
    if images_per_id is None:
        return dict(DEFAULT_IMAGES_PER_ID)
    if isinstance(images_per_id, int) and not isinstance(images_per_id, bool):
        out = {s: images_per_id for s in SPLITS}
    elif isinstance(images_per_id, dict):
        unknown = set(images_per_id) - set(SPLITS)
        if unknown:
            raise ValueError(f'images_per_id has unknown splits '
                             f'{sorted(unknown)}; use {", ".join(SPLITS)}')
        out = {**DEFAULT_IMAGES_PER_ID, **images_per_id}
    else:
        raise TypeError('images_per_id must be an int or a dict of split -> '
                        f'int, got {type(images_per_id).__name__}')
    for split, n in out.items():
        check_int(f'images_per_id[{split!r}]', n, 1)
    return out


def _check_args(seed: Any, counts: Sequence[int], img_size: Any,
                captions_per_image: Any) -> Tuple[int, int]:
    """Validate the arguments (as given); returns ``(height, width)``."""
    check_int('seed', seed, 0)
    for name, n in zip(('train_ids', 'val_ids', 'test_ids'), counts):
        check_int(name, n, 0)
    if sum(counts) == 0:
        raise ValueError('train_ids + val_ids + test_ids must be > 0')
    check_int('captions_per_image', captions_per_image, 1)
    return check_img_size(img_size)


def _is_complete(folder: DatasetFolder, manifest: dict) -> bool:
    """The manifest's dataset is fully on disk and unmodified."""
    ann = folder.path(ANNOTATION_FILE)
    if not manifest.get('complete') or not osp.isfile(ann):
        return False
    if file_sha256(ann) != manifest.get('annotation_sha256'):
        return False
    with open(ann, encoding='utf-8') as f:
        entries = json.load(f)
    return all(
        osp.isfile(folder.path('imgs', e['file_path'])) for e in entries)


def _readme(params: dict, counts: dict) -> str:
    table = ['split  ids  images  captions  (ids)']
    for split in SPLITS:
        c = counts[split]
        ids = (f'{c["first_id"]}..{c["last_id"]}' if c['ids'] else '-')
        table.append(f'{split:<6} {c["ids"]:>4} {c["images"]:>7} '
                     f'{c["captions"]:>9}  {ids}')
    t = counts['total']
    table.append(
        f'{"total":<6} {t["ids"]:>4} {t["images"]:>7} {t["captions"]:>9}')
    return readme_text(
        title=[
            'SynthPedes: procedurally rendered pedestrians with generated '
            'captions,',
            'written in the CUHK-PEDES format (reid_raw.json + '
            'imgs/<source>/).',
        ],
        version=GENERATOR_VERSION,
        seed=params['seed'],
        img_size=params['img_size'],
        settings=[f'captions per image: {params["captions_per_image"]}'],
        table=table,
        notes=[],
        regenerate=[
            f'  python tools/dataset_converters/make_synth_pedes.py <root> '
            f'--seed {params["seed"]} --train-ids {params["train_ids"]} '
            f'--val-ids {params["val_ids"]} --test-ids {params["test_ids"]} '
            '\\',
            '  ' + ' '.join(f'--{split}-images-per-id '
                            f'{params["images_per_id"][split]}'
                            for split in SPLITS) +
            f' --height {params["img_size"][0]} --width '
            f'{params["img_size"][1]}'
            f' --captions-per-image {params["captions_per_image"]}',
        ],
        disclaimer='All people, clothes and captions are synthetic; no real '
        'person is depicted.')


def generate_synth_pedes(root: str,
                         seed: int = 0,
                         train_ids: int = 500,
                         val_ids: int = 100,
                         test_ids: int = 200,
                         images_per_id: Union[int, Dict[str, int],
                                              None] = None,
                         img_size: Tuple[int, int] = (128, 64),
                         captions_per_image: int = 2,
                         overwrite: bool = False,
                         num_workers: int = 0) -> dict:
    """Generate SynthPedes under ``root`` in the CUHK-PEDES format.

    The output is a function of the arguments only (``num_workers`` aside):
    the same seed gives a byte-identical ``reid_raw.json`` and identical
    images. Re-running on a complete dataset made with the same arguments
    and generator version does nothing.

    Args:
        root (str): Dataset folder; created if missing. It must be empty,
            or hold a SynthPedes dataset (``synth_manifest.json``).
        seed (int): Random seed (>= 0). Defaults to 0.
        train_ids (int): Train identities (ids ``1..train_ids``).
            Defaults to 500.
        val_ids (int): Val identities (the next ids). Defaults to 100.
        test_ids (int): Test identities (the last ids). Defaults to 200.
        images_per_id (int | dict, optional): Images per identity, for all
            splits (int) or per split (``{'train': 4, 'test': 3}``; missing
            splits keep the default). Defaults to
            :data:`DEFAULT_IMAGES_PER_ID` (4 train, 3 val, 3 test).
        img_size (tuple[int, int]): ``(height, width)`` of the images.
            Defaults to (128, 64).
        captions_per_image (int): Captions per image. Defaults to 2.
        overwrite (bool): Replace an existing SynthPedes dataset made with
            other arguments. Never deletes anything that is not a SynthPedes
            output. Defaults to False.
        num_workers (int): Worker processes (0: render in this process,
            fast enough for the default size). Defaults to 0.

    Returns:
        dict: Counts: for each split and ``'total'``, a dict with ``ids``,
        ``images`` and ``captions`` (per split also ``first_id`` and
        ``last_id``, None when empty); plus ``'generated'``, False when an
        existing complete dataset was kept.

    Raises:
        FileExistsError: ``root`` is a non-empty folder that is not a
            SynthPedes dataset, or one made with other arguments and
            ``overwrite`` is False.
        NotADirectoryError: ``root`` is a file.
        ValueError: An argument is out of range.
    """
    h, w = _check_args(seed, (train_ids, val_ids, test_ids), img_size,
                       captions_per_image)
    per_id = _normalise_images_per_id(images_per_id)
    params = dict(
        seed=seed,
        train_ids=train_ids,
        val_ids=val_ids,
        test_ids=test_ids,
        images_per_id=per_id,
        img_size=[h, w],
        captions_per_image=captions_per_image,
        jpeg_quality=JPEG_QUALITY)
    folder = DatasetFolder(
        root,
        'SynthPedes',
        GENERATOR_VERSION,
        MANIFEST_FILE,
        dirs=[osp.join('imgs', source) for source in SOURCES.values()],
        files=[ANNOTATION_FILE, ATTRIBUTES_FILE, README_FILE, MANIFEST_FILE],
        prune=['imgs'])
    root = folder.root
    kept = folder.prepare(params, overwrite,
                          lambda manifest: _is_complete(folder, manifest))
    if kept is not None:
        return dict(kept['counts'], generated=False)

    ranges = split_ranges(train_ids, val_ids, test_ids)
    for source in SOURCES.values():
        os.makedirs(folder.path('imgs', source), exist_ok=True)
    folder.write_manifest(dict(params=params), complete=False)

    tasks = [(root, seed, pid, split, per_id[split], (h, w),
              captions_per_image) for split in SPLITS for pid in ranges[split]]
    results = map_tasks(_render_identity, tasks, num_workers, chunksize=8)

    entries: List[dict] = []
    identities: Dict[str, dict] = {}
    images: List[dict] = []
    for item_entries, attrs, views in results:
        entries.extend(item_entries)
        identities[str(attrs['pid'])] = attrs
        images.extend(views)

    counts: Dict[str, dict] = {}
    for split in SPLITS:
        rows = [e for e in entries if e['split'] == split]
        ids = ranges[split]
        counts[split] = dict(
            ids=len(ids),
            images=len(rows),
            captions=sum(len(e['captions']) for e in rows),
            first_id=ids[0] if len(ids) else None,
            last_id=ids[-1] if len(ids) else None)
    counts['total'] = {
        k: sum(counts[s][k] for s in SPLITS)
        for k in ('ids', 'images', 'captions')
    }

    ann_path = folder.path(ANNOTATION_FILE)
    write_json(ann_path, entries)
    write_json(
        folder.path(ATTRIBUTES_FILE),
        dict(
            generator_version=GENERATOR_VERSION,
            seed=seed,
            identities=identities,
            images=images))
    with open(folder.path(README_FILE), 'w', encoding='utf-8') as f:
        f.write(_readme(params, counts))
    folder.write_manifest(
        dict(
            params=params,
            counts=counts,
            annotation_sha256=file_sha256(ann_path)),
        complete=True)
    logger.info('SynthPedes written to %s: %s', root, counts['total'])
    return dict(counts, generated=True)
