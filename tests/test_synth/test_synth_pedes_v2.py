"""SynthPedes v2: families of near-duplicates, captions that name every
difference, determinism (the tiny preset's digest), the real CUHKPEDES
loader, the CLI and a fast run of the probe.

The generated datasets are the ``tiny`` preset (17 identities, 34 images:
well under a second); the property tests sample people and captions
without rendering.
"""
import dataclasses
import json
import os.path as osp
from itertools import combinations

import numpy as np
import pytest
from PIL import Image

from mmreid_synth import (GENERATOR_VERSION, SYNTH_PEDES_V2_PRESETS,
                          SYNTH_PEDES_V2_VERSION, generate_synth_pedes,
                          generate_synth_pedes_v2, tokenize)
from mmreid_synth.captions import COLOUR_WORDS
from mmreid_synth.pedes_v2_captions import (DETAIL_NOUNS, MAX_WORDS_V2,
                                            MIN_WORDS_V2, NUM_TEMPLATES_V2,
                                            describe_v2, generate_captions_v2,
                                            read_caption)
from mmreid_synth.pedes_v2_people import (DETAIL_SLOTS, GLOBAL_KEYS,
                                          family_layout, image_facts,
                                          person_details, sample_family,
                                          sample_view_v2, swap_detail,
                                          visible_details)
from mmreid_synth.pedes_v2_render import render_view_v2

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402

#: ``content_sha256`` of ``generate_synth_pedes_v2(root, preset='tiny',
#: seed=0)`` (images, reid_raw.json, synth_attributes.json), recorded from
#: generator 2.0.0. A change means the output changed: bump the version.
TINY_SEED0_DIGEST = (
    '5fdfbc6605a86c24727b99fca335d812a3d86c5e8790d7b4507047ba25347ecf')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('pedes2') / 'tiny')
    counts = generate_synth_pedes_v2(root, preset='tiny', seed=0)
    return root, counts


def _load(root):
    with open(osp.join(root, 'reid_raw.json'), encoding='utf-8') as f:
        return json.load(f)


def _families(seed, num_ids, first=1):
    return [
        sample_family(seed, r) for r in family_layout(seed, first, num_ids)
    ]


# ---------------------------------------------------------------------------
# determinism, layout, loader


def test_tiny_preset_digest_and_determinism(tiny, tmp_path):
    root, counts = tiny
    assert counts['generated'] and SYNTH_PEDES_V2_VERSION == '2.0.0'
    assert counts['content_sha256'] == TINY_SEED0_DIGEST, (
        'SynthPedes v2 output changed: bump GENERATOR_VERSION_V2 and record '
        'the new digest')
    # the same arguments again: byte-identical, also with worker processes
    again = generate_synth_pedes_v2(
        str(tmp_path / 'again'), preset='tiny', seed=0, num_workers=2)
    assert again['content_sha256'] == TINY_SEED0_DIGEST
    other = generate_synth_pedes_v2(
        str(tmp_path / 'other'), preset='tiny', seed=1)
    assert other['content_sha256'] != TINY_SEED0_DIGEST
    # a re-run on the complete dataset is a no-op
    kept = generate_synth_pedes_v2(root, preset='tiny', seed=0)
    assert not kept['generated']
    assert kept['content_sha256'] == TINY_SEED0_DIGEST


