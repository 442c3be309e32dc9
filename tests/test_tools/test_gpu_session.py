""".dev_scripts/gpu_session.py, bench_flops.py and bench_pipeline_real.py:
the peak table and FLOP arithmetic, and the quick (CPU, clip-tiny) code
paths. No timing is asserted: rates on this machine are benchmark figures,
not test results."""
import json
import math
import os.path as osp
from fractions import Fraction

import pytest
from helpers.tool_loader import load_tool

gpu_session = load_tool('.dev_scripts/gpu_session.py')
bench_flops = load_tool('.dev_scripts/bench_flops.py')


@pytest.mark.parametrize('gpu,amp,peak', [
    ('NVIDIA H100 80GB HBM3', 'bfloat16', 989.4),
    ('NVIDIA H100 80GB HBM3', None, 494.7),
    ('NVIDIA H200', 'float16', 989.4),
    ('NVIDIA A100-SXM4-80GB', 'bfloat16', 312.0),
    ('NVIDIA A100 80GB PCIe', None, 156.0),
    ('NVIDIA H100 PCIe', 'bfloat16', None),
    ('Tesla T4', 'float16', None),
    (None, 'bfloat16', None),
])
def test_peak_table(gpu, amp, peak):
    value, note = bench_flops.peak_tflops(gpu, amp)
    assert value == peak
    assert ('MFU omitted' in note) == (peak is None)


def test_quadratic_fit_is_exact_and_detects_higher_degree():
    poly = [(x, 7 + 3 * x + 5 * x * x) for x in (2, 3, 4)]
    assert bench_flops._quadratic(poly) == (7, 3, 5)
    a, b, c = bench_flops._quadratic([(x, x**3) for x in (2, 3, 4)])
    assert a + b * 5 + c * 25 != 125
    assert isinstance(a, Fraction)


def test_flop_columns():
    cols = gpu_session.bench_cuda.flop_columns('m', 4e12, 32, 0.5, 100.0)
    assert cols['m_gflop_per_sample'] == pytest.approx(125.0)
    assert cols['m_tflops'] == pytest.approx(8.0)
    assert cols['m_mfu'] == pytest.approx(0.08)
    assert gpu_session.bench_cuda.flop_columns('m', 4e12, 32, 0.5,
                                               None)['m_mfu'] is None
    assert set(
        gpu_session.bench_cuda.flop_columns('m', None, 32, 0.5,
                                            100.0).values()) == {None}


@pytest.mark.slow
def test_step_flops_are_quadratic_in_the_batch():
    # the premise of extrapolating counts: a fourth batch size is predicted
    # exactly (CCAF: the clothes examiner adds a batch-independent term)
    rows = {r['name']: r for r in bench_flops.run(quick=True)['rows']}
    assert set(rows) == {'CFine', 'CCAF stage 2'}
    for r in rows.values():
        assert r['fit_exact'], r
    assert rows['CCAF stage 2']['coeffs']['constant'] > 0


@pytest.mark.slow
def test_quick_session_one_unit(tmp_path):
    unit = 'CLIP-ReID stage 2'
    assert gpu_session.main(
        ['--quick', '--out',
         str(tmp_path), '--units', unit]) == 0
    with open(tmp_path / 'gpu_session.json') as f:
        report = json.load(f)
    assert osp.isfile(tmp_path / 'gpu_session.md')
    assert report['skipped'] == []  # no unit failed or ran out of budget
    rows = {r['phase']: r for r in report['rows']}
    assert set(rows) == {'eager', 'max_batch', 'compile'}
    # the loss checks ran; on the CPU both sides are the same computation
    checks = {c['check']: c for c in report['loss_checks']}
    assert set(checks) == {'gpu_vs_cpu', 'compiled_vs_eager'}
    assert checks['gpu_vs_cpu']['batch'] == gpu_session.FIDELITY_BATCH
    for c in checks.values():
        assert c['ok'] and c['max_rel_diff'] <= 1e-6, c
        assert c['losses'].keys() == c['reference'].keys() >= {
            'loss_id', 'loss_tri', 'loss_i2t'}
    assert '| gpu_vs_cpu | 8 |' in (tmp_path / 'gpu_session.md').read_text()
    assert rows['eager']['batch'] == 16 and rows['compile']['batch'] == 16
    # batch 16 doubles to the quick cap of 32, no further
    assert rows['max_batch']['batch'] == 32
    assert rows['max_batch']['search_stopped'] == 'cap 32'
    assert rows['compile']['compiled'] == ['image_encoder', 'text_encoder']
    for row in rows.values():
        assert row['samples_per_s'] == pytest.approx(row['batch'] /
                                                     row['step_s'])
        assert row['peak_gib'] is None and row['mfu'] is None  # CPU
    # the fit from batches 8, 12, 16 gives the count of batch 32 exactly
    bc = gpu_session.bench_cuda
    side = bc.prepare(rows['eager']['config'], 'cpu', None, 32)
    counted = bench_flops.count_step_flops(side['model'], side['data'],
                                           side['optim'])
    assert rows['max_batch']['gflop_per_sample'] * 32 * 1e9 == pytest.approx(
        counted, rel=1e-12)


def test_loss_check_helpers():
    assert gpu_session.max_rel_diff({'a': 1.001, 'b': 2.0},
                                    {'a': 1.0, 'b': 2.0}) == pytest.approx(
                                        1e-3)
    with pytest.raises(KeyError, match='different losses'):
        gpu_session.max_rel_diff({'a': 1.0}, {'b': 1.0})
    import torch
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.1),
                              torch.nn.Dropout(0.5), torch.nn.Dropout(0.0))
    assert gpu_session.disable_dropout(net) == 2
    net.train()
    x = torch.ones(2, 4)
    assert torch.equal(net(x), net(x))  # no random mask left


@pytest.mark.slow
def test_quick_real_pipelines():
    real = load_tool('.dev_scripts/bench_pipeline_real.py')
    r = real.bench_pipelines(quick=True)
    rows = {row['name']: row for row in r['rows']}
    assert set(rows) == {'cfine', 'ccaf', 'clip_reid'}
    assert 'TokenizeCaption' in rows['cfine']['stages']
    assert 'LoadParsingMask' in rows['ccaf']['stages']
    assert 'LoadParsingMask' not in rows['clip_reid']['stages']
    for row in rows.values():
        assert 0 < row['decode_share'] < 1
        assert row['decoders']['pillow (configs)']['identical']
    for need in r['workers_needed']:
        assert need['workers'] == math.ceil(
            need['rate'] / rows[need['pipeline']]['per_worker'])
    # the files are JPEGs of the source size, PRCC's masks PNGs beside them
    from PIL import Image
    root = real.realistic_prcc_root(1, real.SRC_SIZES['prcc'])
    ds = real.bm.build_train_loader(
        real.bm.load_config(real.PIPELINES[1][1]), root, 8, 0).dataset
    info = ds.get_data_info(0)
    img = Image.open(info['img_path'])
    assert img.format == 'JPEG'
    assert img.size[::-1] == real.SRC_SIZES['prcc']
    assert Image.open(info['mask_path']).size == img.size
