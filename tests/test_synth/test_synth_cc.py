"""SynthCC: LTCC layout read by the LTCC loader, masks that match the pixels,
the clothes-independence of identities, the test-split design,
determinism, idempotence and the CLI.

Most tests use a small dataset (a few identities, under two seconds to
generate); the default ``tiny`` size is generated once, in a slow test.
"""
import json
import os
import os.path as osp
import re
import time

import cv2
import numpy as np
import pytest

from mmreid_clip.datasets import LTCC
from mmreid_synth import synth_cc as cc

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402

SMALL = dict(
    train_ids=3, test_ids=4, frames_per_camera=2, num_cameras=4, seed=0)
#: Content digest of ``SMALL`` (``dataset_digest``). It changes only when
#: the generator's output changes, which must come with a new
#: ``GENERATOR_VERSION``: update both together.
SMALL_DIGEST = ('f104d4cc8cb4e21d348b2dc1f33bb93b'
                'cd3ab46574a2872df1bd79920bd0afdc')
NAME_RE = re.compile(r'^(\d{3})_(\d)_c(\d{2})_(\d{6})\.png$')
USED_LABELS = {0, 1, 2, 5, 7, 9, 12, 13, 14, 15, 16, 17, 18, 19}


def _generate(root, **kwargs):
    args = dict(SMALL)
    args.update(kwargs)
    return cc.generate_synth_cc(str(root), **args)


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp('synth_cc') / 'synth-cc'
    counts = _generate(root)
    with open(root / cc.ATTRIBUTES_FILE) as f:
        attrs = json.load(f)
    return str(root), counts, attrs


def _read(path, flags=cv2.IMREAD_COLOR):
    img = cv2.imread(path, flags)
    assert img is not None, path
    return img


# ---------------------------------------------------------------------------
# layout


def test_layout_parses_through_ltcc(small):
    root, counts, _ = small
    base = osp.join(root, 'LTCC_ReID')
    # 3 outfits x 3 cameras x 2 frames per identity; one query per outfit
    assert counts['train'] == dict(ids=3, images=54)
    assert counts['query'] == dict(ids=4, images=12)
    assert counts['test'] == dict(ids=4, images=60)
    assert counts['generated'] is True

    train = LTCC(data_root=base, split='train', with_mask=True)
    assert len(train) == 54
    meta = train.metainfo
    assert meta['num_pids'] == 3 and meta['num_clothes'] == 9
    # every identity wears its own three clothes ids
    np.testing.assert_array_equal(meta['pid2clothes'].sum(1), [3, 3, 3])
    test = LTCC(data_root=base, split='test', with_mask=True)
    assert test.metainfo['subset_sizes'] == {'query': 12, 'gallery': 60}
    assert {test.get_data_info(i)['pid'] for i in range(72)} == {4, 5, 6, 7}

    for folder in ('train', 'query', 'test'):
        names = sorted(os.listdir(osp.join(base, folder)))
        assert names == sorted(os.listdir(osp.join(base, folder + '-mask')))
        for name in names:
            m = NAME_RE.match(name)
            assert m, name
            assert 1 <= int(m.group(3)) <= 4
    item = train.get_data_info(0)
    img = _read(item['img_path'])
    mask = _read(item['mask_path'], cv2.IMREAD_UNCHANGED)
    assert img.shape == (128, 64, 3)
    assert mask.shape == (128, 64) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= USED_LABELS

    info = osp.join(base, 'info')
    with open(osp.join(info, 'cloth-change_id_test.txt')) as f:
        assert [int(x) for x in f.read().split()] == [4, 5, 6, 7]
    with open(osp.join(info, 'cloth-change_id_train.txt')) as f:
        assert [int(x) for x in f.read().split()] == [1, 2, 3]
    assert os.path.getsize(osp.join(info, 'cloth-unchange_id_test.txt')) == 0

    readme = open(osp.join(root, 'README.txt')).read()
    assert f'generator version: {cc.GENERATOR_VERSION}' in readme
    assert 'seed: 0' in readme
    meta = json.load(open(osp.join(root, 'meta.json')))
    assert meta['generator'] == 'SynthCC' and meta['seed'] == 0
    assert meta['generator_version'] == cc.GENERATOR_VERSION
    assert meta['complete'] is True
    assert meta['digest'] == cc.dataset_digest(root)


