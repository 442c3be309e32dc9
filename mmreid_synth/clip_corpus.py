"""The pretraining corpus of the stand-in CLIP (SynthCLIP corpus).

The papers fine-tune OpenAI's CLIP, whose frozen features already match
people to their descriptions. Our tiny CLIP stands in for it only if it is
pretrained the same way, contrastively on image-text pairs, on people that
no benchmark contains. This module writes that corpus, in the CUHK-PEDES
format so that the ordinary text-image loader reads it:

* ``pedes/``: a SynthPedes v2 dataset (:mod:`.synth_pedes_v2`) of its own
  seed, with its captions;
* ``cc/``: a SynthCC v2 dataset (:mod:`.synth_cc_v2`) of its own seed,
  whose training images (person crops in the cloth-changing benchmark's
  style: detector framing, shared backgrounds, several outfits per person)
  are captioned from their attributes (:mod:`.cc_v2_captions`);
* ``reid_raw.json``: both, one entry per image (``file_path`` relative to
  the corpus root, ids made disjoint: the SynthCC part's ids follow the
  SynthPedes part's); the SynthPedes part's val and test splits stay
  ``val``/``test`` (held-out corpus identities), everything else is
  ``train``.

Disjoint from the benchmarks: identities are drawn from the corpus seed
(default :data:`CORPUS_SEED`), through every generator's own keyed random
streams (:func:`.seeding.make_rng`), so no person, family or outfit of a
benchmark made with another seed is reused; the benchmarks use seeds
0-2.
"""
import json
import logging
import os.path as osp
from typing import Dict, List

from .captions import tokenize
from .cc_v2_captions import cc_v2_captions
from .seeding import make_rng
from .synth_cc_v2 import ATTRIBUTES_FILE as CC_ATTRIBUTES_FILE
from .synth_cc_v2 import DATASET_DIR as CC_DATASET_DIR
from .synth_cc_v2 import META_FILE as CC_META_FILE
from .synth_cc_v2 import generate_synth_cc_v2
from .synth_pedes import ANNOTATION_FILE
from .synth_pedes_v2 import generate_synth_pedes_v2
from .writer import (DatasetFolder, check_int, file_sha256, readme_text,
                     write_json)

__all__ = [
    'CORPUS_VERSION', 'CORPUS_SEED', 'CORPUS_SIZES', 'generate_clip_corpus'
]

logger = logging.getLogger(__name__)

#: Bumped whenever the corpus for a given seed changes.
CORPUS_VERSION = '1.0.0'
#: The corpus seed: distinct from the benchmarks' seeds (0, 1, 2).
CORPUS_SEED = 1000
#: Random stream of the SynthCC part's captions (see :mod:`.seeding`).
CORPUS_STREAM_CC_CAPTION = 301
MANIFEST_FILE = 'corpus_manifest.json'
README_FILE = 'README.txt'
#: Sizes. ``default``: 1,500 SynthPedes ids x 4 images (+ 100 / 100 held
#: out x 2) and 400 SynthCC ids x 12 images: 10,800 training images, 21,600
#: captions. ``tiny``: seconds, for the tests.
CORPUS_SIZES: Dict[str, dict] = {
    'default':
    dict(
        pedes=dict(
            train_ids=1500,
            val_ids=100,
            test_ids=100,
            images_per_id=dict(train=4, val=2, test=2)),
        cc=dict(
            train_ids=400,
            test_ids=8,
            train_images_per_id=12,
            lookalike_pairs=4)),
    'tiny':
    dict(
        pedes=dict(
            train_ids=6,
            val_ids=3,
            test_ids=3,
            images_per_id=dict(train=2, val=2, test=2)),
        cc=dict(
            train_ids=4,
            test_ids=2,
            train_images_per_id=8,
            lookalike_pairs=1,
            frames_per_camera=1,
            queries_per_outfit=1)),
}
CAPTIONS_PER_IMAGE = 2


def _cc_entries(cc_root: str, seed: int, id_offset: int) -> List[dict]:
    """CUHK-PEDES entries of the SynthCC part's training images."""
    with open(osp.join(cc_root, CC_ATTRIBUTES_FILE), encoding='utf-8') as f:
        attrs = json.load(f)
    entries = []
    for image in attrs['images']:
        if image['folder'] != 'train':
            continue
        pid, clothes = int(image['pid']), int(image['clothes'])
        identity = attrs['identities'][str(pid)]
        outfit = attrs['outfits'][f'{pid:03d}_{clothes}']
        rng = make_rng(seed, CORPUS_STREAM_CC_CAPTION, pid, clothes,
                       int(image['camid']), int(image['frame']))
        captions = cc_v2_captions(identity, outfit, image['direction'],
                                  CAPTIONS_PER_IMAGE, rng)
        entries.append(
            dict(
                split='train',
                captions=captions,
                file_path=osp.join('cc', CC_DATASET_DIR, 'train',
                                   image['name']),
                processed_tokens=[tokenize(c) for c in captions],
                id=id_offset + pid))
    return entries


def _pedes_entries(pedes_root: str) -> List[dict]:
    with open(osp.join(pedes_root, ANNOTATION_FILE), encoding='utf-8') as f:
        entries = json.load(f)
    for e in entries:
        e['file_path'] = osp.join('pedes', 'imgs', e['file_path'])
    return entries


def _is_complete(folder: DatasetFolder, manifest: dict) -> bool:
    path = folder.path(ANNOTATION_FILE)
    return (bool(manifest.get('complete')) and osp.isfile(path)
            and file_sha256(path) == manifest.get('annotation_sha256'))


