"""SynthPedes v2: a text-to-image person retrieval benchmark of near-
duplicate identities, in the exact CUHK-PEDES format.

What it tests. Identities come in *families* (2-6 people, mostly 3-4,
:mod:`.pedes_v2_people`) that share their global appearance (outfit and
its colours, body, hair colour, pose distribution) and differ only in 2-3
local details per family (bag, shoes, headwear, chest logo or band,
eyewear, scarf, watch, hair style), which every caption of a member names
whenever the image shows them (:mod:`.pedes_v2_captions`). Matching a
caption to an image by the global colours alone cannot separate a person
from their family; reading the details can. ``tools/analysis/
synth_pedes_probe.py`` measures both (the numbers of the study preset are
in the generated README and in the project README).

Layout (as v1 and CUHK-PEDES; ``CUHKPEDES(data_root=<root>)`` reads it)::

    <root>/
      reid_raw.json          # [{split, captions, file_path, processed_tokens,
                             #   id}], one entry per image
      imgs/synth_cam_{a,b,c}/<pid>_<k>.jpg
      README.txt             # version, seed, sizes, counts, probe numbers
      synth_attributes.json  # families, people, every image's view, what
                             # it shows (facts) and where the figure is
      synth_manifest.json    # parameters, counts, digests

Ids are 1-based: train ``1..N_train``, then val, then test; a family never
spans two splits. Images are drawn :data:`~.pedes_v2_render.SUPERSAMPLE`
times larger and area-downsampled, and written as 4:4:4 JPEG (no chroma
subsampling, which would halve the colour resolution of small details).
"""
import hashlib
import json
import logging
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple, Union

import cv2

from .captions import tokenize
from .pedes_v2_captions import generate_captions_v2
from .pedes_v2_people import (family_layout, image_facts, sample_family,
                              sample_view_v2)
from .pedes_v2_render import SUPERSAMPLE, figure_box, render_view_v2
from .renderer import check_img_size
from .synth_pedes import (ANNOTATION_FILE, ATTRIBUTES_FILE, MANIFEST_FILE,
                          README_FILE, SOURCES, SPLITS, split_ranges)
from .writer import (DatasetFolder, check_int, file_sha256, map_tasks,
                     readme_text, tree_digest, write_image, write_json)

__all__ = [
    'GENERATOR_VERSION_V2', 'PRESETS_V2', 'STUDY_PROBE',
    'generate_synth_pedes_v2', 'dataset_digest_v2'
]

#: Bumped whenever the output for a given seed changes.
GENERATOR_VERSION_V2 = '2.0.0'
#: Named sizes. ``study``: ~500 train ids as v1 (500 / 100 / 200 ids, 4 / 3
#: / 3 images each: 2,000 / 300 / 600 images, 2 captions each); ``tiny``:
#: for the tests (6 / 3 / 8 ids, 2 images each).
PRESETS_V2: Dict[str, dict] = {
    'study':
    dict(
        train_ids=500,
        val_ids=100,
        test_ids=200,
        images_per_id=dict(train=4, val=3, test=3)),
    'tiny':
    dict(
        train_ids=6,
        val_ids=3,
        test_ids=8,
        images_per_id=dict(train=2, val=2, test=2)),
}
JPEG_QUALITY_V2 = 95
_JPEG_PARAMS = (cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY_V2,
                cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444)

#: The probe's numbers on the study preset at seed 0, 128 x 64
#: (``python tools/analysis/synth_pedes_probe.py data/synth-pedes-v2``,
#: content sha256 ``5abfbf35...``), written into that dataset's README.
#: Target, fixed before the probe first ran: oracle global-only R@1 <= 35,
#: detail-aware >= 90.
STUDY_PROBE: Dict[str, Any] = dict(lines=[
    'test: 1,200 caption queries x 600 images, 200 identities in 56 '
    'families',
    '(a query\'s family: 3.85 identities on average); chance R@1 0.50',
    'R@1 / R@5 / R@10 / mAP; family members (other identities) ranked '
    'above',
    'the query\'s identity:',
    'oracle, global only:   28.93 / 85.91 / 98.78 / 43.11; 47.9% (0.0%)',
    'oracle, detail-aware:  99.91 / 100.00 / 100.00 / 99.84; 0.1% (0.0%)',
    'pixels, global colour: 14.33 / 50.17 / 64.67 / 20.49; 50.0% (3.6%)',
    'image-to-image global colour: R@1 8.00; the top hit is a family '
    'member',
    '59.0% (chance 1.4%), the identity 8.0% (chance 0.3%), another '
    'person 33.0%',
    'detail pixels (median output pixels changed by a family member\'s '
    'value):',
    'bag 172, shoes 94, headwear 80, scarf 80, mark 66, watch 48, hair 134',
    'Target (fixed before the first run): global-only R@1 <= 35, '
    'detail-aware >= 90: met.',
])