def test_layout_splits_and_families(tiny):
    root, counts = tiny
    preset = SYNTH_PEDES_V2_PRESETS['tiny']
    entries = _load(root)
    ids = {
        s: {e['id']
            for e in entries if e['split'] == s}
        for s in ('train', 'val', 'test')
    }
    assert ids['train'] == set(range(1, 7))
    assert ids['val'] == set(range(7, 10))
    assert ids['test'] == set(range(10, 18))
    assert counts['test']['images'] == 8 * preset['images_per_id']['test']
    for e in entries:
        assert set(e) == {
            'split', 'captions', 'file_path', 'processed_tokens', 'id'
        }
        assert len(e['captions']) == 2
        assert e['captions'][0] != e['captions'][1]
        assert e['processed_tokens'] == [tokenize(c) for c in e['captions']]
        with Image.open(osp.join(root, 'imgs', e['file_path'])) as im:
            assert im.size == (64, 128)
    with open(osp.join(root, 'synth_attributes.json')) as f:
        attrs = json.load(f)
    split_of = {e['id']: e['split'] for e in entries}
    for fam in attrs['families'].values():
        # a family lives in one split and has at least two members
        assert len(fam['pids']) >= 2
        assert {split_of[p] for p in fam['pids']} == {fam['split']}
    with open(osp.join(root, 'README.txt')) as f:
        readme = f.read()
    assert 'generator version: 2.0.0' in readme
    assert TINY_SEED0_DIGEST in readme


def test_loads_with_the_real_cuhkpedes_class(tiny):
    from mmreid_clip.datasets import CUHKPEDES
    root, _ = tiny
    train = CUHKPEDES(data_root=root, split='train')
    assert train.metainfo['num_classes'] == 6
    assert len(train) == 6 * 2 * 2  # one item per caption
    test = CUHKPEDES(data_root=root, split='test')
    assert test.metainfo['num_images'] == 16
    assert test.metainfo['num_captions'] == 32
    assert test.metainfo['num_identities'] == 8


def test_dataset_config_reads_it(tiny):
    from mmengine.config import Config

    import mmreid_clip.datasets  # noqa: F401 (registers CUHKPEDES)
    from mmreid_clip.registry import DATASETS
    root, _ = tiny
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/datasets/synth_pedes_v2.py'))
    assert cfg.test_dataloader.dataset.data_root == 'data/synth-pedes-v2'
    assert cfg.img_size == (128, 64)
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.data_root = root
    dataset = DATASETS.build(ds_cfg)
    assert dataset.metainfo['num_images'] == 16
    sample = dataset[0]
    assert tuple(sample['inputs']['images'].shape) == (3, 128, 64)


def test_version_1_folder_is_not_overwritten_silently(tmp_path):
    root = str(tmp_path / 'd')
    generate_synth_pedes(
        root, seed=0, train_ids=1, val_ids=0, test_ids=1, images_per_id=1)
    with pytest.raises(FileExistsError, match='generator_version'):
        generate_synth_pedes_v2(root, preset='tiny')
    generate_synth_pedes_v2(
        root,
        preset='tiny',
        overwrite=True,
        train_ids=2,
        val_ids=0,
        test_ids=2,
        images_per_id=1)
    with open(osp.join(root, 'synth_manifest.json')) as f:
        assert json.load(f)['generator_version'] == '2.0.0'


def test_cli_version_2_and_default_version_1(tmp_path, capsys):
    module = load_tool('tools/dataset_converters/make_synth_pedes.py')
    args = [
        str(tmp_path / 'v2'), '--version', '2', '--preset', 'tiny',
        '--test-ids', '4', '--images-per-id', '1'
    ]
    module.main(args)
    assert 'images/s' in capsys.readouterr().out
    with open(tmp_path / 'v2' / 'synth_manifest.json') as f:
        manifest = json.load(f)
    assert manifest['generator_version'] == '2.0.0'
    assert manifest['params']['test_ids'] == 4
    assert manifest['params']['train_ids'] == 6  # from the preset
    assert manifest['params']['images_per_id'] == dict(train=1, val=1, test=1)
    module.main(args)
    assert 'nothing to do' in capsys.readouterr().out
    module.main([
        str(tmp_path / 'v1'), '--train-ids', '1', '--val-ids', '0',
        '--test-ids', '1', '--images-per-id', '1'
    ])
    with open(tmp_path / 'v1' / 'synth_manifest.json') as f:
        assert json.load(f)['generator_version'] == GENERATOR_VERSION


