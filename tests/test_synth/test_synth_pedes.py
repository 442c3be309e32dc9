"""SynthPedes: CUHK-PEDES layout and schema, determinism, truthful captions,
view variation, idempotence and the refusal to write into foreign folders.

Datasets here are tiny (a handful of identities); generation takes well
under a second each.
"""
import dataclasses
import json
import os
import os.path as osp
import re

import numpy as np
import pytest
from PIL import Image

from mmreid_synth import (GENERATOR_VERSION, SOURCES, attribute_space_size,
                          describe, generate_captions, generate_synth_pedes,
                          render_view, sample_identity, sample_view, tokenize,
                          visible_identity)
from mmreid_synth import captions as vocab
from mmreid_synth.pedestrian import View

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402

TINY = dict(train_ids=6, val_ids=2, test_ids=3, images_per_id=2)
FIELDS = {'split', 'captions', 'file_path', 'processed_tokens', 'id'}


def _generate(root, **kwargs):
    args = dict(TINY, seed=0)
    args.update(kwargs)
    return generate_synth_pedes(str(root), **args)


def _load(root):
    with open(osp.join(root, 'reid_raw.json'), encoding='utf-8') as f:
        return json.load(f)


def _image_bytes(root):
    out = {}
    for dirpath, _, files in os.walk(osp.join(root, 'imgs')):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synth') / 'synth-pedes')
    counts = _generate(root)
    return root, counts


# ---------------------------------------------------------------------------
# layout and schema


def test_layout_and_schema(tiny):
    root, counts = tiny
    entries = _load(root)
    assert isinstance(entries, list)
    assert len(entries) == (6 + 2 + 3) * 2 == counts['total']['images']
    ids = {'train': [], 'val': [], 'test': []}
    for e in entries:
        assert set(e) == FIELDS
        assert e['split'] in ids
        assert type(e['id']) is int
        ids[e['split']].append(e['id'])
        assert isinstance(e['captions'], list) and len(e['captions']) == 2
        assert all(isinstance(c, str) and c.strip() for c in e['captions'])
        assert e['captions'][0] != e['captions'][1]
        # one token list per caption, lower-case words without punctuation
        assert e['processed_tokens'] == [tokenize(c) for c in e['captions']]
        for tokens in e['processed_tokens']:
            assert all(t == t.lower() and re.fullmatch(r"[a-z0-9'-]+", t)
                       for t in tokens)
            assert vocab.MIN_WORDS <= len(tokens) <= vocab.MAX_WORDS
        source, name = e['file_path'].split('/')
        assert source in SOURCES.values() and name.endswith('.jpg')
        path = osp.join(root, 'imgs', e['file_path'])
        with Image.open(path) as img:
            assert img.format == 'JPEG'
            assert img.size == (64, 128)  # (W, H)
            assert img.mode == 'RGB'
    # 1-based, contiguous, train first, then val, then test
    assert sorted(set(ids['train'])) == list(range(1, 7))
    assert sorted(set(ids['val'])) == [7, 8]
    assert sorted(set(ids['test'])) == [9, 10, 11]
    assert len({e['file_path'] for e in entries}) == len(entries)
    assert counts['train'] == dict(
        ids=6, images=12, captions=24, first_id=1, last_id=6)
    assert counts['generated'] is True
    readme = open(osp.join(root, 'README.txt')).read()
    assert GENERATOR_VERSION in readme and 'seed: 0' in readme
    assert re.search(r'^test +3 +6 +12 +9\.\.11$', readme, re.M)


def test_read_by_cuhkpedes_loader(tiny):
    from mmreid_clip.datasets import CUHKPEDES
    root, _ = tiny
    train = CUHKPEDES(data_root=root, split='train')
    assert train.metainfo['num_classes'] == 6
    assert len(train) == 24
    test = CUHKPEDES(data_root=root, split='test')
    assert test.metainfo['num_images'] == 6
    assert test.metainfo['num_captions'] == 12
    assert {test.get_data_info(i)['pid'] for i in range(6)} == {9, 10, 11}


@pytest.mark.parametrize('size', [(128, 64), (256, 128), (384, 128)])
def test_render_sizes(size):
    identity = sample_identity(3, 5)
    for k in range(4):
        img = render_view(identity, sample_view(3, identity, k), size, 3)
        assert img.shape == (size[0], size[1], 3) and img.dtype == np.uint8
        # a person, not a blank frame
        assert img.std() > 10


