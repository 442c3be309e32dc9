"""NonFiniteLossHook: a NaN/Inf loss stops training before the update, or
the step is skipped, on a real mmengine Runner."""
import logging
import math

import pytest
import torch
from reliability_helpers import ToyRegressor, make_runner

from mmreid_clip.engine.hooks import NonFiniteLossError, NonFiniteLossHook

NAN, INF = float('nan'), float('inf')


def run(tmp_path, bad, max_epochs=2, **hook):
    model = ToyRegressor(bad=bad)
    runner = make_runner(
        str(tmp_path / 'work'),
        model=model,
        max_epochs=max_epochs,
        validate=False,
        custom_hooks=[dict(type='NonFiniteLossHook', **hook)])
    return runner, model


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    'term, value, shown',
    [
        ('loss_l1', NAN, 'loss=nan'),
        ('loss_mse', INF, 'loss=inf'),
        ('loss_mse', -INF, 'loss=-inf'),  # the total is named too
    ])
def test_raise_names_term_and_iteration_before_the_update(
        tmp_path, term, value, shown):
    runner, model = run(tmp_path, {3: (term, value)})
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    msg = str(err.value)
    assert f'{term}={value}' in msg and shown in msg
    assert 'iteration 3 (epoch 1, batch 3/4)' in msg
    # the other term is reported as finite, for context
    other = 'loss_mse' if term == 'loss_l1' else 'loss_l1'
    assert '(finite: ' in msg and other in msg.split('finite: ')[1]
    # the parameters are those the bad iteration started from
    assert model.calls == 3
    assert same(model.state_dict(), model.seen[2])
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_skip_drops_the_step_and_training_goes_on(tmp_path):
    runner, model = run(
        tmp_path, {
            3: ('loss_l1', NAN),
            6: ('loss_mse', INF)
        }, action='skip')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    runner.logger.addHandler(handler)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, NonFiniteLossHook))
    assert hook.num_skipped == 2
    assert runner.message_hub.get_info('nonfinite_loss_skips') == 2
    assert model.calls == 8 and runner.iter == 8
    # a skipped step changes nothing: iteration 4 starts from the weights
    # iteration 3 started from; a normal step does change them
    assert same(model.seen[3], model.seen[2])
    assert same(model.seen[6], model.seen[5])
    assert not same(model.seen[4], model.seen[3])
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    warnings = [
        r.getMessage() for r in records if r.levelno == logging.WARNING
    ]
    assert any('loss_l1=nan at iteration 3' in w and 'Skipped this step' in w
               for w in warnings)
    # the logged loss history stays finite
    history = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(history) == 6 and all(math.isfinite(v) for v in history)


def test_skip_gives_up_when_training_has_diverged(tmp_path):
    bad = {i: ('loss_mse', NAN) for i in range(2, 9)}
    runner, model = run(tmp_path, bad, action='skip', max_consecutive_skips=2)
    with pytest.raises(NonFiniteLossError, match='3 steps in a row.*diverged'):
        runner.train()
    assert model.calls == 4


class BypassingRegressor(ToyRegressor):
    """A model whose train_step steps without calling parse_losses."""

    def train_step(self, data, optim_wrapper):
        data = self.data_preprocessor(data, True)
        losses = self._run_forward(data, mode='loss')
        optim_wrapper.update_params(losses['loss_mse'] + losses['loss_l1'])
        return {k: v.detach() for k, v in losses.items()}


def test_models_bypassing_parse_losses_are_checked_after_the_step(tmp_path):
    model = BypassingRegressor(bad={2: ('loss_mse', NAN)})
    runner = make_runner(
        str(tmp_path / 'work'),
        model=model,
        validate=False,
        custom_hooks=[dict(type='NonFiniteLossHook')])
    with pytest.raises(
            NonFiniteLossError,
            match='loss_mse=nan at iteration 2.*had already run'):
        runner.train()


def test_wrappers_removed_after_training(tmp_path):
    runner, model = run(tmp_path, {}, max_epochs=1)
    runner.train()
    assert 'parse_losses' not in vars(model)
    assert 'update_params' not in vars(runner.optim_wrapper)


def test_bad_arguments():
    with pytest.raises(ValueError, match="action must be one of"):
        NonFiniteLossHook(action='ignore')
    with pytest.raises(ValueError, match='max_consecutive_skips'):
        NonFiniteLossHook(max_consecutive_skips=-1)
