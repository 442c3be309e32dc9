"""Small traps of the tools, each fixed: Enter in the web demo, repeated
--query-image, dist_train.sh's Python, the --all-runs hint, file names
and scores under the tiles, the pretrain config in the demos."""
import json
import os
import os.path as osp
import shutil
import stat
import subprocess

from mmengine.config import Config

from mmreid_clip.visualization import TextRenderer, fit_middle, score_decimals

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tiny_search_setup import save_random_checkpoint  # noqa: E402
from helpers.tool_loader import load_tool  # noqa: E402

PRETRAIN = osp.join(ROOT, 'configs/baselines/clip-pretrain_synthpedes-tiny.py')


def test_enter_submits_the_web_query():
    tool = load_tool('tools/demo/search_app.py')  # gradio not needed
    # a one-line textbox: Enter submits (a multi-line one adds a newline)
    assert tool.QUERY_BOX['lines'] == 1 and tool.QUERY_BOX['max_lines'] == 1
    assert 'Enter' in tool.QUERY_BOX['label']


def test_query_image_flag_repeats(tmp_path):
    tool = load_tool('tools/demo/image_search.py')
    a, b, c = (tmp_path / f'{n}.jpg' for n in 'abc')
    for p in (a, b, c):
        p.write_bytes(b'x')
    args = tool.parse_args([
        'cfg.py', 'ckpt.pth', '--gallery',
        str(tmp_path), '--query-image',
        str(a), '--query-image',
        str(b),
        str(c)
    ])
    assert args.query_image == [str(a), str(b), str(c)]


def _stub(path, tag):
    path.write_text(f'#!/bin/sh\necho "{tag} $@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_dist_train_uses_the_project_venv(tmp_path):
    tools = tmp_path / 'tools'
    tools.mkdir()
    shutil.copy(osp.join(ROOT, 'tools/dist_train.sh'), tools)
    (tmp_path / '.venv' / 'bin').mkdir(parents=True)
    _stub(tmp_path / '.venv' / 'bin' / 'python', 'VENV')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    out = subprocess.run(['bash', str(tools / 'dist_train.sh'), 'c.py', '2'],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('VENV -m torch.distributed.run')
    assert '--nproc_per_node=2' in out.stdout
    assert '.venv/bin/python' in out.stderr  # says which Python it runs
    _stub(tmp_path / 'mine', 'MINE')
    out = subprocess.run(['bash', str(tools / 'dist_train.sh'), 'c.py', '1'],
                         env=dict(env, PYTHON=str(tmp_path / 'mine')),
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith('MINE -m torch.distributed.run')


def test_plot_logs_hints_at_all_runs(tmp_path, capsys):
    tool = load_tool('tools/analysis/plot_logs.py')
    for i, stamp in enumerate(('20260101_000000', '20260102_000000')):
        vis = tmp_path / stamp / 'vis_data'
        vis.mkdir(parents=True)
        (vis / f'{stamp}.json').write_text(
            json.dumps(dict(loss=1.0 + i, epoch=i + 1, iter=i + 1,
                            step=i + 1)) + '\n')
    tool.find_logs(str(tmp_path))
    err = capsys.readouterr().err
    assert 'holds 2 runs' in err and '--all-runs' in err
    tool.find_logs(str(tmp_path), all_runs=True)
    tool.find_logs(str(tmp_path / '20260101_000000'))
    assert capsys.readouterr().err == ''


def test_scores_and_file_names_under_the_tiles():
    # BN-necked ReID features: cosines that all round to 1.000
    assert score_decimals([0.99991, 0.99987, 0.99984]) == 5
    assert score_decimals([0.91, 0.52, 0.33]) == 3
    assert score_decimals([1.0, 1.0]) == 3
    font = TextRenderer(12)
    name = '001_1_c11_015861.png'
    short = fit_middle(name, font, font.width(name) * 2 // 3)
    # cut in the middle: the identity (start) and the suffix stay
    assert short.startswith('001_1') and short.endswith('.png')
    assert '...' in short and font.width(short) <= font.width(name) * 2 // 3
    assert fit_middle(name, font, 1000) == name


def test_pretrain_config_works_in_the_demos(tmp_path):
    from mmreid_synth import generate_synth_pedes

    from mmreid_clip.apis.inference import eval_dataset_cfg
    cfg = Config.fromfile(PRETRAIN)
    assert cfg.test_dataloader is None  # it trains without evaluation
    ds = eval_dataset_cfg(cfg)
    assert ds.pipeline and ds.text_pipeline
    root = str(tmp_path / 'synth')
    generate_synth_pedes(
        root, seed=5, train_ids=0, val_ids=0, test_ids=2, images_per_id=2)
    ckpt = save_random_checkpoint(PRETRAIN, str(tmp_path / 'p.pth'), 0)
    tool = load_tool('tools/demo/text_search.py')
    result = tool.main([
        PRETRAIN, ckpt, '--gallery',
        osp.join(root, 'imgs'), '--query', 'a man in a red coat', '--topk',
        '2', '--out',
        str(tmp_path / 'g.png')
    ])
    assert len(result['results'][0].paths) == 2