def test_test_split_design(small):
    root, _, attrs = small
    test = LTCC(data_root=osp.join(root, 'LTCC_ReID'), split='test')
    items = [test.get_data_info(i) for i in range(len(test))]
    query = [i for i in items if i['subset'] == 'query']
    gallery = [i for i in items if i['subset'] == 'gallery']
    for q in query:
        same_id = [g for g in gallery if g['pid'] == q['pid']]
        assert len({g['clothes_id'] for g in same_id}) >= 2
        sc = [
            g for g in same_id
            if g['clothes_id'] == q['clothes_id'] and g['camid'] != q['camid']
        ]
        cc_ = [
            g for g in same_id
            if g['clothes_id'] != q['clothes_id'] and g['camid'] != q['camid']
        ]
        assert sc and cc_, q['img_path']
    # a query's outfit is also worn by other people in the gallery
    outfit = {
        (r['pid'], r['clothes']): r['outfit']
        for r in attrs['images'] if r['split'] == 'test'
    }
    trapped = 0
    for q in query:
        m = NAME_RE.match(osp.basename(q['img_path']))
        key = (int(m.group(1)), int(m.group(2)))
        others = {
            p
            for (p, _), o in outfit.items() if o == outfit[key] and p != key[0]
        }
        trapped += bool(others)
    assert trapped >= len(query) // 2


# ---------------------------------------------------------------------------
# masks


def _frames(seed=0, n=24):
    """(identity, outfit, camera, frame) covering every direction, coats,
    hats, skirts, shorts and every hair style."""
    pool = cc.sample_outfit_pool(seed, 'train', 40)
    cams = [cc.sample_camera(seed, c) for c in range(1, 7)]
    out = []
    for k in range(n):
        ident = cc.sample_cc_identity(seed, k + 1)
        outfit = pool[(7 * k) % len(pool)]
        cam = cams[k % len(cams)]
        frame = cc.sample_frame(seed, cam, k + 1, 1, k)
        direction = cc.DIRECTIONS[k % 4]
        frame = cc.Frame(**{**frame.__dict__, 'direction': direction})
        out.append((ident, outfit, cam, frame))
    return out


def _proportional(pixels, bases, lo=0.7):
    """Whether every pixel is f * base (f in [lo, 1], +-1) for some base."""
    ok = np.zeros(len(pixels), bool)
    px = pixels.astype(np.float64)
    for base in bases:
        b = np.asarray(base, np.float64)
        f = np.clip(px @ b / max(b @ b, 1e-9), lo, 1.0)
        ok |= np.abs(px - f[:, None] * b).max(1) <= 1.01
    return ok


def test_labels_cover_the_right_colours():
    """With the camera effects off, the pixels of every label have exactly
    the colours of the matching attribute (up to the side-view shading)."""
    seen = set()
    for ident, outfit, cam, frame in _frames():
        r = cc.render_cc_view(
            ident, outfit, cam, frame, (128, 64), 0, effects=False)
        img, lab = r.image.reshape(-1, 3), r.labels.reshape(-1)
        skin = [ident.skin]
        allowed = {
            1: [outfit.hat_colour] if outfit.hat else [],
            2: [ident.hair_colour],
            5: [outfit.upper_colour, outfit.pattern_colour],
            7: [outfit.coat_colour] if outfit.coat_colour else [],
            9: [outfit.lower_colour],
            12: [outfit.lower_colour],
            13: skin + [ident.hair_colour, cc.EYE_COLOUR, cc.MARK_COLOUR],
            14: skin,
            15: skin,
            16: skin,
            17: skin,
            18: [ident.shoe_colour, *cc.SOLE_COLOURS],
            19: [ident.shoe_colour, *cc.SOLE_COLOURS],
        }
        labels = set(np.unique(lab).tolist())
        assert labels <= USED_LABELS
        for label in labels - {0}:
            pixels = img[lab == label]
            ok = _proportional(pixels, allowed[label])
            assert ok.all(), (label, pixels[~ok][:3], frame.direction)
        # every garment of the outfit is visible, and only those
        assert (1 in labels) == (outfit.hat is not None)
        assert (7 in labels) == (outfit.coat_colour is not None)
        assert (12 in labels) == (outfit.lower == 'skirt')
        assert (9 in labels) == (outfit.lower != 'skirt')
        if outfit.coat_colour is None:
            assert 5 in labels
        assert labels & {18, 19}  # shoes always show
        seen |= labels
        seen.add(frame.direction)
    assert USED_LABELS | set(cc.DIRECTIONS) <= seen


