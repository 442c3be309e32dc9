"""setup_runtime: the determinism switch for GPUs and the key check."""
import os

import pytest
from mmengine.config import Config

from mmreid_clip.utils import ConfigKeyError, setup_runtime


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
