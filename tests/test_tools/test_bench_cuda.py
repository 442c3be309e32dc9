""".dev_scripts/bench_cuda.py: the GPU throughput benchmark's code path,
run on the CPU with the clip-tiny configs (``--quick``), and its synthetic
batches."""
import json

import pytest
import torch
from helpers.tool_loader import load_tool

bench_cuda = load_tool('.dev_scripts/bench_cuda.py')

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp('bench_cuda') / 'cuda.json'
    assert bench_cuda.main(['--quick', '--device', 'cpu', '--json',
                            str(out)]) == 0
    with open(out) as f:
        return json.load(f)


def test_quick_report_rows(report):
    assert report['quick'] is True and report['amp'] is None
    assert report['machine']['device'] == 'cpu'
    rows = {r['name']: r for r in report['rows']}
    assert set(rows) == {'cfine', 'ccaf'}
    for r in rows.values():
        assert r['size'] == 'clip-tiny' and r['batch'] == 8
        assert r['method_samples_per_s'] > 0
        assert r['reference_samples_per_s'] > 0
        assert r['ratio'] == pytest.approx(
            r['method_step_s'] / r['reference_step_s'])
        # no GPU: no peak memory rather than a made-up one
        assert r['method_peak_gib'] is None
    # the methods are their baselines plus modules
    assert rows['cfine']['method_params_m'] > rows['cfine'][
        'reference_params_m']
    assert rows['ccaf']['method_params_m'] > rows['ccaf'][
        'reference_params_m']
    text = bench_cuda.format_report(report)
    assert '| clip-tiny | CCAF stage 2 | CLIP-ReID stage 2 | 8 |' in text


def test_unknown_pair_is_named():
    with pytest.raises(ValueError, match='nope'):
        bench_cuda.run(quick=True, device='cpu', pairs=['nope'])


def test_cloth_changing_batch_is_p_by_k_with_consistent_clothes():
    cfg = bench_cuda.bm.load_config(bench_cuda.PAIRS[1]['method'])
    data, meta = bench_cuda.cloth_changing_batch(cfg, 16, seed=3)
    samples = data['data_samples']
    assert data['inputs']['images'].shape == (16, 3, 256, 128)
    assert data['inputs']['images'].dtype == torch.uint8
    assert data['inputs']['shield_images'].shape == (16, 3, 256, 128)
    pids = [s.pid for s in samples]
    assert len(set(pids)) == 4 and all(pids.count(p) == 4 for p in pids)
    p2c = meta['pid2clothes']
    assert p2c.shape == (cfg.model.num_classes, cfg.model.num_clothes)
    assert p2c.sum(1).min() >= 1 and (p2c.sum(0) == 1).all()
    for s in samples:
        assert p2c[s.pid, s.clothes_id]
        assert int(s.gt_label) == s.pid and 1 <= s.camid <= 3
    with pytest.raises(ValueError, match='multiple of 4'):
        bench_cuda.cloth_changing_batch(cfg, 10)