def test_background_pixels_are_the_background():
    """A pixel labelled background shows the camera's scene exactly: the
    same frame rendered with another person and outfit agrees there."""
    pool = cc.sample_outfit_pool(0, 'test', 10)
    for ident, outfit, cam, frame in _frames(n=12):
        other = cc.sample_cc_identity(0, 500 + frame.key[3])
        a = cc.render_cc_view(ident, outfit, cam, frame, (128, 64), 0)
        b = cc.render_cc_view(other, pool[frame.key[3] % 10], cam, frame,
                              (128, 64), 0)
        both = (a.labels == 0) & (b.labels == 0)
        np.testing.assert_array_equal(a.image[both], b.image[both])
        np.testing.assert_array_equal(a.image[a.labels == 0],
                                      a.background[a.labels == 0])
        # and the person's pixels are not background
        person = (a.labels > 0) & (b.labels == 0)
        diff = np.abs(a.image[person].astype(int) - b.image[person]).max(1)
        assert (diff > 0).mean() > 0.98
        # a person is about as tall as the frame says
        rows = np.flatnonzero((a.labels > 0).any(1))
        assert 0.7 * 128 < rows[-1] - rows[0] < 0.99 * 128


def test_written_masks_match_written_images(small):
    root, _, attrs = small
    base = osp.join(root, 'LTCC_ReID')
    cams = {
        c['camid']: cc.sample_camera(0, c['camid'])
        for c in attrs['cameras']
    }
    assert [c.to_dict() for c in cams.values()] == attrs['cameras']
    pools = {
        s: cc.sample_outfit_pool(0, s, len(p))
        for s, p in attrs['outfit_pools'].items()
    }
    for rec in attrs['images'][::7]:
        camera = cams[rec['camid']]
        frame = cc.sample_frame(0, camera, rec['pid'], rec['clothes'],
                                rec['frame'])
        r = cc.render_cc_view(
            cc.sample_cc_identity(0, rec['pid']),
            pools[rec['split']][rec['outfit']], camera, frame, (128, 64), 0)
        img = _read(osp.join(base, rec['folder'], rec['name']))
        mask = _read(
            osp.join(base, rec['folder'] + '-mask', rec['name']),
            cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(img[:, :, ::-1], r.image)
        np.testing.assert_array_equal(mask, r.labels)


# ---------------------------------------------------------------------------
# clothes carry no identity


def test_outfits_are_shared_and_independent_of_identity(small):
    _, _, attrs = small
    for split in ('train', 'test'):
        worn = {}
        for r in attrs['images']:
            if r['split'] == split:
                worn.setdefault(r['outfit'], set()).add(r['pid'])
        assert max(len(p) for p in worn.values()) >= 2, split
    # the outfit draw never looks at the person: same for any cues
    a = cc.assign_outfits(0, 5, 3, 30, 6, 3)
    assert a == cc.assign_outfits(0, 5, 3, 30, 6, 3)
    # over many people, outfit choices spread over the whole pool whatever
    # the person's cues (skin tone here)
    by_skin = {}
    for pid in range(1, 401):
        skin = cc.sample_cc_identity(0, pid).skin
        group = sum(skin) > 450
        for k, _ in cc.assign_outfits(0, pid, 3, 30, 6, 3):
            by_skin.setdefault(group, np.zeros(30))[k] += 1
    light, dark = (by_skin[g] / by_skin[g].sum() for g in (True, False))
    assert (light > 0).all() and (dark > 0).all()
    assert np.abs(light - dark).sum() < 0.4  # total variation, ~0.2 by chance


def test_identity_cues_are_constant_across_outfits():
    """The same person in two outfits keeps skin, hair, face, shoes and
    build; two people in the same outfit wear identical garments."""
    pool = cc.sample_outfit_pool(0, 'train', 20)
    cam = cc.sample_camera(0, 1)
    frame = cc.Frame(
        **{
            **cc.sample_frame(0, cam, 1, 1, 0).__dict__, 'direction': 'front'
        })
    plain = [o for o in pool if o.hat is None and o.coat_colour is None]
    o1, o2 = plain[0], plain[1]
    ident = cc.sample_cc_identity(0, 3)
    a = cc.render_cc_view(ident, o1, cam, frame, (128, 64), 0, effects=False)
    b = cc.render_cc_view(ident, o2, cam, frame, (128, 64), 0, effects=False)
    for label in (2, 13, 18, 19):
        sa, sb = a.labels == label, b.labels == label
        np.testing.assert_array_equal(sa, sb)
        np.testing.assert_array_equal(a.image[sa], b.image[sb])
    # same figure height whatever the clothes
    rows = [np.flatnonzero((r.labels > 0).any(1)) for r in (a, b)]
    assert (rows[0][0], rows[0][-1]) == (rows[1][0], rows[1][-1])

    other = cc.sample_cc_identity(0, 4)
    c = cc.render_cc_view(other, o1, cam, frame, (128, 64), 0, effects=False)
    colours = [{
        tuple(p)
        for p in r.image[np.isin(r.labels, cc.CLOTHES_LABELS)]
    } for r in (a, c)]
    assert len(colours[0]) >= 2 and colours[0] == colours[1]
    assert ident.cues() != other.cues()


# ---------------------------------------------------------------------------
# determinism, idempotence, safety


def test_deterministic(small, tmp_path):
    root, _, _ = small
    again = tmp_path / 'again'
    _generate(again, num_workers=2)
    assert cc.dataset_digest(str(again)) == cc.dataset_digest(root)
    assert (again / 'synth_cc_attributes.json').read_bytes() == open(
        osp.join(root, 'synth_cc_attributes.json'), 'rb').read()
    assert cc.dataset_digest(root) == SMALL_DIGEST, (
        'SynthCC output changed: bump GENERATOR_VERSION and update '
        'SMALL_DIGEST')
    other = tmp_path / 'other'
    _generate(other, seed=1)
    assert cc.dataset_digest(str(other)) != cc.dataset_digest(root)
    # an identity depends on (seed, pid) only
    assert cc.sample_cc_identity(0, 2) == cc.sample_cc_identity(0, 2)
    assert cc.sample_cc_identity(0, 2) != cc.sample_cc_identity(1, 2)


def test_rerun_is_a_noop_and_changes_need_overwrite(tmp_path):
    root = tmp_path / 'd'
    args = dict(train_ids=1, test_ids=1, frames_per_camera=1)
    assert _generate(root, **args)['generated'] is True
    img = next((root / 'LTCC_ReID' / 'train').iterdir())
    stamp = img.stat().st_mtime_ns
    assert _generate(root, **args)['generated'] is False
    assert img.stat().st_mtime_ns == stamp
    # a modified file is noticed and regenerated
    data = img.read_bytes()
    img.write_bytes(b'broken')
    assert _generate(root, **args)['generated'] is True
    assert img.read_bytes() == data
    with pytest.raises(FileExistsError, match='overwrite'):
        _generate(root, **dict(args, test_ids=2))
    (root / 'notes.txt').write_text('mine')
    counts = _generate(root, overwrite=True, **dict(args, test_ids=2))
    assert counts['total']['ids'] == 3
    assert len(os.listdir(root / 'LTCC_ReID' / 'query')) == 6
    assert (root / 'notes.txt').read_text() == 'mine'


def test_refuses_foreign_folders(tmp_path):
    root = tmp_path / 'photos'
    root.mkdir()
    (root / 'holiday.jpg').write_bytes(b'x')
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match='not a SynthCC dataset'):
            _generate(root, overwrite=overwrite)
    assert os.listdir(root) == ['holiday.jpg']
    (tmp_path / 'file').write_text('x')
    with pytest.raises(NotADirectoryError):
        _generate(tmp_path / 'file')


