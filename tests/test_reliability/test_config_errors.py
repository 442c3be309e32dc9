"""Config mistakes: misspelt keys, unknown types and unknown arguments are
reported with the names that were probably meant."""
import glob
import os
import os.path as osp
import runpy
import sys

import pytest
from mmengine.config import Config

from mmreid_clip.registry import HOOKS, MODELS
from mmreid_clip.utils import (ConfigKeyError, UnknownArgumentError,
                               UnknownTypeError, check_config_keys,
                               explain_build_errors)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'configs/baselines/clip-baseline_synthpedes-tiny.py')


def config(**kwargs):
    base = dict(
        model=dict(type='X'),
        work_dir='w',
        data_root='data/x',  # a helper variable, like the configs have
        train_pipeline=[],
        randomness=dict(seed=0),
        env_cfg=dict(cudnn_benchmark=False),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook')),
        train_dataloader=dict(batch_size=2, num_workers=0, dataset={}))
    base.update(kwargs)
    return Config(base)


def test_valid_config_passes():
    check_config_keys(config())


@pytest.mark.parametrize('extra, expected', [
    (dict(resmue=True), "'resmue' is not read by the Runner. Did you mean "
     "'resume'?"),
    (dict(load_form='a.pth'), "Did you mean 'load_from'?"),
    (dict(train_dataloder={}), "Did you mean 'train_dataloader'?"),
    (dict(randomness=dict(seed=0, deterministc=True)),
     "randomness.deterministc is not a randomness key.*Did you mean "
     "'deterministic'?"),
    (dict(env_cfg=dict(cudnn_benchmak=True)),
     "Did you mean 'cudnn_benchmark'?"),
    (dict(auto_scale_lr=dict(enabel=True, base_batch_size=64)),
     "Did you mean 'enable'?"),
    (dict(train_dataloader=dict(batch_szie=2, dataset={})),
     "train_dataloader.batch_szie is not a DataLoader argument. Did you "
     "mean 'batch_size'?"),
    (dict(default_hooks=dict(chekpoint=dict(interval=2))),
     "default_hooks.chekpoint is not a default hook and has no \"type\".*"
     "Did you mean 'checkpoint'?"),
])
def test_typos_are_reported_with_close_matches(extra, expected):
    with pytest.raises(ConfigKeyError, match=expected):
        check_config_keys(config(**extra))


def test_all_problems_in_one_message_and_extra_hooks_allowed():
    cfg = config(
        resmue=True,
        randomness=dict(sed=1),
        default_hooks=dict(checkpoint2=dict(type='CheckpointHook')))
    with pytest.raises(ConfigKeyError) as err:
        check_config_keys(cfg)
    lines = str(err.value).splitlines()
    assert len(lines) == 3  # header + 2 problems; the typed hook is fine
    assert "'resmue'" in lines[1] and 'randomness.sed' in lines[2]


def test_repository_configs_have_no_suspicious_keys():
    files = [
        f
        for f in glob.glob(osp.join(ROOT, 'configs/**/*.py'), recursive=True)
        if '_base_' not in f
    ]
    assert len(files) >= 5
    for path in files:
        check_config_keys(Config.fromfile(path))


# ----------------------------------------------------------------------
# unknown types and arguments


@pytest.mark.parametrize(
    'registry, cfg, expected',
    [
        (MODELS, dict(type='InfoNCELos'),
         "Unknown type 'InfoNCELos': it is not "
         "in the mmreid_clip::model registry.*Did you mean 'InfoNCELoss'"),
        # a name of a parent registry (mmengine's hooks)
        (HOOKS, dict(type='CheckpointHok'), "Did you mean 'CheckpointHook'"),
        # nested: the retriever builds its losses
        (MODELS,
         dict(
             type='CLIPTextImageReID',
             image_encoder=dict(type='OpenCLIPVisionTransformr'),
             text_encoder=dict(type='OpenCLIPTextTransformer')),
         "Did you mean 'OpenCLIPVisionTransformer'"),
    ])
def test_unknown_type_names_close_matches(registry, cfg, expected):
    with pytest.raises(UnknownTypeError, match=expected) as err:
        with explain_build_errors():
            registry.build(cfg)
    assert isinstance(err.value, KeyError)  # still a KeyError for callers
    assert 'not in the' in str(err.value.__cause__)


def test_unknown_argument_names_close_matches():
    with pytest.raises(UnknownArgumentError) as err:
        with explain_build_errors():
            MODELS.build(dict(type='InfoNCELoss', init_temprature=0.07))
    msg = str(err.value)
    assert "InfoNCELoss got the unknown argument 'init_temprature'" in msg
    assert "Did you mean 'init_temperature'?" in msg
    assert 'It accepts: ' in msg


def test_other_errors_pass_unchanged():
    with pytest.raises(KeyError, match='^.unrelated.$'):
        with explain_build_errors():
            raise KeyError('unrelated')
    with pytest.raises(TypeError, match='unsupported operand'):
        with explain_build_errors():
            1 + 'x'


# ----------------------------------------------------------------------
# through tools/train.py


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    from mmreid_synth import generate_synth_pedes
    root = str(tmp_path_factory.mktemp('synth') / 'synth-pedes')
    generate_synth_pedes(
        root, seed=3, train_ids=2, val_ids=1, test_ids=1, images_per_id=1)
    return root


def train_cli(monkeypatch, tmp_path, root, *options):
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setattr(sys, 'argv', [
        'train.py', TINY, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options',
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'experiment_name=cli_{tmp_path.name}', *options
    ])
    runpy.run_path(osp.join(ROOT, 'tools/train.py'), run_name='__main__')


def test_train_tool_rejects_a_key_typo_before_building(monkeypatch, tmp_path,
                                                       tiny_data):
    with pytest.raises(ConfigKeyError, match="Did you mean 'resume'"):
        train_cli(monkeypatch, tmp_path, tiny_data, 'resmue=True')
    assert not osp.exists(tmp_path / 'work')  # nothing was started


def test_train_tool_explains_unknown_type_and_argument(monkeypatch, tmp_path,
                                                       tiny_data):
    with pytest.raises(UnknownTypeError, match="Did you mean 'InfoNCELoss'"):
        train_cli(monkeypatch, tmp_path, tiny_data,
                  'model.losses.0.type=InfoNCELos')
    with pytest.raises(
            UnknownArgumentError,
            match="'max_epoch'.*Did you mean 'max_epochs'"):
        train_cli(monkeypatch, tmp_path, tiny_data, 'train_cfg.max_epoch=1',
                  'model.id_head.num_classes=2')
    assert os.listdir(tmp_path / 'work')  # the runner was built this time
