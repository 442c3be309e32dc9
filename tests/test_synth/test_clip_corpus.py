"""The SynthCLIP corpus (pretraining data of the stand-in CLIP) and the
captions of SynthCC v2 images: format, disjoint ids, captions that name
what the image shows, determinism, caching; and the stand-in builder's
cache and in-batch counting (no training here: the build takes an hour).
"""
import hashlib
import json
import os.path as osp

import numpy as np
import pytest
import torch

from mmreid_clip.datasets import CUHKPEDES
from mmreid_synth import synth_cc_v2 as cc2
from mmreid_synth.cc_v2_captions import (GARMENT_NAMES, cc_v2_captions,
                                         describe_cc_v2)
from mmreid_synth.clip_corpus import generate_clip_corpus

from helpers.tool_loader import load_tool


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('corpus'))
    return root, generate_clip_corpus(root, size='tiny', seed=7)


def test_corpus_layout_ids_and_loader(corpus):
    root, result = corpus
    with open(osp.join(root, 'reid_raw.json')) as f:
        entries = json.load(f)
    pedes = [e for e in entries if e['file_path'].startswith('pedes/')]
    cc = [e for e in entries if e['file_path'].startswith('cc/')]
    assert pedes and cc and len(pedes) + len(cc) == len(entries)
    # every file exists, every entry has 2 captions with their tokens
    for e in entries:
        assert osp.isfile(osp.join(root, e['file_path'])), e['file_path']
        assert len(e['captions']) == 2 == len(e['processed_tokens'])
    # the two parts' identities are disjoint; SynthCC images are train only
    assert not {e['id'] for e in pedes} & {e['id'] for e in cc}
    assert {e['split'] for e in cc} == {'train'}
    assert result['counts']['train']['cc_images'] == len(cc)
    # the real loader reads it with paths relative to the corpus root
    ds = CUHKPEDES(data_root=root, split='train', img_prefix='',
                   pipeline=[], lazy_init=False)
    assert len(ds) == result['counts']['train']['captions']
    assert osp.isfile(ds.get_data_info(0)['img_path'])


def test_corpus_is_cached_and_deterministic(corpus, tmp_path):
    root, first = corpus
    again = generate_clip_corpus(root, size='tiny', seed=7)
    assert again['generated'] is False
    assert again['annotation_sha256'] == first['annotation_sha256']
    other = generate_clip_corpus(str(tmp_path / 'b'), size='tiny', seed=7)
    assert other['annotation_sha256'] == first['annotation_sha256']
    with pytest.raises(FileExistsError, match='other settings'):
        generate_clip_corpus(root, size='tiny', seed=8)


def test_cc_captions_name_what_the_image_shows():
    rng = np.random.default_rng(0)
    for pid in range(1, 30):
        ident = cc2.sample_identity_v2(3, pid).cues()
        outfit = dict(
            look=[pid % 14, -1, (pid + 5) % 14],
            pattern='plain', sleeves='short', lower='trousers',
            coat_colour=None, coat_open=False, hat=None, hat_colour=None)
        caps = cc_v2_captions(ident, outfit, 'front', 2, rng)
        assert len(caps) == 2 and caps[0] != caps[1]
        for cap in caps:
            assert f'{GARMENT_NAMES[pid % 14]} short-sleeved top' in cap
            assert f'{GARMENT_NAMES[(pid + 5) % 14]} trousers' in cap
            assert ident['shoes'] in cap and 'skin' in cap
    # a face feature is not named when the face cannot be seen
    ident = dict(cc2.sample_identity_v2(3, 1).cues(), face='beard')
    assert describe_cc_v2(ident, outfit, 'front')['face'] == 'a beard'
    assert describe_cc_v2(ident, outfit, 'back')['face'] is None
    # a coat replaces the top; an open one shows the top under it
    coat = dict(outfit, look=[3, 1, 2], coat_colour=[200, 32, 38],
                coat_open=True)
    p = describe_cc_v2(ident, coat, 'front')
    assert p['top'] is None and p['coat'] == (
        'an open red coat over a white top')


def test_builder_counts_in_batch_matches():
    build = load_tool('tools/misc/build_synth_clip.py')
    # captions 0..3 of images 0..3; ids 1, 1, 2, 3
    sim = torch.tensor([[0.9, 0.95, 0.1, 0.2],   # beaten only by its own id
                        [0.2, 0.5, 0.6, 0.1],    # violated by image 2
                        [0.1, 0.2, 0.8, 0.3],
                        [0.1, 0.2, 0.9, 0.7]])   # violated by image 2
    pids = torch.tensor([1, 1, 2, 3])
    counts = build.batch_matching(sim, pids)
    # captions 0 and 2 rank their image above every other identity's
    # (caption 0's 0.95 is for image 1, the same identity: not a negative)
    assert counts['t2i'] == 2
    # images 0, 1 and 3 rank their caption first; image 2 loses to caption 3
    assert counts['i2t'] == 3
    # violated anchors: captions 1 and 3, image 2
    assert counts['violating'] == 3


def test_builder_uses_a_verified_cache_and_never_replaces_a_foreign_file(
        tmp_path, capsys):
    build = load_tool('tools/misc/build_synth_clip.py')
    out = tmp_path / 'w.pth'
    out.write_bytes(b'weights')
    # a file without the tool's stamp is not replaced without --force
    with pytest.raises(SystemExit, match='not a build of this tool'):
        build.main(['--out', str(out)])
    # with a stamp whose checksum matches, the recorded figures are reused
    digest = hashlib.sha256(b'weights').hexdigest()
    record = dict(weights_sha256=digest, figures=dict(x=dict(y=1.0)))
    (tmp_path / 'w.pth.json').write_text(json.dumps(record))
    assert build.main(['--out', str(out)]) == record
    assert 'cached build' in capsys.readouterr().out
    # a modified file no longer matches its stamp
    out.write_bytes(b'other')
    with pytest.raises(SystemExit, match='not a build of this tool'):
        build.main(['--out', str(out)])