def test_generate_at_384x128(tmp_path):
    _generate(
        tmp_path / 'd',
        train_ids=1,
        val_ids=0,
        test_ids=1,
        images_per_id=1,
        img_size=(384, 128))
    for e in _load(tmp_path / 'd'):
        with Image.open(tmp_path / 'd' / 'imgs' / e['file_path']) as img:
            assert img.size == (128, 384)


# ---------------------------------------------------------------------------
# determinism


def test_same_seed_identical_different_seed_different(tiny, tmp_path):
    root, _ = tiny
    again = tmp_path / 'again'
    _generate(again)
    with open(osp.join(root, 'reid_raw.json'), 'rb') as f:
        first = f.read()
    assert (again / 'reid_raw.json').read_bytes() == first
    assert _image_bytes(root) == _image_bytes(str(again))

    other = tmp_path / 'other'
    _generate(other, seed=1)
    assert (other / 'reid_raw.json').read_bytes() != first
    a, b = _load(root), _load(str(other))
    assert [e['captions'] for e in a] != [e['captions'] for e in b]
    img_a = np.asarray(Image.open(osp.join(root, 'imgs', a[0]['file_path'])))
    img_b = np.asarray(Image.open(other / 'imgs' / b[0]['file_path']))
    assert not np.array_equal(img_a, img_b)


def test_identity_depends_on_seed_and_id_only(tiny, tmp_path):
    # a smaller dataset holds exactly the same first identities
    root, _ = tiny
    small = tmp_path / 'small'
    _generate(small, train_ids=3, val_ids=0, test_ids=0)
    full = {e['file_path']: e for e in _load(root)}
    for e in _load(str(small)):
        assert e == full[e['file_path']]
        assert ((small / 'imgs' / e['file_path']).read_bytes() == open(
            osp.join(root, 'imgs', e['file_path']), 'rb').read())
    assert sample_identity(0, 4) == sample_identity(0, 4)
    assert sample_identity(0, 4) != sample_identity(1, 4)


def test_worker_processes_give_the_same_output(tiny, tmp_path):
    root, _ = tiny
    _generate(tmp_path / 'mp', num_workers=2)
    assert ((tmp_path / 'mp' / 'reid_raw.json').read_bytes() == open(
        osp.join(root, 'reid_raw.json'), 'rb').read())
    assert _image_bytes(str(tmp_path / 'mp')) == _image_bytes(root)


# ---------------------------------------------------------------------------
# captions: parse the colours back and check them against the attributes

_MULTIWORD = {
    w: c
    for c, forms in vocab.COLOUR_WORDS.items()
    for w in forms if ' ' in w
}
_COLOUR_OF = {
    w: c
    for c, forms in vocab.COLOUR_WORDS.items()
    for w in forms if ' ' not in w
}
_HAIR_COLOUR_OF = {
    w: c
    for c, forms in vocab.HAIR_COLOUR_WORDS.items()
    for w in forms
}


def _colour_tokens(caption):
    """Tokens with multi-word colours ("navy blue") merged into one."""
    toks, out, i = tokenize(caption), [], 0
    while i < len(toks):
        pair = ' '.join(toks[i:i + 2])
        if pair in _MULTIWORD:
            out.append(pair)
            i += 2
        else:
            out.append(toks[i])
            i += 1
    return out


def _is_colour(tok):
    return tok in _MULTIWORD or tok in _COLOUR_OF or tok in _HAIR_COLOUR_OF


def parse_mentions(caption):
    """[(colour words, modifiers, head noun, word before)] of a caption."""
    toks = _colour_tokens(caption)
    mentions, i = [], 0
    while i < len(toks):
        if not _is_colour(toks[i]):
            i += 1
            continue
        colours, mods, j = [toks[i]], [], i + 1
        while j < len(toks) and (_is_colour(toks[j])
                                 or toks[j] in vocab.MODIFIERS):
            (colours if _is_colour(toks[j]) else mods).append(toks[j])
            j += 1
        assert j < len(toks) and toks[j] in vocab.NOUN_SLOTS, (
            f'colour without a noun in {caption!r}: {toks[i:j + 1]}')
        mentions.append((colours, mods, toks[j], toks[i - 1] if i else ''))
        i = j + 1
    return mentions