@pytest.mark.parametrize('kwargs', [
    dict(seed=-1),
    dict(size='huge'),
    dict(train_ids=0),
    dict(outfits_per_id=1),
    dict(cameras_per_outfit=5, num_cameras=4),
    dict(img_size=(16, 8)),
    dict(test_ids=999),
])
def test_invalid_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        _generate(tmp_path / 'd', **kwargs)
    assert not (tmp_path / 'd').exists()
    with pytest.raises(TypeError, match='unknown parameters'):
        cc.generate_synth_cc(str(tmp_path / 'd'), train_id=3)


def test_cli(tmp_path, capsys):
    # loaded in-process: a subprocess would spend seconds importing torch
    module = load_tool('tools/dataset_converters/make_synth_cc.py')
    args = [
        str(tmp_path / 'd'), '--seed', '3', '--train-ids', '1', '--test-ids',
        '1'
    ]
    module.main(args)
    assert 'images/s' in capsys.readouterr().out
    meta = json.load(open(tmp_path / 'd' / 'meta.json'))
    assert meta['seed'] == 3 and meta['params']['size'] == 'tiny'
    assert len(os.listdir(tmp_path / 'd' / 'LTCC_ReID' / 'train')) == 27
    module.main(args)
    assert 'nothing to do' in capsys.readouterr().out


