""".dev_scripts/bench_common.py: the machine record and the synthetic
features every benchmark script shares."""
from helpers.tool_loader import load_tool

bench_common = load_tool('.dev_scripts/bench_common.py')


def test_features_deterministic_and_exact():
    """Same seed, same features; quantised entries make scores exact."""
    a = bench_common.make_features(50, 80, 10)
    b = bench_common.make_features(50, 80, 10)
    for key in ('qf', 'gf', 'qp', 'gp'):
        assert (a[key] == b[key]).all()
    assert a['qf'].shape == (50, 512) and a['gf'].shape == (80, 512)
    # every entry is a multiple of 2**-7, so every dot product is exact
    assert ((a['gf'] * 128).round() == a['gf'] * 128).all()
    scores = a['qf'] @ a['gf'].t()
    exact = a['qf'].double() @ a['gf'].double().t()
    assert (scores.double() == exact).all()
    # duplicated gallery rows create exact ties
    assert a['gf'].unique(dim=0).size(0) < a['gf'].size(0)
    # every query identity has a gallery image
    assert set(a['qp'].tolist()) <= set(a['gp'].tolist())


def test_features_without_ties():
    """``exact=False`` (the search benchmark): unit rows as drawn, no
    copies, any width."""
    d = bench_common.make_features(20, 300, 30, dim=64, noise=0.8,
                                   exact=False)
    assert d['gf'].shape == (300, 64)
    assert d['gf'].unique(dim=0).size(0) == 300
    assert d['gf'].norm(dim=1).sub(1).abs().max() < 1e-5
    assert not ((d['gf'] * 128).round() == d['gf'] * 128).all()


def test_machine_info():
    host = bench_common.machine_info()
    for key in ('cpu', 'cores', 'torch', 'torch_threads', 'cuda',
                'available_ram_gb', 'load_avg', 'python', 'date'):
        assert key in host, key
    assert host['cores'] >= 1 and host['torch_threads'] >= 1
    assert 'device' not in host
    cpu = bench_common.machine_info('cpu')
    assert cpu['device'] == 'cpu' and cpu['gpu'] is None
    assert 'cuda_version' not in cpu
