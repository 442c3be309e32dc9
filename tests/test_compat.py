import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from mmreid_clip.compat import apply_patches
from mmreid_clip.safe_load import (UnsafeCheckpointError, safe_torch_load,
                                   trust_checkpoints)

_MARKER = []


def record(what):
    _MARKER.append(what)


class Boom:
    """Unpickling this runs code: the attack a weights-only load prevents."""

    def __reduce__(self):
        return (record, ('executed', ))


def _runner_like_checkpoint():
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    return dict(
        meta=dict(
            epoch=3,
            message_hub=dict(log_scalars=dict(loss=buf),
                             runtime_info=dict(seed=np.int64(7)),
                             resumed_keys=dict()),
            array=np.arange(3, dtype=np.float32)),
        state_dict={'w': torch.ones(2)},
        optimizer=dict(state={}, param_groups=[dict(lr=0.1, params=[0])]))


def test_runner_checkpoint_loads_weights_only(tmp_path, monkeypatch):
    path = str(tmp_path / 'ok.pth')
    torch.save(_runner_like_checkpoint(), path)
    # a fresh process has not registered the statistics methods yet
    monkeypatch.setattr(HistoryBuffer, '_statistics_methods', {})
    # plain torch refuses it (the mmengine 0.10.7 x torch >= 2.6 bug)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    ckpt = safe_torch_load(path, 'cpu')
    assert ckpt['meta']['epoch'] == 3
    assert ckpt['meta']['message_hub']['log_scalars']['loss'].mean() == 0.5
    np.testing.assert_array_equal(ckpt['meta']['array'], [0., 1., 2.])


def test_malicious_checkpoint_refused(tmp_path, monkeypatch):
    monkeypatch.delenv('MMREID_TRUST_CHECKPOINTS', raising=False)
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={'w': torch.ones(1)}, payload=Boom()), path)
    _MARKER.clear()
    apply_patches()
    with pytest.raises(UnsafeCheckpointError,
                       match=r'evil\.pth.*test_compat\.record'):
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert _MARKER == []  # nothing ran
    # an explicit opt-in loads it (and runs it: only for trusted files)
    with trust_checkpoints():
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert _MARKER == ['executed']
    assert 'MMREID_TRUST_CHECKPOINTS' not in os.environ


def test_missing_checkpoint_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        safe_torch_load(str(tmp_path / 'nope.pth'))


class SneakyGetattr:
    """getattr is allowed only for HistoryBuffer's statistics methods."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


def test_getattr_stand_in_is_restricted(tmp_path, monkeypatch):
    monkeypatch.delenv('MMREID_TRUST_CHECKPOINTS', raising=False)
    path = str(tmp_path / 'sneaky.pth')
    torch.save(dict(x=SneakyGetattr()), path)
    with pytest.raises(UnsafeCheckpointError, match='__init__'):
        safe_torch_load(path)


class WritesAFile:
    """A payload with a visible effect: it creates a file when unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f'touch {self.path}', ))


@pytest.mark.parametrize('zipfile', [True, False])
def test_malicious_checkpoint_refused_on_the_runner_path(
        tmp_path, monkeypatch, zipfile):
    """``_load_checkpoint`` is what Runner.load_checkpoint / resume call;
    the legacy (non-zip) format is refused too, naming the global."""
    from mmengine.runner.checkpoint import _load_checkpoint
    monkeypatch.delenv('MMREID_TRUST_CHECKPOINTS', raising=False)
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pth')
    torch.save(
        dict(state_dict={'w': torch.ones(1)}, meta=WritesAFile(marker)),
        path,
        _use_new_zipfile_serialization=zipfile)
    apply_patches()
    with pytest.raises(UnsafeCheckpointError, match=r'evil\.pth.*system'):
        _load_checkpoint(path, map_location='cpu')
    assert not marker.exists()


def test_random_state_in_checkpoints_loads_weights_only(tmp_path,
                                                        monkeypatch):
    """RandomStateHook adds the generators' state to every checkpoint; it
    must stay within what the safe loader accepts."""
    from mmreid_clip.engine.hooks import get_random_state, set_random_state
    monkeypatch.delenv('MMREID_TRUST_CHECKPOINTS', raising=False)
    ckpt = _runner_like_checkpoint()
    ckpt['random_state'] = get_random_state()
    path = str(tmp_path / 'rng.pth')
    torch.save(ckpt, path)
    expected = np.random.rand(3)
    loaded = safe_torch_load(path)['random_state']
    set_random_state(loaded)
    np.testing.assert_array_equal(np.random.rand(3), expected)


def _retrieval_scores(retrieval):
    pred = [[2, 0, 1, 3], [1, 3, 0, 2]]
    target = [[0], [2]]
    recalls = retrieval.RetrievalRecall.calculate(
        [list(p) for p in pred], target, topk=(1, 2, 4),
        pred_indices=True, target_indices=True)
    ap = retrieval.RetrievalAveragePrecision.calculate(
        [list(p) for p in pred], target, topk=4,
        pred_indices=True, target_indices=True)
    return [float(r) for r in recalls], float(ap)


def test_mmpretrain_retrieval_metrics_run_without_np_in1d(monkeypatch):
    # numpy 2.4 removed np.in1d, which mmpretrain 1.2.0's retrieval metrics
    # call; compat item 3 gives that module a namespace that has it.
    from mmpretrain.evaluation.metrics import retrieval

    from mmreid_clip.compat import _NumpyWithIn1d, patch_mmpretrain_in1d
    monkeypatch.setattr(retrieval, 'np', np)
    monkeypatch.delattr(np, 'in1d', raising=False)
    with pytest.raises(AttributeError, match='in1d'):
        _retrieval_scores(retrieval)

    assert patch_mmpretrain_in1d() is True
    assert isinstance(retrieval.np, _NumpyWithIn1d)
    recalls, ap = _retrieval_scores(retrieval)
    # query 0 finds its match at rank 2, query 1 at rank 4
    assert recalls == [0.0, 50.0, 100.0]
    assert ap == pytest.approx((1 / 2 + 1 / 4) / 2 * 100)
    # the shim flattens its first argument, as in1d did
    assert retrieval.np.in1d(np.array([[1, 5], [2, 7]]),
                             [2, 5]).tolist() == [False, True, True, False]
    assert patch_mmpretrain_in1d() is True  # idempotent
    assert np.isin is retrieval.np.isin  # every other name is numpy's


def test_in1d_patch_is_a_no_op_where_numpy_has_it(monkeypatch):
    from mmpretrain.evaluation.metrics import retrieval

    from mmreid_clip.compat import patch_mmpretrain_in1d
    monkeypatch.setattr(retrieval, 'np', np)
    monkeypatch.setattr(np, 'in1d', lambda *a, **k: None, raising=False)
    assert patch_mmpretrain_in1d() is False
    assert retrieval.np is np