logger = logging.getLogger(__name__)


def _render_identity(task: Tuple) -> Tuple[List[dict], List[dict]]:
    """Render, save and caption every image of one person (a module-level
    function, for worker processes)."""
    root, seed, person, split, num_images, img_size, num_captions = task
    entries, images = [], []
    for k in range(num_images):
        view = sample_view_v2(seed, person, k)
        rel = f'{SOURCES[view.camera]}/{person.pid:05d}_{k:02d}.jpg'
        write_image(
            osp.join(root, 'imgs', rel),
            render_view_v2(person, view, img_size, seed), _JPEG_PARAMS)
        captions = generate_captions_v2(person, view, num_captions, seed)
        entries.append(
            dict(
                split=split,
                captions=captions,
                file_path=rel,
                processed_tokens=[tokenize(c) for c in captions],
                id=person.pid))
        facts = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in image_facts(person, view).items()
        }
        images.append(
            dict(
                file_path=rel,
                id=person.pid,
                family=person.family,
                view=view.to_dict(),
                facts=facts,
                figure={
                    k: round(v, 3)
                    for k, v in figure_box(view, img_size).items()
                }))
    return entries, images


def dataset_digest_v2(root: str) -> str:
    """SHA-256 of the generated data: the images (names and bytes), the
    annotation file and the attributes file."""
    h = hashlib.sha256()
    h.update(tree_digest(osp.join(root, 'imgs')).encode())
    h.update(file_sha256(osp.join(root, ANNOTATION_FILE)).encode())
    h.update(file_sha256(osp.join(root, ATTRIBUTES_FILE)).encode())
    return h.hexdigest()


def _resolve(preset: str, overrides: Dict[str, Any]) -> dict:
    if preset not in PRESETS_V2:
        raise ValueError(f'unknown preset {preset!r}; choose from '
                         f'{", ".join(PRESETS_V2)}')
    params = json.loads(json.dumps(PRESETS_V2[preset]))
    per_id = overrides.pop('images_per_id', None)
    for key, value in overrides.items():
        if value is not None:
            params[key] = value
    if per_id is not None:
        if isinstance(per_id, int) and not isinstance(per_id, bool):
            per_id = {s: per_id for s in SPLITS}
        if not isinstance(per_id, dict) or set(per_id) - set(SPLITS):
            raise ValueError('images_per_id must be an int or a dict of '
                             f'{", ".join(SPLITS)} -> int, got {per_id!r}')
        params['images_per_id'].update(per_id)
    for name in ('train_ids', 'val_ids', 'test_ids'):
        check_int(name, params[name], 0)
    if params['train_ids'] + params['val_ids'] + params['test_ids'] == 0:
        raise ValueError('train_ids + val_ids + test_ids must be > 0')
    for split, n in params['images_per_id'].items():
        check_int(f'images_per_id[{split!r}]', n, 1)
    return params


def _is_complete(folder: DatasetFolder, manifest: dict) -> bool:
    ann = folder.path(ANNOTATION_FILE)
    if not manifest.get('complete') or not osp.isfile(ann):
        return False
    if file_sha256(ann) != manifest.get('annotation_sha256'):
        return False
    with open(ann, encoding='utf-8') as f:
        entries = json.load(f)
    return all(
        osp.isfile(folder.path('imgs', e['file_path'])) for e in entries)


