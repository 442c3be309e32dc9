"""visualize_retrieval.py on an image-ReID test set (a tiny SynthCC in the
LTCC layout, the CCAF tiny config with micro towers and random weights)."""
import json
import os.path as osp
import re

import pytest
from PIL import Image

from mmreid_clip.visualization import (MATCH_COLOR, MISMATCH_COLOR,
                                       QUERY_COLOR, RankedListLayout)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402


def _tool():
    return load_tool('tools/analysis/visualize_retrieval.py')


def labels_of(path):
    """LTCC names: ``<pid>_<clothes>_c<cam>_<frame>.png``."""
    m = re.match(r'(\d+)_(\d+)_c(\d+)_\d+\.png$', osp.basename(path))
    assert m, path
    return tuple(int(v) for v in m.groups())


@pytest.mark.parametrize('setting', ['general', 'cc'])
def test_reid_ranked_lists_drop_junk_and_outline_matches(
        tiny_cc_setup, tmp_path, setting):
    config, ckpt = tiny_cc_setup
    out_dir = str(tmp_path / setting)
    run = _tool().main([
        config, ckpt, '--setting', setting, '--queries', '0', '1', '--topk',
        '6', '--out-dir', out_dir
    ])
    assert run['setting'] == setting
    assert [osp.basename(f) for f in run['files']] == [
        'query_00000.png', 'query_00001.png'
    ]
    layout = RankedListLayout()
    for entry, png_path in zip(run['summary'], run['files']):
        pid, clothes, cam = labels_of(entry['query_path'])
        assert entry['pid'] == pid
        assert 1 <= len(entry['topk_paths']) <= 6
        assert entry['topk_scores'] == sorted(entry['topk_scores'],
                                              reverse=True)
        for path, match in zip(entry['topk_paths'], entry['topk_matches']):
            g_pid, g_clothes, g_cam = labels_of(path)
            assert match == (g_pid == pid)
            assert 'query' not in path  # the gallery side only
            if g_pid == pid:  # junk never shows up
                assert g_cam != cam
                if setting == 'cc':
                    assert g_clothes != clothes
        # rows as the renderer lays them out: the query image, then tiles
        with Image.open(png_path) as png:
            png = png.convert('RGB')
            geo = layout.geometry(
                len(entry['topk_paths']), True, _caption(entry, setting))
            assert png.size == geo.size
            x0, y0, x1, _ = geo.query_box
            assert png.getpixel(((x0 + x1) // 2, y0 + 2)) == QUERY_COLOR
            for (x0, y0, x1, y1), match in zip(geo.tile_boxes,
                                               entry['topk_matches']):
                color = MATCH_COLOR if match else MISMATCH_COLOR
                assert png.getpixel(((x0 + x1) // 2, y0 + 2)) == color
    summary = json.load(open(osp.join(out_dir, 'summary.json')))
    assert [e['query'] for e in summary] == [0, 1]


def _caption(entry, setting):
    pid, clothes, cam = labels_of(entry['query_path'])
    mode = 'general' if setting == 'general' else 'cloth-changing'
    return (f'{setting} query {entry["query"]} (id {pid}, cam {cam}, clothes '
            f'{clothes}, {mode}; AP {100 * entry["ap"]:.1f}%)')


def test_unknown_setting_is_named(tiny_cc_setup, tmp_path):
    config, ckpt = tiny_cc_setup
    with pytest.raises(ValueError, match=r"'sc' is not a setting.*general"):
        _tool().main([
            config, ckpt, '--setting', 'sc', '--out-dir',
            str(tmp_path / 'x')
        ])
