"""docs/add_a_plugin.md: its code is the example project, and it trains.

The example project (``tests/data/plugins/my_reid_project``) is an external
package registering a backbone, a neck, a loss and a dataset; its config
reaches them through ``custom_imports`` only.
"""
import glob
import importlib.util
import json
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
GUIDE = osp.join(ROOT, 'docs', 'add_a_plugin.md')
PROJECT = osp.join(ROOT, 'tests', 'data', 'plugins', 'my_reid_project')
CONFIG = osp.join(PROJECT, 'configs', 'my-reid_tiny_my-pedes.py')
BLOCK = re.compile(r'```(\w*)\n(.*?)```', re.S)
MARKER = re.compile(r'<!-- file: (\S+) -->\n`[^`]+`:\n\n$')


def _python_blocks():
    """(file named by the marker or None, code) of every python block."""
    text = open(GUIDE).read()
    blocks = []
    for match in BLOCK.finditer(text):
        if match.group(1) != 'python':
            continue
        marker = MARKER.search(text[:match.start()])
        blocks.append((marker.group(1) if marker else None, match.group(2)))
    return blocks


def test_every_python_block_is_a_file_of_the_example_project():
    blocks = _python_blocks()
    assert blocks
    for path, code in blocks:
        assert path is not None, f'python block without a file marker:\n{code}'
        with open(osp.join(ROOT, path)) as f:
            assert code == f.read(), (
                f'docs/add_a_plugin.md shows a different {path}: copy the '
                'file into the guide')
    shown = sorted(p for p, _ in blocks)
    files = sorted(
        osp.relpath(p, ROOT)
        for p in glob.glob(osp.join(PROJECT, '**', '*.py'), recursive=True))
    assert shown == files, 'each file of the example is shown exactly once'


def test_commands_of_the_guide_name_existing_tools():
    text = open(GUIDE).read()
    tools = set(re.findall(r'python (tools/\S+\.py)', text))
    assert tools >= {
        'tools/train.py', 'tools/test.py', 'tools/deploy/export_onnx.py'
    }
    for tool in tools:
        assert osp.isfile(osp.join(ROOT, tool)), tool


@pytest.fixture
def plugin_path(monkeypatch):
    """The project on sys.path, as PYTHONPATH puts it (guide, step 1)."""
    monkeypatch.syspath_prepend(PROJECT)
    return PROJECT


@pytest.fixture(scope='module')
def my_pedes(tmp_path_factory):
    """SynthPedes rewritten into MyPedes' layout: train and test only."""
    from mmreid_synth import generate_synth_pedes
    root = tmp_path_factory.mktemp('my_pedes') / 'my-pedes'
    generate_synth_pedes(
        str(root),
        seed=5,
        train_ids=4,
        val_ids=1,
        test_ids=2,
        images_per_id=2,
        img_size=(64, 32))
    entries = json.load(open(root / 'reid_raw.json'))
    converted = [
        dict(
            split=e['split'],
            captions=e['captions'],
            image=e['file_path'],
            id=e['id']) for e in entries if e['split'] != 'val'
    ]
    (root / 'captions.json').write_text(json.dumps(converted))
    return str(root)


def _load_config(data_root, work_dir):
    cfg = Config.fromfile(CONFIG)  # runs custom_imports
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    cfg.work_dir = work_dir
    return cfg


def test_the_example_config_trains_one_iteration(plugin_path, my_pedes,
                                                 tmp_path):
    cfg = _load_config(my_pedes, str(tmp_path / 'work'))
    # 4 identities x 2 images x 2 captions = 16 pairs = one batch
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    parts = {
        'image_encoder': 'TinyConvEncoder',
        'neck': 'MeanPoolNeck',
    }
    for attr, name in parts.items():
        module = getattr(model, attr)
        assert type(module).__name__ == name
        assert type(module).__module__.startswith('my_reid_plugin.')
    assert type(model.losses[0]).__module__ == 'my_reid_plugin.losses'
    dataset = runner.train_dataloader.dataset
    assert type(dataset).__module__ == 'my_reid_plugin.datasets'
    assert len(dataset) == 16
    before = model.neck.proj.weight.detach().clone()

    runner.train()
    assert runner.iter == 1
    loss = runner.message_hub.get_scalar('train/loss_level_nce').current()
    assert loss > 0 and torch.isfinite(torch.tensor(loss))
    assert not torch.equal(before, model.neck.proj.weight)
    # validation ran on MyPedes' test split: 8 captions x 4 images
    r1 = runner.message_hub.get_scalar('val/t2i/R@1').current()
    assert 0 <= r1 <= 100
    assert osp.isfile(osp.join(str(tmp_path / 'work'), 'epoch_1.pth'))


def test_a_missing_dataset_names_the_layout(plugin_path, tmp_path):
    from mmreid_clip.registry import DATASETS
    cfg = _load_config(str(tmp_path / 'nowhere'), str(tmp_path / 'work'))
    with pytest.raises(FileNotFoundError, match='my-pedes/captions.json'):
        DATASETS.build(cfg.train_dataloader.dataset)


@pytest.mark.slow
@pytest.mark.skipif(
    not all(
        importlib.util.find_spec(m)
        for m in ('onnx', 'onnxscript', 'onnxruntime')),
    reason='needs onnx, onnxscript and onnxruntime')
def test_the_example_model_exports_to_onnx(plugin_path, my_pedes, tmp_path):
    """The guide's export command: a plugin model needs no exporter code."""
    from mmreid_clip.deploy import export_from_config
    cfg = _load_config(my_pedes, str(tmp_path / 'work'))
    # the guide exports a trained checkpoint; here the untrained example
    # model, which the exporter refuses without random_weights=True
    results = export_from_config(
        cfg, out_dir=str(tmp_path / 'onnx'), img_size=(64, 32),
        random_weights=True)
    assert set(results) == {'image', 'text'}
    for result in results.values():
        assert result.max_abs_diff < 1e-4
        assert result.predict_check == 'passed'
        assert result.feature_dim == 96  # two levels of 48
    assert results['text'].input_shape == ['batch', 32]