# ---------------------------------------------------------------------------
# the default size, end to end


def _histograms(items, select):
    feats = []
    for it in items:
        img = cv2.imread(it['img_path'])[:, :, ::-1].astype(np.int64) // 32
        lab = cv2.imread(it['mask_path'], cv2.IMREAD_UNCHANGED)
        q = img[select(lab)]
        h = np.bincount(q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2], minlength=512)
        feats.append(np.sqrt(h / max(1, h.sum())))
    return np.asarray(feats)


def _rank1(feats, items, cloth_changing):
    """Rank-1 with the LTCC junk rules (docs/methods/datasets.md §5.2,
    §5.3)."""
    pid = np.array([i['pid'] for i in items])
    cam = np.array([i['camid'] for i in items])
    clo = np.array([i['clothes_id'] for i in items])
    is_q = np.array([i['subset'] == 'query' for i in items])
    qs, gs = np.flatnonzero(is_q), np.flatnonzero(~is_q)
    scores = feats[qs] @ feats[gs].T
    hits = []
    for row, q in zip(scores, qs):
        same = pid[gs] == pid[q]
        junk = same & (cam[gs] == cam[q])
        good = same & (cam[gs] != cam[q])
        if cloth_changing:
            junk |= same & (clo[gs] == clo[q])
            good &= clo[gs] != clo[q]
        keep = ~junk
        order = np.argsort(-row[keep], kind='stable')
        hits.append(good[keep][order][0])
    return float(np.mean(hits))


@pytest.mark.slow
def test_default_tiny_size(tmp_path):
    start = time.process_time()
    counts = cc.generate_synth_cc(str(tmp_path / 'tiny'), seed=0)
    cpu = time.process_time() - start
    assert cpu < 30, f'generation took {cpu:.1f} s of CPU'
    assert counts['train'] == dict(ids=36, images=972)
    assert counts['query'] == dict(ids=20, images=60)
    assert counts['test'] == dict(ids=20, images=480)
    base = str(tmp_path / 'tiny' / 'LTCC_ReID')
    train = LTCC(data_root=base, split='train', with_mask=True)
    assert train.metainfo['num_pids'] == 36
    assert train.metainfo['num_clothes'] == 108

    # The benchmark property, measured with colour histograms: clothes
    # colours find the same clothes, not the same person once they change;
    # the clothes-independent pixels do.
    test = LTCC(data_root=base, split='test', with_mask=True)
    items = [test.get_data_info(i) for i in range(len(test))]
    clothes = np.array(cc.CLOTHES_LABELS)
    person = _histograms(items, lambda lab: lab > 0)
    cues = _histograms(items, lambda lab: (lab > 0) & ~np.isin(lab, clothes))
    assert _rank1(person, items, True) < 0.25
    assert _rank1(cues, items, True) > 0.4
    assert _rank1(cues, items, True) > _rank1(person, items, True) + 0.25