def generate_clip_corpus(root: str,
                         size: str = 'default',
                         seed: int = CORPUS_SEED,
                         overwrite: bool = False,
                         num_workers: int = 0) -> dict:
    """Write the pretraining corpus under ``root`` (see the module doc).

    The output is a function of ``size`` and ``seed`` only; re-running on a
    complete corpus made with the same arguments does nothing (and checks
    both parts' own manifests).

    Args:
        root (str): Output folder; created if missing. It must be empty or
            hold a corpus of ours.
        size (str): A :data:`CORPUS_SIZES` key. Defaults to 'default'.
        seed (int): Corpus seed. Defaults to :data:`CORPUS_SEED`.
        overwrite (bool): Replace a corpus made with other arguments.
        num_workers (int): Worker processes for rendering.

    Returns:
        dict: ``counts`` (per split: images, captions, ids; per part),
        ``annotation_sha256``, the parts' ``content_sha256`` and
        ``generated``.
    """
    if size not in CORPUS_SIZES:
        raise ValueError(f'unknown corpus size {size!r}; choose from '
                         f'{", ".join(CORPUS_SIZES)}')
    check_int('seed', seed, 0)
    params = dict(size=size, seed=seed, captions_per_image=CAPTIONS_PER_IMAGE)
    folder = DatasetFolder(
        root,
        'SynthCLIPCorpus',
        CORPUS_VERSION,
        MANIFEST_FILE,
        dirs=['pedes', 'cc'],
        files=[ANNOTATION_FILE, README_FILE, MANIFEST_FILE],
        indent=1)
    kept = folder.prepare(params, overwrite,
                          lambda m: _is_complete(folder, m))
    # The parts check themselves (digests) and regenerate only if needed.
    spec = CORPUS_SIZES[size]
    pedes = generate_synth_pedes_v2(
        folder.path('pedes'),
        seed=seed,
        num_workers=num_workers,
        captions_per_image=CAPTIONS_PER_IMAGE,
        **spec['pedes'])
    generate_synth_cc_v2(
        folder.path('cc'),
        seed=seed,
        num_workers=num_workers,
        **spec['cc'])
    with open(folder.path('cc', CC_META_FILE), encoding='utf-8') as f:
        cc_digest = json.load(f)['digest']
    parts = dict(
        pedes_content_sha256=pedes['content_sha256'],
        cc_content_sha256=cc_digest)
    if kept is not None and all(kept.get(k) == v for k, v in parts.items()):
        return dict(kept, generated=False)
    folder.write_manifest(dict(params=params), complete=False)
    pedes_entries = _pedes_entries(folder.path('pedes'))
    offset = max(e['id'] for e in pedes_entries)
    entries = pedes_entries + _cc_entries(folder.path('cc'), seed, offset)
    counts: Dict[str, dict] = {}
    for split in ('train', 'val', 'test'):
        rows = [e for e in entries if e['split'] == split]
        counts[split] = dict(
            images=len(rows),
            captions=sum(len(e['captions']) for e in rows),
            ids=len({e['id'] for e in rows}),
            pedes_images=sum(e['file_path'].startswith('pedes') for e in rows),
            cc_images=sum(e['file_path'].startswith('cc') for e in rows))
    ann_path = folder.path(ANNOTATION_FILE)
    write_json(ann_path, entries)
    with open(folder.path(README_FILE), 'w', encoding='utf-8') as f:
        f.write(_readme(params, counts))
    manifest = dict(
        params=params,
        counts=counts,
        annotation_sha256=file_sha256(ann_path),
        **parts)
    folder.write_manifest(manifest, complete=True)
    logger.info('SynthCLIP corpus written to %s: %s', folder.root, counts)
    return dict(manifest, generated=True)


def _readme(params: dict, counts: dict) -> str:
    tr = counts['train']
    return readme_text(
        title=[
            'SynthCLIP corpus: image-text pairs for pretraining the stand-in '
            'CLIP, identities',
            'disjoint from every benchmark (CUHK-PEDES format).',
        ],
        version=CORPUS_VERSION,
        seed=params['seed'],
        img_size=(128, 64),
        settings=[f'size preset: {params["size"]}',
                  f'captions per image: {params["captions_per_image"]}'],
        table=[
            'split   images  captions   ids  (SynthPedes v2 / SynthCC v2 '
            'images)'
        ] + [
            f'{s:<6} {c["images"]:>7} {c["captions"]:>9} {c["ids"]:>5}  '
            f'({c["pedes_images"]} / {c["cc_images"]})'
            for s, c in counts.items()
        ],
        disclaimer='Synthetic data: rendered people, generated captions; '
        'no real person is depicted.',
        regenerate=[
            '  python tools/dataset_converters/make_synth_clip_corpus.py '
            f'<root> --size {params["size"]} --seed {params["seed"]}'
        ],
        notes=[
            f'train: {tr["images"]} images ({tr["pedes_images"]} SynthPedes '
            f'v2, {tr["cc_images"]} SynthCC v2 crops), '
            f'{tr["captions"]} captions, {tr["ids"]} ids;',
            f'val / test (held-out SynthPedes v2 identities): '
            f'{counts["val"]["images"]} / {counts["test"]["images"]} images.',
            'pedes/ and cc/ are complete datasets of their own (their README '
            'and manifest);',
            'reid_raw.json lists both with paths relative to this folder.',
        ])
