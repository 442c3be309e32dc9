"""Checkpoint hooks on a real Runner: atomic writes, the random state
carried through resume, and the report of a checkpoint that does not fit."""
import io
import logging
import os
import os.path as osp

import mmengine.runner.runner as mm_runner
import pytest
import torch
from reliability_helpers import ToyRegressor, make_runner, weights

from mmreid_clip.compat import apply_patches
from mmreid_clip.safe_load import safe_torch_load
from mmreid_clip.utils import CheckpointMismatchError


class SimulatedKill(BaseException):
    """Stands for SIGKILL: nothing after it runs, no cleanup."""


def dying_save(monkeypatch, when):
    """Make mmengine's checkpoint writer die half-way through the first
    write for which ``when(name, earlier_names)`` is true."""
    real = mm_runner.save_checkpoint
    names = []

    def save(checkpoint, filename, *args, **kwargs):
        name = osp.basename(filename).replace('.tmp', '')
        if when(name, list(names)):
            buf = io.BytesIO()
            torch.save(checkpoint, buf)
            with open(filename, 'wb') as f:
                f.write(buf.getvalue()[:len(buf.getvalue()) // 2])
            raise SimulatedKill(filename)
        names.append(name)
        return real(checkpoint, filename, *args, **kwargs)

    monkeypatch.setattr(mm_runner, 'save_checkpoint', save)


def pointer(work):
    with open(osp.join(work, 'last_checkpoint')) as f:
        return f.read()


@pytest.mark.parametrize(
    'hook_type, survives',
    [
        ('AtomicCheckpointHook', True),
        ('CheckpointHook', False),  # mmengine's: why the atomic one exists
    ])
def test_kill_while_rewriting_the_latest_checkpoint(tmp_path, monkeypatch,
                                                    hook_type, survives):
    """mmengine saves epoch_1.pth, points last_checkpoint at it, then, on a
    new best score, writes epoch_1.pth again: the run dies there."""
    apply_patches()
    work = str(tmp_path / 'work')
    dying_save(monkeypatch, lambda name, earlier: name in earlier)
    runner = make_runner(
        work,
        checkpoint=dict(
            type=hook_type, interval=1, save_best='auto', rule='greater'))
    with pytest.raises(SimulatedKill):
        runner.train()
    latest = osp.join(work, 'epoch_1.pth')
    assert pointer(work) == latest
    if not survives:
        with pytest.raises(Exception):
            safe_torch_load(latest)
        return
    assert safe_torch_load(latest)['meta']['epoch'] == 1
    assert osp.isfile(latest + '.tmp')  # the unfinished write
    monkeypatch.undo()

    # --resume continues from it and clears the leftover
    runner = make_runner(work, resume=True)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    runner.logger.addHandler(handler)
    runner.train()
    assert runner.epoch == 3
    assert not [f for f in os.listdir(work) if f.endswith('.tmp')]
    assert any('Removed unfinished checkpoint files' in r.getMessage()
               and 'epoch_1.pth.tmp' in r.getMessage() for r in records)
    assert pointer(work) == osp.join(work, 'epoch_3.pth')


def test_kill_during_a_new_checkpoint_keeps_the_previous(
        tmp_path, monkeypatch):
    work = str(tmp_path / 'work')
    dying_save(monkeypatch, lambda name, earlier: name == 'epoch_2.pth')
    runner = make_runner(work, validate=False)
    with pytest.raises(SimulatedKill):
        runner.train()
    assert pointer(work) == osp.join(work, 'epoch_1.pth')
    assert not osp.exists(osp.join(work, 'epoch_2.pth'))
    assert safe_torch_load(osp.join(work, 'epoch_1.pth'))['meta']['epoch'] == 1


def test_rotation_deletes_after_the_new_save(tmp_path):
    work = str(tmp_path / 'work')
    runner = make_runner(
        work,
        checkpoint=dict(
            type='AtomicCheckpointHook',
            interval=1,
            max_keep_ckpts=1,
            save_best='auto',
            rule='greater'))
    runner.train()
    files = sorted(os.listdir(work))
    pths = [f for f in files if f.endswith('.pth')]
    assert 'epoch_3.pth' in pths and 'epoch_1.pth' not in pths
    assert 'epoch_2.pth' not in pths
    assert len([f for f in pths if f.startswith('best_')]) == 1
    assert not [f for f in files if f.endswith('.tmp')]
    assert pointer(work) == osp.join(work, 'epoch_3.pth')
    ckpt = safe_torch_load(osp.join(work, 'epoch_3.pth'))
    assert ckpt['message_hub']['runtime_info']['keep_ckpt_ids'] == [3]


def test_only_the_hooks_own_temporaries_are_removed(tmp_path):
    """Files a user keeps in the work dir under a ``.tmp`` name survive a
    (re)start; the hook's own leftovers are removed and listed."""
    work = tmp_path / 'work'
    work.mkdir()
    users = ['notes.tmp', 'dataset.tar.tmp', 'epoch_x.pth.tmp',
             'my_epoch_1.pth.tmp', 'last_checkpoint.bak.tmp']
    own = ['epoch_7.pth.tmp', 'best_toy_score_epoch_2.pth.tmp',
           'last_checkpoint.tmp']
    for name in users + own:
        (work / name).write_text(name)
    runner = make_runner(str(work), max_epochs=1, validate=False)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    runner.logger.addHandler(handler)
    runner.train()
    left = sorted(f for f in os.listdir(work) if f.endswith('.tmp'))
    assert left == sorted(users)
    for name in users:
        assert (work / name).read_text() == name
    message = [
        r.getMessage() for r in records
        if 'Removed unfinished checkpoint files' in r.getMessage()
    ]
    assert len(message) == 1
    for name in own:
        assert name in message[0]
    for name in users:
        assert name not in message[0]


# ----------------------------------------------------------------------
# random state


def train(work, epochs, resume=False, **hook):
    runner = make_runner(
        work,
        max_epochs=epochs,
        resume=resume,
        extra_hooks=dict(random_state=dict(type='RandomStateHook', **hook)))
    runner.train()
    return runner


def test_resume_repeats_the_uninterrupted_run(tmp_path):
    """The pipeline and the metric draw numpy random numbers: a resumed run
    only reaches the same weights if their state comes back too."""
    apply_patches()
    full = weights(train(str(tmp_path / 'full'), 4))
    part = str(tmp_path / 'part')
    train(part, 2)
    ckpt = safe_torch_load(osp.join(part, 'epoch_2.pth'))
    assert set(ckpt['random_state']) >= {'python', 'numpy', 'torch'}
    resumed = train(part, 4, resume=True)
    assert resumed.iter == 16
    assert all(torch.equal(full[k], v) for k, v in weights(resumed).items())

    # without restoring, the resumed epochs draw other numbers
    part = str(tmp_path / 'no_restore')
    train(part, 2, restore=False)
    resumed = train(part, 4, resume=True, restore=False)
    assert not all(
        torch.equal(full[k], v) for k, v in weights(resumed).items())


def test_validation_does_not_shift_the_training_stream(tmp_path):
    """Validation consumes random numbers; with the hook, training gives the
    same weights whether it validates after every epoch or at the end."""
    runs = []
    for interval in (1, 3):
        runner = make_runner(
            str(tmp_path / str(interval)),
            val_interval=interval,
            extra_hooks=dict(random_state=dict(type='RandomStateHook')))
        runner.train()
        runs.append(weights(runner))
    assert all(torch.equal(v, runs[1][k]) for k, v in runs[0].items())


# ----------------------------------------------------------------------
# a checkpoint of another model


class Renamed(ToyRegressor):
    """Same computation, other parameter names."""

    def __init__(self):
        super().__init__()
        self.encoder, self.head = self.fc1, self.fc2
        del self.fc1, self.fc2


class WithExtraHead(ToyRegressor):

    def __init__(self):
        super().__init__()
        self.aux = torch.nn.Linear(8, 3)


@pytest.fixture
def toy_checkpoint(tmp_path):
    apply_patches()
    work = str(tmp_path / 'src')
    make_runner(work, max_epochs=1, validate=False).train()
    return osp.join(work, 'epoch_1.pth')


def loader(tmp_path, model, strict, source=None):
    return make_runner(
        str(tmp_path / 'dst'),
        model=model,
        validate=False,
        extra_hooks=dict(
            checkpoint_match=dict(
                type='CheckpointMatchHook', strict=strict, source=source)))


def test_strict_report_of_other_shapes(tmp_path, toy_checkpoint):
    runner = loader(tmp_path, ToyRegressor(width=16), True, toy_checkpoint)
    with pytest.raises(CheckpointMismatchError) as err:
        runner.load_checkpoint(toy_checkpoint)
    msg = str(err.value)
    assert msg.startswith(f'{toy_checkpoint} does not fit the ToyRegressor')
    assert '1 of 4 model entries match' in msg
    assert 'other shapes: 3' in msg
    assert 'fc1.weight: checkpoint (8, 4), model (16, 4)' in msg


def test_another_architecture_is_refused_even_when_not_strict(
        tmp_path, toy_checkpoint):
    runner = loader(tmp_path, Renamed(), False)
    before = weights(runner)
    with pytest.raises(CheckpointMismatchError) as err:
        runner.load_checkpoint(toy_checkpoint)
    msg = str(err.value)
    assert '0 of 4 model entries match' in msg
    assert 'missing from the checkpoint: 4 (encoder.* 2, head.* 2)' in msg
    assert 'unexpected in the checkpoint: 4 (fc1.* 2, fc2.* 2)' in msg
    assert 'Nothing matches' in msg
    assert all(torch.equal(before[k], v) for k, v in weights(runner).items())


def test_partial_load_is_reported_as_a_warning(tmp_path, toy_checkpoint):
    runner = loader(tmp_path, WithExtraHead(), False)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    runner.logger.addHandler(handler)
    runner.load_checkpoint(toy_checkpoint)
    warned = [
        r.getMessage() for r in records if 'does not fit' in r.getMessage()
    ]
    assert len(warned) == 1
    assert 'missing from the checkpoint: 2 (aux.* 2)' in warned[0]
    src = safe_torch_load(toy_checkpoint)['state_dict']
    assert torch.equal(runner.model.fc1.weight, src['fc1.weight'])
