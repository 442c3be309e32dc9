"""tools/analysis/cc_feature_probe.py on a tiny SynthCC with a random micro
CCAF model, and its nearest-neighbour statistic on hand-made features."""
import os
import os.path as osp

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402


def _tool():
    return load_tool('tools/analysis/cc_feature_probe.py')


def test_nearest_neighbour_rate_and_chance_by_hand():
    tool = _tool()
    pid = torch.tensor([0, 0, 1, 1])
    cam = torch.tensor([1, 2, 1, 2])
    clothes = torch.tensor([0, 1, 2, 2])
    # identity features: the other-camera nearest neighbour is the same
    # person; one other-camera candidate in two is (chance 1/2)
    feats = torch.eye(2)[pid]
    out = tool.nn_same_pid(feats, pid, cam)
    assert out == dict(rate=1.0, chance=0.5)
    # other clothes too: person 1 wears one outfit, so only person 0's
    # images have a cloth-changing match and count (as valid queries)
    out = tool.nn_same_pid(feats, pid, cam, clothes)
    assert out == dict(rate=1.0, chance=0.5)
    with pytest.raises(ValueError, match='no image has a same-person'):
        tool.nn_same_pid(feats, pid, cam, torch.zeros(4, dtype=torch.long))
    # features that only see the camera: the candidates tie and the first
    # wins, as good as chance
    out = tool.nn_same_pid(torch.eye(2)[cam - 1], pid, cam)
    assert out['rate'] == 0.5  # argmax ties go to the first candidate


def test_probe_reports_every_number(tiny_cc_setup, tmp_path):
    config, ckpt = tiny_cc_setup
    out = _tool().main([
        config, ckpt, '--max-images', '20', '--json',
        str(tmp_path / 'p.json')
    ])
    assert out['num_images'] == 20
    for key in ('mean_cos_between_images', 'centred_cos_background',
                'centred_cos_shielded', 'prompt_cos_identity',
                'prompt_cos_clothes'):
        assert -1.0 <= out[key] <= 1.0 + 1e-6, key
    for key in ('cross_camera_nn', 'cloth_changing_nn',
                'background_only_cross_camera_nn'):
        assert 0.0 <= out[f'{key}_same_pid'] <= 1.0
        assert 0.0 < out[f'{key}_chance'] < 1.0
    assert osp.isfile(tmp_path / 'p.json')


def test_missing_mask_is_named(tiny_cc_setup, tmp_path):
    config, ckpt = tiny_cc_setup
    tool = _tool()
    from mmengine.config import Config
    root = Config.fromfile(config).test_dataloader.dataset.data_root
    masks = sorted(os.listdir(osp.join(root, 'query-mask')))
    gone = osp.join(root, 'query-mask', masks[0])
    os.rename(gone, gone + '.bak')
    try:
        with pytest.raises(FileNotFoundError, match=masks[0]):
            tool.load_views(root, 'query', 0, 'lip')
    finally:
        os.rename(gone + '.bak', gone)