def _probe_notes(params: dict, preset: str) -> List[str]:
    study = (
        preset == 'study' and params['seed'] == 0
        and params['img_size'] == [128, 64]
        and params['captions_per_image'] == 2
        and all(params[k] == v for k, v in PRESETS_V2['study'].items()))
    lines = [
        'Families: identities come in families (2-6 people) that share the',
        'global appearance (garments and their shades, body, hair colour,',
        'pose distribution) and differ in 2-3 local details (bag, shoes,',
        'headwear, chest logo or band, eyewear, scarf, watch, hair style);',
        'every caption names each of those details that its image shows.',
        'Measure what that does to matching with:',
        '  python tools/analysis/synth_pedes_probe.py <root>',
    ]
    if study and STUDY_PROBE:
        lines += ['', 'Probe (this preset, seed 0; test split):']
        lines += [f'  {line}' for line in STUDY_PROBE['lines']]
    return lines


def _readme(params: dict, preset: str, counts: dict, digest: str) -> str:
    table = ['split  ids  families  images  captions  (ids)']
    for split in SPLITS:
        c = counts[split]
        ids = f'{c["first_id"]}..{c["last_id"]}' if c['ids'] else '-'
        table.append(f'{split:<6} {c["ids"]:>4} {c["families"]:>9} '
                     f'{c["images"]:>7} {c["captions"]:>9}  {ids}')
    t = counts['total']
    table.append(f'{"total":<6} {t["ids"]:>4} {t["families"]:>9} '
                 f'{t["images"]:>7} {t["captions"]:>9}')
    per_id = params['images_per_id']
    test = counts['test']
    chance = (f'{100.0 * per_id["test"] / test["images"]:.2f}%'
              if test['images'] else '-')
    return readme_text(
        title=[
            'SynthPedes v2: families of near-duplicate synthetic pedestrians',
            'with generated captions that name their distinguishing details,',
            'in the CUHK-PEDES format (reid_raw.json + imgs/<source>/).',
        ],
        version=GENERATOR_VERSION_V2,
        seed=params['seed'],
        img_size=params['img_size'],
        settings=[
            f'preset: {preset}',
            f'captions per image: {params["captions_per_image"]}',
            f'rendered at {SUPERSAMPLE}x the size, area-downsampled; JPEG '
            f'quality {JPEG_QUALITY_V2}, 4:4:4',
            f'test chance R@1 (text-to-image): {chance}',
            f'content sha256: {digest}',
        ],
        table=table,
        notes=_probe_notes(params, preset),
        regenerate=[
            '  python tools/dataset_converters/make_synth_pedes.py <root> '
            f'--version 2 --preset {preset} --seed {params["seed"]} \\',
            f'    --train-ids {params["train_ids"]} --val-ids '
            f'{params["val_ids"]} --test-ids {params["test_ids"]} ' +
            ' '.join(f'--{s}-images-per-id {per_id[s]}'
                     for s in SPLITS) + ' \\',
            f'    --height {params["img_size"][0]} --width '
            f'{params["img_size"][1]} --captions-per-image '
            f'{params["captions_per_image"]}',
        ],
        disclaimer='All people, clothes and captions are synthetic; no real '
        'person is depicted.')