def _garment_colours(words):
    out = set()
    for w in words:
        c = _MULTIWORD.get(w) or _COLOUR_OF.get(w)
        assert c is not None, f'{w!r} is not a garment colour'
        out.add(c)
    return out


def check_caption(caption, identity, view):
    """Assert that ``caption`` names only true, visible attributes."""
    vis = visible_identity(identity, view)
    up = vis.upper
    toks = set(tokenize(caption))
    said_upper = False
    for colours, mods, noun, before in parse_mentions(caption):
        slot = vocab.NOUN_SLOTS[noun]
        if slot == 'hair':
            assert {_HAIR_COLOUR_OF[c] for c in colours} == {vis.hair_colour}
            if noun == 'ponytail':
                assert vis.hair_style == 'ponytail'
            length = {'long': 'long', 'short': 'short'}.get(before)
            if before == 'short' and 'very' in caption:
                length = None  # "very short": a buzz cut
            if length:
                assert vis.hair_style == length, caption
            continue
        got = _garment_colours(colours)
        if slot == 'upper':
            if noun in vocab.UPPER_NOUNS[up.kind]:
                assert up.colour in got, caption
                assert got <= {up.colour, up.pattern_colour}, caption
                said_upper = True
            else:
                assert up.inner_kind is not None, caption
                assert noun in vocab.UPPER_NOUNS[up.inner_kind], caption
                assert got == {up.inner_colour}, caption
        elif slot == 'pattern':
            assert up.pattern != 'plain' and got == {up.pattern_colour}
            if noun in ('logo', 'print'):
                assert up.pattern == 'logo'
        elif slot == 'lower':
            assert noun in vocab.LOWER_NOUNS[vis.lower.kind] and got == {
                vis.lower.colour
            }, caption
        elif slot == 'shoes':
            assert vis.shoes is not None, caption
            assert noun in vocab.SHOE_NOUNS[vis.shoes.kind]
            assert got == {vis.shoes.colour}
        elif slot == 'backpack':
            assert view.direction != 'front' and got == {vis.backpack}
        elif slot == 'bag':
            assert vis.bag is not None and got == {vis.bag.colour}
            assert noun != 'handbag' or vis.bag.kind == 'handbag'
        elif slot == 'headwear':
            assert vis.headwear is not None and got == {vis.headwear.colour}
            assert noun == vis.headwear.kind
        elif slot == 'scarf':
            assert got == {vis.scarf}
    # the main garment is always described, with its colour
    assert said_upper, caption
    # things named without a colour must exist too
    assert not ({'backpack', 'rucksack'} & toks) or vis.backpack is not None
    assert 'sunglasses' not in toks or vis.glasses == 'sunglasses'
    assert not ({'glasses', 'eyeglasses'} & toks) or vis.glasses == 'glasses'
    assert not ({'bald', 'shaved'} & toks) or vis.hair_style == 'bald'
    assert 'bun' not in toks or vis.hair_style == 'bun'
    assert 'skirt' not in toks or vis.lower.kind == 'skirt'
    assert 'dress' not in toks or up.kind == 'dress'
    male, female = bool(toks & set(vocab.MALE_WORDS)), bool(
        toks & set(vocab.FEMALE_WORDS))
    assert (male, female) == ((True, False) if vis.gender == 'male' else
                              (False, True)), caption
    assert 'tall' not in toks or vis.height == 'tall'
    assert not ({'slim', 'thin', 'slender'} & toks) or vis.build == 'slim'
    assert not ({'stocky', 'heavy-set', 'broad'} & toks) or (vis.build
                                                             == 'heavy')
    if 'away' in toks or 'behind' in toks:
        assert view.direction == 'back'
    if 'camera' in toks and 'away' not in toks:
        assert view.direction == 'front'
    for side in ('left', 'right'):
        if side in toks:
            assert view.direction == side
    if 'side' in toks:
        assert view.direction in ('left', 'right')


def test_dataset_captions_mention_only_true_attributes(tiny):
    root, _ = tiny
    with open(osp.join(root, 'synth_attributes.json')) as f:
        attrs = json.load(f)
    views = {r['file_path']: r['view'] for r in attrs['images']}
    for e in _load(root):
        identity = sample_identity(0, e['id'])
        assert attrs['identities'][str(e['id'])] == identity.to_dict()
        view = sample_view(0, identity, views[e['file_path']]['index'])
        assert view.to_dict() == views[e['file_path']]
        for caption in e['captions']:
            check_caption(caption, identity, view)


