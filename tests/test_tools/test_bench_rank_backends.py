"""Smoke test of .dev_scripts/bench_rank_backends.py (``--quick``)."""
import json
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402

from mmreid_clip.evaluation.functional.rank_kernel import HAS_NUMBA  # noqa

pytestmark = pytest.mark.skipif(not HAS_NUMBA, reason='needs numba')


def test_quick_run_compares_identical_backends(tmp_path):
    tool = load_tool('.dev_scripts/bench_rank_backends.py')
    out = tmp_path / 'backends.json'
    assert tool.main(['--quick', '--repeats', '1', '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    (row, ) = report['rows']
    assert row['name'] == 'toy' and row['shape'] == [300, 500]
    assert row['numba_s'] > 0 and row['torch_s'] > 0
    assert row['torch_over_numba'] == pytest.approx(
        row['torch_s'] / row['numba_s'])
    assert report['machine']['cores'] >= 1
