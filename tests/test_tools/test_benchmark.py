"""Smoke test of tools/analysis/benchmark.py (``--quick``, under 90 s)."""
import json
import math
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools/analysis/benchmark.py')
METRIC_KEYS = ('R@1', 'R@5', 'R@10', 'mAP', 'mINP')
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    """The JSON report of one quick run (shared by the tests below)."""
    out = tmp_path_factory.mktemp('bench') / 'bench.json'
    proc = subprocess.run(
        [sys.executable, SCRIPT, '--quick', '--json',
         str(out)],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'machine:' in proc.stdout and '| shape |' in proc.stdout
    with open(out) as f:
        return json.load(f)


def test_shapes_and_machine(report):
    assert report['quick'] is True and report['repeats'] == 1
    assert report['machine']['cores'] >= 1
    assert report['machine']['torch_threads'] >= 1
    rows = report['sections']['metric']['rows']
    shapes = {(r['name'], r['num_query'], r['num_gallery']) for r in rows}
    assert ('RSTPReid', 2000, 1000) in shapes
    assert ('toy', 500, 800) in shapes
    for row in rows:
        assert set(row['results']) == {'ours', 'peer', 'sort_bound'}
        for res in row['results'].values():
            assert res['time_s'] > 0 and len(res['times']) == 1
            assert res['peak_mib'] >= 0


def test_implementations_agree(report):
    assert report['sections']['metric']['mismatches'] == []
    for row in report['sections']['metric']['rows']:
        ours = row['results']['ours']['metrics']
        peer = row['results']['peer']['metrics']
        for key in METRIC_KEYS:
            assert ours[key] == pytest.approx(peer[key], abs=1e-4), key
        assert row['agree'] is True
        # the synthetic features give non-trivial, non-saturated metrics
        assert 0 < ours['mAP'] < 100


def test_ratios_positive(report):
    for row in report['sections']['metric']['rows']:
        ratios = row['ratios']
        for key in ('peer_over_ours_time', 'peer_over_ours_memory',
                    'ours_over_sort_time'):
            value = ratios[key]
            assert isinstance(value, float) and math.isfinite(value)
            assert value > 0, key


def test_features_deterministic_and_exact():
    """Same seed, same features; quantised entries make scores exact."""
    sys.path.insert(0, osp.dirname(SCRIPT))
    try:
        import benchmark
    finally:
        sys.path.pop(0)
    a = benchmark.make_features(50, 80, 10)
    b = benchmark.make_features(50, 80, 10)
    for key in ('qf', 'gf', 'qp', 'gp'):
        assert (a[key] == b[key]).all()
    # every entry is a multiple of 2**-7, so every dot product is exact
    assert ((a['gf'] * 128).round() == a['gf'] * 128).all()
    scores = a['qf'] @ a['gf'].t()
    exact = a['qf'].double() @ a['gf'].double().t()
    assert (scores.double() == exact).all()
    # duplicated gallery rows create exact ties
    assert a['gf'].unique(dim=0).size(0) < a['gf'].size(0)
