"""Development tooling (benchmarks, seed runner, model-zoo generator) lives
in ``.dev_scripts/`` with its one shared helper module ``bench_common.py``
(``bench_reid_peers.py`` holds the ReID peers of ``benchmark.py`` only)
and its raw results in ``.dev_scripts/results/``, as mmpretrain keeps them;
user-facing tools stay in ``tools/``."""
import glob
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEV = ('benchmark.py', 'bench_common.py', 'bench_cuda.py', 'bench_models.py',
       'bench_rank_backends.py', 'bench_reid_peers.py', 'bench_search.py',
       'run_seeds.py', 'gen_model_zoo.py', 'bench_flops.py',
       'bench_pipeline_real.py', 'gpu_session.py', 'gpu_session.sh',
       'gpu_wheels.py')
USER = ('browse_dataset.py', 'vis_scheduler.py', 'get_flops.py',
        'plot_logs.py', 'visualize_retrieval.py', 'cc_feature_probe.py',
        'synth_cc_probe.py', 'synth_pedes_probe.py')


def test_dev_scripts_in_one_place():
    for name in DEV:
        assert osp.isfile(osp.join(ROOT, '.dev_scripts', name)), name
    assert not glob.glob(osp.join(ROOT, 'tools', '**', 'bench*.py'),
                         recursive=True)
    assert not glob.glob(osp.join(ROOT, 'tools', '**', 'run_seeds.py'),
                         recursive=True)
    assert not osp.exists(osp.join(ROOT, 'tools', 'model_zoo'))


def test_user_tools_stay_in_tools():
    for name in USER:
        assert osp.isfile(osp.join(ROOT, 'tools', 'analysis', name)), name


def test_raw_results_are_not_under_docs():
    assert not glob.glob(osp.join(ROOT, 'docs', '**', '*.json'),
                         recursive=True)
    assert glob.glob(osp.join(ROOT, '.dev_scripts', 'results', '*.json'))