def test_captions_true_on_many_identities():
    # captions only (no rendering): 300 people x 4 views x 2 captions
    lengths = []
    for pid in range(1, 301):
        identity = sample_identity(7, pid)
        for k in range(4):
            view = sample_view(7, identity, k)
            for caption in generate_captions(identity, view, 2, 7):
                check_caption(caption, identity, view)
                lengths.append(len(tokenize(caption)))
    assert vocab.MIN_WORDS <= min(lengths) and max(lengths) <= vocab.MAX_WORDS
    assert 20 <= np.mean(lengths) <= 32


def test_captions_are_varied():
    identity = sample_identity(0, 1)
    view = sample_view(0, identity, 0)
    rng = np.random.default_rng(0)
    captions = {describe(identity, view, t, rng) for t in range(6)}
    assert len(captions) == 6
    starts = {c.split()[0] for c in captions}
    assert len(starts) >= 3  # different sentence structures


def test_different_attributes_give_different_captions():
    base = sample_identity(0, 2)
    up = base.upper
    colour = 'green' if up.colour != 'green' else 'red'
    other = dataclasses.replace(
        base, upper=dataclasses.replace(up, colour=colour))
    view = sample_view(0, base, 0)
    caps_a = generate_captions(base, view, 2, 0)
    caps_b = generate_captions(other, view, 2, 0)
    assert caps_a != caps_b
    for caption in caps_b:
        check_caption(caption, other, view)


def test_view_dependent_descriptions():
    base = sample_identity(0, 3)
    identity = dataclasses.replace(
        base,
        backpack='red',
        glasses='glasses',
        upper=dataclasses.replace(
            base.upper,
            kind='t-shirt',
            sleeves='short',
            pattern='logo',
            pattern_colour='white',
            inner_kind=None,
            inner_colour=None))
    front = View(0, 'front', 'a', 0.5, 0.0, 0.5, 0.9, 0.97, 0.0, (0, 0, 0, 0))
    back = dataclasses.replace(front, direction='back')
    vf, vb = visible_identity(identity,
                              front), visible_identity(identity, back)
    assert vf.upper.pattern == 'logo' and vb.upper.pattern == 'plain'
    assert vf.glasses == 'glasses' and vb.glasses is None
    for _ in range(3):
        rng = np.random.default_rng(_)
        for t in range(6):
            cf = describe(identity, front, t, rng)
            cb = describe(identity, back, t, rng)
            check_caption(cf, identity, front)
            check_caption(cb, identity, back)
            assert 'logo' not in cb and 'print' not in cb
            assert not re.search(r'red (backpack|rucksack)', cf)
    # a crop that cuts the feet hides the shoes
    cut = dataclasses.replace(front, crop=(0, 0, 0, 0.1))
    assert not cut.shoes_visible
    assert visible_identity(identity, cut).shoes is None


def test_views_of_one_identity_vary(tiny):
    root, _ = tiny
    entries = [e for e in _load(root) if e['id'] == 1]
    imgs = [
        np.asarray(
            Image.open(osp.join(root, 'imgs', e['file_path'])), np.float32)
        for e in entries
    ]
    assert len(imgs) == 2
    assert np.abs(imgs[0] - imgs[1]).mean() > 10
    identity = sample_identity(0, 1)
    views = [sample_view(0, identity, k) for k in range(4)]
    # pose, framing and camera change between views; directions cycle
    assert len({
        v.direction.replace('left', 'side').replace('right', 'side')
        for v in views[:3]
    }) >= 2
    assert len({v.camera for v in views[:3]}) == 3
    assert len({(v.scale, v.shift_x, v.stride) for v in views}) == 4


def test_attribute_space_is_large():
    size = attribute_space_size()
    assert size['describable'] > 10**12
    assert size['total'] > size['describable']


# ---------------------------------------------------------------------------
# idempotence and safety