def generate_synth_pedes_v2(root: str,
                            preset: str = 'study',
                            seed: int = 0,
                            train_ids: Optional[int] = None,
                            val_ids: Optional[int] = None,
                            test_ids: Optional[int] = None,
                            images_per_id: Union[int, Dict[str, int],
                                                 None] = None,
                            img_size: Tuple[int, int] = (128, 64),
                            captions_per_image: int = 2,
                            overwrite: bool = False,
                            num_workers: int = 0) -> dict:
    """Generate SynthPedes v2 under ``root`` in the CUHK-PEDES format.

    The output is a function of the arguments only (``num_workers``
    aside); re-running on a complete dataset made with the same arguments
    does nothing.

    Args:
        root (str): Dataset folder; created if missing. It must be empty or
            hold a SynthPedes dataset (v1 or v2: replacing one made with
            other settings needs ``overwrite``).
        preset (str): ``'study'`` (500 / 100 / 200 ids) or ``'tiny'``
            (:data:`PRESETS_V2`). Defaults to ``'study'``.
        seed (int): Random seed (>= 0). Defaults to 0.
        train_ids, val_ids, test_ids (int, optional): Override the preset's
            number of identities per split.
        images_per_id (int | dict, optional): Override the preset's images
            per identity (all splits, or per split).
        img_size (tuple[int, int]): Output ``(height, width)``. Defaults to
            (128, 64).
        captions_per_image (int): Captions per image. Defaults to 2.
        overwrite (bool): Replace a SynthPedes dataset made with other
            arguments or another version. Defaults to False.
        num_workers (int): Worker processes (0: this process).

    Returns:
        dict: Counts per split and ``'total'`` (``ids``, ``families``,
        ``images``, ``captions``; per split also ``first_id`` and
        ``last_id``), ``'content_sha256'``, and ``'generated'`` (False
        when an existing complete dataset was kept).
    """
    check_int('seed', seed, 0)
    check_int('captions_per_image', captions_per_image, 1)
    h, w = check_img_size(img_size)
    params = _resolve(
        preset,
        dict(
            train_ids=train_ids,
            val_ids=val_ids,
            test_ids=test_ids,
            images_per_id=images_per_id))
    params = dict(
        seed=seed,
        **params,
        img_size=[h, w],
        captions_per_image=captions_per_image,
        jpeg_quality=JPEG_QUALITY_V2,
        supersample=SUPERSAMPLE)
    folder = DatasetFolder(
        root,
        'SynthPedes',
        GENERATOR_VERSION_V2,
        MANIFEST_FILE,
        dirs=[osp.join('imgs', source) for source in SOURCES.values()],
        files=[ANNOTATION_FILE, ATTRIBUTES_FILE, README_FILE, MANIFEST_FILE],
        prune=['imgs'])
    root = folder.root
    kept = folder.prepare(params, overwrite,
                          lambda manifest: _is_complete(folder, manifest))
    if kept is not None:
        return dict(
            kept['counts'],
            content_sha256=kept.get('content_sha256'),
            generated=False)

    ranges = split_ranges(params['train_ids'], params['val_ids'],
                          params['test_ids'])
    for source in SOURCES.values():
        os.makedirs(folder.path('imgs', source), exist_ok=True)
    folder.write_manifest(dict(params=params), complete=False)

    families: Dict[str, dict] = {}
    people: Dict[str, dict] = {}
    tasks = []
    per_id = params['images_per_id']
    for split in SPLITS:
        ids = ranges[split]
        if not len(ids):
            continue
        for pids in family_layout(seed, ids[0], len(ids)):
            members = sample_family(seed, pids)
            families[str(pids[0])] = dict(
                split=split, pids=list(pids), varying=list(members[0].varying))
            for person in members:
                people[str(person.pid)] = person.to_dict()
                tasks.append((root, seed, person, split, per_id[split], (h, w),
                              captions_per_image))
    results = map_tasks(_render_identity, tasks, num_workers, chunksize=8)
    entries: List[dict] = []
    images: List[dict] = []
    for item_entries, item_images in results:
        entries.extend(item_entries)
        images.extend(item_images)

    counts: Dict[str, dict] = {}
    for split in SPLITS:
        rows = [e for e in entries if e['split'] == split]
        ids = ranges[split]
        counts[split] = dict(
            ids=len(ids),
            families=sum(f['split'] == split for f in families.values()),
            images=len(rows),
            captions=sum(len(e['captions']) for e in rows),
            first_id=ids[0] if len(ids) else None,
            last_id=ids[-1] if len(ids) else None)
    counts['total'] = {
        k: sum(counts[s][k] for s in SPLITS)
        for k in ('ids', 'families', 'images', 'captions')
    }
    ann_path = folder.path(ANNOTATION_FILE)
    write_json(ann_path, entries)
    write_json(
        folder.path(ATTRIBUTES_FILE),
        dict(
            generator_version=GENERATOR_VERSION_V2,
            seed=seed,
            families=families,
            identities=people,
            images=images))
    digest = dataset_digest_v2(root)
    with open(folder.path(README_FILE), 'w', encoding='utf-8') as f:
        f.write(_readme(params, preset, counts, digest))
    folder.write_manifest(
        dict(
            params=params,
            preset=preset,
            counts=counts,
            annotation_sha256=file_sha256(ann_path),
            content_sha256=digest),
        complete=True)
    logger.info('SynthPedes v2 written to %s: %s', root, counts['total'])
    return dict(counts, content_sha256=digest, generated=True)
