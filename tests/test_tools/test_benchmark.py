"""Smoke test of .dev_scripts/benchmark.py (``--quick``; section
``metric`` under 90 s, sections ``reid`` and ``rerank`` under ~30 s each
on an idle machine)."""
import json
import math
import os.path as osp
import subprocess
import sys

import pytest
from helpers.tool_loader import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, '.dev_scripts/benchmark.py')
METRIC_KEYS = ('R@1', 'R@5', 'R@10', 'mAP', 'mINP')
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    """The JSON report of one quick run (shared by the tests below)."""
    out = tmp_path_factory.mktemp('bench') / 'bench.json'
    proc = subprocess.run(
        [sys.executable, SCRIPT, '--quick', '--sections', 'metric', '--json',
         str(out)],
        capture_output=True,
        text=True,
        timeout=180,
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
    assert shapes == {('RSTPReid', 2000, 1000)}
    for row in rows:
        assert set(row['results']) == {
            'ours', 'peer', 'sort_bound', 'matmul', 'ours_scores',
            'peer_scores', 'sort_scores'
        }
        for res in row['results'].values():
            assert res['time_s'] > 0 and len(res['times']) == 1
            assert res['peak_mib'] >= 0
        # ours loads its compiled kernel before the clock starts, and the
        # one-time cost is reported
        for impl, res in row['results'].items():
            warm = res['warmup_s'][0]
            assert (warm > 0) if impl.startswith('ours') else warm is None


def test_implementations_agree(report):
    assert report['sections']['metric']['mismatches'] == []
    for row in report['sections']['metric']['rows']:
        ours = row['results']['ours']['metrics']
        for impl in ('peer', 'ours_scores', 'peer_scores'):
            other = row['results'][impl]['metrics']
            for key in METRIC_KEYS:
                assert ours[key] == pytest.approx(other[key], abs=1e-4), key
        assert row['agree'] is True
        # the synthetic features give non-trivial, non-saturated metrics
        assert 0 < ours['mAP'] < 100


def test_ratios_positive(report):
    for row in report['sections']['metric']['rows']:
        ratios = row['ratios']
        for key in ('peer_over_ours_time', 'peer_over_ours_memory',
                    'ours_over_sort_time', 'ours_over_matmul_time',
                    'peer_over_matmul_time', 'peer_over_ours_time_scores',
                    'ours_over_sort_time_scores'):
            value = ratios[key]
            assert isinstance(value, float) and math.isfinite(value)
            assert value > 0, key


@pytest.fixture(scope='module')
def reid_report(tmp_path_factory):
    """The JSON report of one quick run of section ``reid`` (~20 s on an
    idle 2-core machine; the timeout leaves room for a shared one)."""
    out = tmp_path_factory.mktemp('bench') / 'reid.json'
    proc = subprocess.run(
        [sys.executable, SCRIPT, '--quick', '--sections', 'reid', '--json',
         str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'section reid' in proc.stdout and '| shape | mode |' in proc.stdout
    with open(out) as f:
        return json.load(f)


def test_reid_section_rows_and_agreement(reid_report):
    assert set(reid_report['sections']) == {'reid'}
    section = reid_report['sections']['reid']
    assert section['mismatches'] == []
    rows = section['rows']
    assert [(r['name'], r['mode']) for r in rows] == [
        ('LTCC-toy', 'general'), ('LTCC-toy', 'cloth-changing')
    ]
    for row in rows:
        # CLIP-ReID's eval_func has the general rule only
        vectorised = ({'clipreid_scores', 'ccreid_scores'} if row['mode']
                      == 'general' else {'ccreid_scores'})
        assert set(row['results']) == {
            'ours', 'peer', 'sort_bound', 'matmul', 'ours_scores',
            'peer_scores', 'sort_scores'
        } | vectorised
        ours = row['results']['ours']['metrics']
        for impl in ('peer', 'ours_scores', 'peer_scores', *vectorised):
            other = row['results'][impl]['metrics']
            for key in METRIC_KEYS:
                assert ours[key] == pytest.approx(other[key], abs=2e-6), key
            assert other['num_valid'] == row['num_query']
        assert ours['num_valid'] == row['num_query']
        assert row['agree'] is True and 0 < ours['mAP'] < 100
        assert row['max_abs_diff'] <= 2e-6
        for peer in (v[:-len('_scores')] for v in vectorised):
            for kind in ('time', 'memory'):
                value = row['ratios'][f'{peer}_over_ours_{kind}_scores']
                assert math.isfinite(value) and value > 0
        for key in ('peer_over_ours_time', 'peer_over_ours_memory',
                    'ours_over_sort_time', 'ours_over_matmul_time',
                    'peer_over_matmul_time', 'peer_over_ours_time_scores',
                    'ours_over_sort_time_scores'):
            assert math.isfinite(row['ratios'][key])
            assert row['ratios'][key] > 0
    general, cc = (r['results']['ours']['metrics'] for r in rows)
    # changing clothes moves the synthetic features: CC is harder
    assert cc['mAP'] < general['mAP']


def test_reid_data_structure():
    """PRCC: query cameras differ from the gallery's, cam-B queries wear
    their gallery outfit and cam-C ones another; LTCC: 12 cameras and
    several outfits per identity; scores are exact."""
    benchmark = load_tool('.dev_scripts/benchmark.py')
    for kind, cam in (('prcc_sc', 1), ('prcc_cc', 2)):
        d = benchmark.make_reid_data(kind, 60, 200)
        assert (d['gc'] == 0).all() and (d['qc'] == cam).all()
        assert (d['go'] == 2 * d['gp']).all()
        assert (d['qo'] == 2 * d['qp'] + (cam - 1)).all()
        assert set(d['qp'].tolist()) <= set(d['gp'].tolist())
    d = benchmark.make_reid_data('ltcc', 100, 1500)
    assert set(d['gc'].tolist()) == set(range(12))
    outfits = {}
    for p, o in zip(d['gp'].tolist(), d['go'].tolist()):
        assert o // 8 == p  # clothes ids are unique per (pid, outfit)
        outfits.setdefault(p, set()).add(o)
    assert min(len(v) for v in outfits.values()) >= 2
    assert max(len(v) for v in outfits.values()) <= 5
    scores = d['qf'] @ d['gf'].t()
    assert (scores.double() == d['qf'].double() @ d['gf'].double().t()).all()
    again = benchmark.make_reid_data('ltcc', 100, 1500)
    assert all((d[k] == again[k]).all() for k in d)


@pytest.fixture(scope='module')
def rerank_report(tmp_path_factory):
    """One quick run of section ``rerank`` with one thread per worker."""
    out = tmp_path_factory.mktemp('bench') / 'rerank.json'
    proc = subprocess.run(
        [sys.executable, SCRIPT, '--quick', '--sections', 'rerank',
         '--threads', '1', '--json', str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '| shape | pool |' in proc.stdout
    with open(out) as f:
        return json.load(f)


def test_rerank_section_agrees_and_reports_ratios(rerank_report):
    assert rerank_report['threads'] == 1
    assert rerank_report['machine']['torch_threads'] == 1
    section = rerank_report['sections']['rerank']
    assert section['mismatches'] == []
    (row, ) = section['rows']
    assert (row['pool'], row['k1'], row['k2']) == (1650, 20, 6)
    # the released convention reproduces the dense released algorithm
    assert row['max_abs_diff'] == 0 and row['num_differ'] == 0
    assert row['agree'] is True
    ours, peer = row['results']['ours'], row['results']['peer']
    for key in METRIC_KEYS:
        assert ours['metrics'][key] == pytest.approx(
            peer['metrics'][key], abs=2e-6)
    for value in row['ratios'].values():
        assert math.isfinite(value) and value > 0