# ---------------------------------------------------------------------------
# families: shared global appearance, pairwise different details


def test_family_layout_covers_the_ids():
    for n in (1, 2, 3, 7, 100):
        fams = family_layout(0, 11, n)
        pids = [p for r in fams for p in r]
        assert pids == list(range(11, 11 + n))
        assert all(len(r) >= 2 for r in fams) or n == 1
        assert family_layout(0, 11, n) == fams


def test_members_share_the_global_appearance_and_differ_in_details():
    sizes = []
    for fam in _families(3, 400):
        sizes.append(len(fam))
        varying = fam[0].varying
        assert 2 <= len(varying) <= 3
        assert set(varying) <= set(DETAIL_SLOTS)
        base = fam[0].base
        for person in fam:
            assert person.varying == varying
            b = person.base
            # everything global is the family's, shades included
            for field in ('gender', 'height', 'build', 'skin', 'lower',
                          'backpack'):
                assert getattr(b, field) == getattr(base, field)
            for part in ('skin', 'upper', 'inner', 'lower', 'backpack'):
                assert b.rgb[part] == base.rgb[part]
            assert dataclasses.replace(
                b.upper, pattern='plain', pattern_colour=None) == (
                    dataclasses.replace(
                        base.upper, pattern='plain', pattern_colour=None))
            if 'hair' not in varying:
                assert (b.hair_style, b.hair_colour) == (base.hair_style,
                                                         base.hair_colour)
        details = [person_details(p) for p in fam]
        for slot in DETAIL_SLOTS:
            values = [d[slot] for d in details]
            if slot in varying:
                # pairwise different, at most one member without it
                assert len(set(values)) == len(values), (slot, values)
                assert sum(v is None for v in values) <= 1
            else:
                assert len(set(values)) == 1, (slot, values)
    assert 3.0 <= np.mean(sizes) <= 4.2


def test_swap_detail_changes_one_slot():
    fam = _families(5, 12)[0]
    a, b = fam[0], fam[1]
    for slot in a.varying:
        swapped = swap_detail(a, b, slot)
        da, ds = person_details(a), person_details(swapped)
        assert ds[slot] == person_details(b)[slot]
        assert {k for k in da if da[k] != ds[k]} == {slot}


# ---------------------------------------------------------------------------
# captions: truthful, varied, and naming every within-family difference


def _agrees(key, said, shown):
    if key == 'upper':
        return set(said) <= set(shown)
    if key == 'backpack' and said == 'yes':
        return shown is not None
    if isinstance(shown, list):
        shown = tuple(shown)
    return said == shown


def test_captions_are_true_and_name_every_visible_difference():
    lengths, templates_seen = [], set()
    for fam in _families(7, 250):
        for person in fam:
            for k in range(4):
                view = sample_view_v2(7, person, k)
                facts = image_facts(person, view)
                shown = visible_details(person, view)
                for caption in generate_captions_v2(person, view, 2, 7):
                    lengths.append(len(tokenize(caption)))
                    templates_seen.add(caption.split()[0])
                    said = read_caption(caption)
                    # only true, visible attributes are named
                    for key, value in said.items():
                        assert key in facts, (key, caption)
                        assert _agrees(key, value, facts[key]), (key, caption)
                    for key in GLOBAL_KEYS:
                        if key in ('gender', 'upper'):
                            assert key in said, caption
                    # every varying detail the image shows is named
                    for slot in person.varying:
                        if shown.get(slot) is not None:
                            assert said.get(slot) == shown[slot], (slot,
                                                                   caption)
    assert MIN_WORDS_V2 <= min(lengths) and max(lengths) <= MAX_WORDS_V2
    assert 25 <= np.mean(lengths) <= 40
    assert len(templates_seen) >= 5