def test_rerun_is_a_noop_and_changes_need_overwrite(tmp_path):
    root = tmp_path / 'd'
    _generate(root)
    ann = root / 'reid_raw.json'
    stamp = ann.stat().st_mtime_ns
    img = next(p for p in (root / 'imgs' / 'synth_cam_a').iterdir())
    img_stamp = img.stat().st_mtime_ns
    counts = _generate(root)
    assert counts['generated'] is False
    assert counts['total']['images'] == 22
    assert ann.stat().st_mtime_ns == stamp
    assert img.stat().st_mtime_ns == img_stamp

    with pytest.raises(FileExistsError, match='overwrite'):
        _generate(root, train_ids=2)
    (root / 'notes.txt').write_text('mine')
    counts = _generate(root, train_ids=2, overwrite=True)
    assert counts['generated'] is True
    entries = _load(root)
    assert len(entries) == (2 + 2 + 3) * 2
    on_disk = sum(len(files) for _, _, files in os.walk(root / 'imgs'))
    assert on_disk == len(entries)  # no stale images of the old run
    assert (root / 'notes.txt').read_text() == 'mine'  # not ours: kept


def test_missing_image_is_regenerated(tmp_path):
    root = tmp_path / 'd'
    _generate(root)
    entry = _load(root)[0]
    path = root / 'imgs' / entry['file_path']
    data = path.read_bytes()
    path.unlink()
    assert _generate(root)['generated'] is True
    assert path.read_bytes() == data


def test_interrupted_run_is_redone(tmp_path):
    root = tmp_path / 'd'
    _generate(root)
    manifest = json.loads((root / 'synth_manifest.json').read_text())
    manifest['complete'] = False
    (root / 'synth_manifest.json').write_text(json.dumps(manifest))
    (root / 'reid_raw.json').unlink()
    # ours and incomplete: redone even with other settings, no overwrite
    counts = _generate(root, test_ids=1)
    assert counts['generated'] is True
    assert counts['test']['ids'] == 1


def test_refuses_non_empty_foreign_folder(tmp_path):
    root = tmp_path / 'photos'
    root.mkdir()
    (root / 'holiday.jpg').write_bytes(b'not ours')
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match='not a SynthPedes dataset'):
            _generate(root, overwrite=overwrite)
    assert os.listdir(root) == ['holiday.jpg']
    file_root = tmp_path / 'file'
    file_root.write_text('x')
    with pytest.raises(NotADirectoryError):
        _generate(file_root)
    # an existing empty folder is fine
    (tmp_path / 'empty').mkdir()
    assert _generate(
        tmp_path / 'empty', train_ids=1, val_ids=0,
        test_ids=0)['total']['images'] == 2


@pytest.mark.parametrize('kwargs', [
    dict(seed=-1),
    dict(train_ids=-1),
    dict(train_ids=0, val_ids=0, test_ids=0),
    dict(images_per_id=0),
    dict(images_per_id={
        'train': 2,
        'query': 1
    }),
    dict(captions_per_image=0),
    dict(img_size=(16, 8)),
])
def test_invalid_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        _generate(tmp_path / 'd', **kwargs)
    assert not (tmp_path / 'd').exists()


def test_cli(tmp_path, capsys):
    # loaded in-process: a subprocess would spend seconds importing torch
    module = load_tool('tools/dataset_converters/make_synth_pedes.py')
    args = [
        str(tmp_path / 'd'), '--seed', '3', '--train-ids', '2', '--val-ids',
        '1', '--test-ids', '1', '--images-per-id', '1', '--test-images-per-id',
        '2', '--height', '96', '--width', '48'
    ]
    module.main(args)
    assert 'images/s' in capsys.readouterr().out
    entries = _load(tmp_path / 'd')
    assert [e['split']
            for e in entries] == ['train'] * 2 + ['val'] + ['test'] * 2
    with Image.open(tmp_path / 'd' / 'imgs' / entries[0]['file_path']) as im:
        assert im.size == (48, 96)
    module.main(args)
    assert 'nothing to do' in capsys.readouterr().out


def test_caption_checker_catches_wrong_colours():
    # the checker above is only useful if it fails on a false caption
    identity = sample_identity(0, 5)
    view = sample_view(0, identity, 0)
    caption = generate_captions(identity, view, 1, 0)[0]
    check_caption(caption, identity, view)
    up = identity.upper
    wrong = dataclasses.replace(
        identity,
        upper=dataclasses.replace(
            up, colour='purple' if up.colour != 'purple' else 'orange'))
    with pytest.raises(AssertionError):
        check_caption(caption, wrong, view)
