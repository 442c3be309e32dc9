"""setup_runtime: the determinism switch for GPUs, the key check and the
dataloader options fixed for the machine."""
import os

import pytest
from mmengine.config import Config

from mmreid_clip.utils import (ConfigKeyError, finish_distributed,
                               setup_runtime)


@pytest.mark.parametrize('deterministic', [True, False])
def test_deterministic_runs_get_the_cublas_workspace(monkeypatch,
                                                     deterministic):
    monkeypatch.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
    setup_runtime(
        Config(dict(randomness=dict(seed=0, deterministic=deterministic))))
    if deterministic:
        assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == ':4096:8'
    else:
        assert 'CUBLAS_WORKSPACE_CONFIG' not in os.environ


def test_a_user_setting_is_kept(monkeypatch):
    monkeypatch.setenv('CUBLAS_WORKSPACE_CONFIG', ':16:8')
    setup_runtime(Config(dict(randomness=dict(seed=0, deterministic=True))))
    assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == ':16:8'


def test_key_typos_stop_the_set_up():
    with pytest.raises(ConfigKeyError, match="Did you mean 'randomness'"):
        setup_runtime(Config(dict(randomnes=dict(seed=0))))


@pytest.mark.parametrize('accelerator', [False, True])
def test_pin_memory_only_with_an_accelerator(monkeypatch, accelerator):
    """Pinning feeds an accelerator; without one torch warns per loader."""
    import mmreid_clip.utils.setup_env as setup_env
    monkeypatch.setattr(setup_env, '_has_accelerator', lambda: accelerator)
    loader = dict(batch_size=2, num_workers=2, pin_memory=True)
    cfg = setup_runtime(
        Config(
            dict(
                train_dataloader=dict(loader),
                stage1_dataloader=dict(loader),
                test_dataloader=dict(loader, pin_memory=False))),
        loaders=())
    for key in ('train_dataloader', 'stage1_dataloader'):
        assert cfg[key]['pin_memory'] is accelerator
    assert cfg.test_dataloader.pin_memory is False
    assert cfg.train_dataloader.batch_size == 2


def test_persistent_workers_only_with_workers_on_every_loader():
    """torch's DataLoader raises on persistent workers without workers: the
    rule covers every ``*_dataloader`` (CLIP-ReID's stage1 one too)."""
    from mmreid_clip.utils import fit_loader_options
    cfg = setup_runtime(
        Config(
            dict(
                stage1_dataloader=dict(num_workers=0,
                                       persistent_workers=True),
                train_dataloader=dict(num_workers=2,
                                      persistent_workers=True))),
        loaders=())
    assert cfg.stage1_dataloader.persistent_workers is False
    assert cfg.train_dataloader.persistent_workers is True
    loader = dict(persistent_workers=True)  # num_workers defaults to 0
    assert fit_loader_options(loader) is loader
    assert loader == dict(persistent_workers=False)


def test_finish_distributed_tears_the_group_down(tmp_path):
    """tools/train.py and tools/test.py end a distributed run by a barrier
    and an explicit teardown, not the interpreter's shutdown (where a gloo
    rank sometimes aborted after a successful run); outside distributed
    runs it does nothing."""
    import torch.distributed as dist
    finish_distributed()
    assert not dist.is_initialized()
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
        world_size=1)
    try:
        finish_distributed()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