def test_vocabulary_tells_every_pair_of_members_apart():
    # for every pair of members and every slot in which they differ, each
    # member's detail has words of its own: the phrase read back from a
    # caption that names it is the member's value, never the other's
    colour_words = {c for forms in COLOUR_WORDS.values() for c in forms}
    nouns = set(DETAIL_NOUNS) | {
        'glasses', 'sunglasses', 'hair', 'bald', 'shaved', 'eyeglasses',
        'ponytail'
    }
    for fam in _families(11, 300):
        for a, b in combinations(fam, 2):
            da, db = person_details(a), person_details(b)
            differ = {s for s in DETAIL_SLOTS if da[s] != db[s]}
            assert differ == set(a.varying)
            for person, other in ((a, b), (b, a)):
                for k in range(4):
                    view = sample_view_v2(11, person, k)
                    shown = visible_details(person, view)
                    for caption in generate_captions_v2(person, view, 2, 11):
                        said = read_caption(caption)
                        toks = set(tokenize(caption))
                        for slot in differ:
                            value = shown.get(slot)
                            if value is None:
                                continue
                            assert said[slot] == value
                            assert said[slot] != person_details(other)[slot]
                            assert toks & nouns
                            colour = (
                                value[1] if isinstance(value, tuple) else
                                value if slot in ('scarf', 'watch') else None)
                            if colour:
                                assert colour_words & toks
                                assert any(w in caption
                                           for w in COLOUR_WORDS[colour])


def test_captions_vary_in_wording_and_order():
    fam = _families(0, 20)[0]
    person = fam[0]
    view = sample_view_v2(0, person, 0)
    rng = np.random.default_rng(0)
    captions = {
        describe_v2(person, view, t, rng)
        for t in range(NUM_TEMPLATES_V2)
    }
    assert len(captions) == NUM_TEMPLATES_V2
    assert len({c.split()[0] for c in captions}) >= 4


def test_reader_catches_a_wrong_detail():
    fam = _families(2, 12)[0]
    a, b = fam[0], fam[1]
    for k in range(4):
        view = sample_view_v2(2, a, k)
        shown = visible_details(a, view)
        for slot in a.varying:
            if shown.get(slot) is None:
                continue
            said = read_caption(generate_captions_v2(a, view, 1, 2)[0])
            assert said[slot] != person_details(b)[slot]


# ---------------------------------------------------------------------------
# rendering and the probe


def test_render_is_deterministic_and_shows_the_details():
    fam = _families(4, 10)[0]
    a, b = fam[0], fam[1]
    view = sample_view_v2(4, a, 0)
    img = render_view_v2(a, view, (128, 64), 4)
    assert img.shape == (128, 64, 3) and img.dtype == np.uint8
    assert np.array_equal(img, render_view_v2(a, view, (128, 64), 4))
    plain = render_view_v2(a, view, (128, 64), 4, effects=False)
    changed = []
    for slot in a.varying:
        other = render_view_v2(
            swap_detail(a, b, slot), view, (128, 64), 4, effects=False)
        diff = np.abs(plain.astype(int) - other).max(-1)
        changed.append(int((diff > 24).sum()))
    # at least one difference is visible whatever the view
    assert max(changed) >= 16


def test_probe_on_the_tiny_preset(tiny, capsys):
    root, _ = tiny
    module = load_tool('tools/analysis/synth_pedes_probe.py')
    result = module.main([root, '--draws', '3', '--detail-images', '4'])
    out = capsys.readouterr().out
    assert 'oracle, global only' in out and 'detail-aware' in out
    assert result['queries'] == 32 and result['gallery'] == 16
    assert result['chance_R1'] == pytest.approx(100 * 2 / 16)
    glob, full = result['oracle_global'], result['oracle_detail']
    # the details separate the near-duplicates; the global colours do not
    assert full['R@1'] >= 90
    assert glob['R@1'] <= full['R@1'] - 30
    assert glob['family_above'] >= 25 and full['family_above'] <= 10
    assert result['pixel_global']['family_above'] >= 25
    assert result['detail_pixels']
