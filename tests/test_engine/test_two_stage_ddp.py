"""CLIP-ReID / CCAF's two-stage loop on two gloo processes (CPU).

The claim checked: W processes with per-rank batches of P x K compute
what one process computes when it accumulates the gradients of the same W
batches (``accumulative_counts=W``) before each step; the identity sampler
hands step ``s`` of the ranks the global batches ``s*W .. s*W+W-1``, which
are the batches one process accumulates at that step. Where the losses are
per-sample means (identity, I2T, CFM), averaging the ranks' gradients is
that accumulation exactly; batch-hard triplets and BatchNorm statistics
are computed per batch in both runs. Measured on the full CCAF model (IFP
and CFM, the examiner with the default ``adversary='pre'``): every loss of
every iteration and every parameter agree bit for bit, so the tolerances
below (1e-6) only absorb a different summation order elsewhere. Not
compared: BatchNorm running statistics (one process updates them after
each of its W batches, W processes keep rank 0's), which the retrieval
feature does not use (``test_neck='before'``).

Random augmentation is switched off: a process draws random numbers in the
order of the items it loads, so one process and two would augment the
same image differently.
"""
from unittest import mock

import pytest
import torch
from helpers.two_stage_setup import (SMALL, TINY, run_and_record,
                                     run_processes, small_cfg)
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from mmreid_clip.engine.runner import two_stage_loop
from mmreid_clip.engine.runner.two_stage_loop import \
    TwoStageEpochBasedTrainLoop
from mmreid_clip.models.wrappers import (MultiOptimDataParallel,
                                         install_gradient_averaging,
                                         multi_optim_data_parallel)
from mmreid_clip.utils import setup_runtime


# one process accumulates the two batches the two ranks take per step
ACCUMULATE = {
    'optim_wrapper.encoder.accumulative_counts': 2,
    'optim_wrapper.clothes_prompt.accumulative_counts': 2,
}


@pytest.fixture(scope='module')
def synth_cc(tmp_path_factory):
    from mmreid_synth import generate_synth_cc
    root = tmp_path_factory.mktemp('synthcc')
    generate_synth_cc(str(root), seed=3, **SMALL)
    return str(root / 'LTCC_ReID')


def one_process(data_root, work_dir, out, resume_from=None):
    torch.set_num_threads(1)
    cfg = small_cfg(TINY, data_root, work_dir, augment=False)
    cfg.merge_from_dict(ACCUMULATE)
    run_and_record(cfg, out, resume_from)
    return torch.load(out)


def two_processes(data_root, work_dir, out, resume_from=None):
    files = run_processes(2, TINY, data_root, work_dir, out,
                          resume_from=resume_from)
    return [torch.load(f) for f in files]


def trained_params(record):
    """Everything but BatchNorm running statistics."""
    return {
        k: v
        for k, v in record['state'].items()
        if not k.endswith(('running_mean', 'running_var',
                           'num_batches_tracked'))
    }


def assert_same_model(a, b, atol=1e-6):
    pa, pb = trained_params(a), trained_params(b)
    assert pa.keys() == pb.keys()
    for key in pa:
        if pa[key].is_floating_point():
            torch.testing.assert_close(
                pa[key], pb[key], atol=atol, rtol=0, msg=key)
        else:
            assert torch.equal(pa[key], pb[key]), key


@pytest.fixture(scope='module')
def runs(synth_cc, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('ddp')
    one = one_process(synth_cc, str(tmp / 'one'), str(tmp / 'one.pth'))
    two = two_processes(synth_cc, str(tmp / 'two'),
                        str(tmp / 'two_{rank}.pth'))
    return dict(tmp=tmp, data=synth_cc, one=one, two=two)


@pytest.mark.slow
def test_ranks_end_identical(runs):
    rank0, rank1 = runs['two']
    for key, value in rank0['state'].items():
        assert torch.equal(value, rank1['state'][key]), key
    assert rank0['metrics'] == rank1['metrics']


@pytest.mark.slow
def test_stage1_is_the_one_process_stage1(runs):
    """The sharded, gathered cache and the replicated prompt steps give the
    one-process stage-1 losses on every rank."""
    one, (rank0, rank1) = runs['one'], runs['two']
    for key in ('train/loss_i2t_s1', 'train/loss_t2i_s1',
                'train/loss_clothes_s1'):
        assert len(one['losses'][key]) == 4  # 64 cached images / 16
        for rank in (rank0, rank1):
            assert rank['losses'][key] == pytest.approx(
                one['losses'][key], rel=1e-6, abs=1e-6), key


@pytest.mark.slow
def test_stage2_steps_are_accumulated_one_process_steps(runs):
    """Rank r's loss at step s is the one-process loss of micro-step
    2s + r; the parameters and the metrics end the same."""
    one, (rank0, rank1) = runs['one'], runs['two']
    for key in ('train/loss_id', 'train/loss_tri', 'train/loss_i2t',
                'train/loss_i2i', 'train/loss_tri_shield', 'train/loss_cfm',
                'train/loss_clothes_examine'):
        micro = one['losses'][key]
        assert len(micro) == 4 and len(rank0['losses'][key]) == 2, key
        assert rank0['losses'][key] == pytest.approx(
            micro[0::2], rel=1e-6, abs=1e-6), key
        assert rank1['losses'][key] == pytest.approx(
            micro[1::2], rel=1e-6, abs=1e-6), key
    assert_same_model(one, rank0)
    for key, value in one['metrics'].items():
        assert rank0['metrics'][key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.slow
def test_checkpoints_move_between_one_and_two_processes(runs):
    """Stage-1 checkpoints of one and two processes are the same file
    content; a stage-1 checkpoint resumes on one process and on two,
    across the stage boundary, and both continue identically from it.

    The checkpoint's prompts are shifted first, so a run that ignored it
    and trained stage 1 again would end elsewhere.
    """
    tmp, data = runs['tmp'], runs['data']
    ckpt_one = torch.load(str(tmp / 'one' / 'epoch_1.pth'),
                          weights_only=False)
    ckpt_two = torch.load(str(tmp / 'two' / 'epoch_1.pth'),
                          weights_only=False)
    assert ckpt_one['state_dict'].keys() == ckpt_two['state_dict'].keys()
    assert_same_model(dict(state=ckpt_one['state_dict']),
                      dict(state=ckpt_two['state_dict']))
    ckpt_two['state_dict']['id_prompt.ctx'] += 0.05
    shifted = str(tmp / 'shifted_epoch_1.pth')
    torch.save(ckpt_two, shifted)
    resumed_two = two_processes(data, str(tmp / 'two_resumed'),
                                str(tmp / 'two_resumed_{rank}.pth'),
                                resume_from=shifted)
    resumed_one = one_process(data, str(tmp / 'one_resumed'),
                              str(tmp / 'one_resumed.pth'),
                              resume_from=shifted)
    assert_same_model(resumed_one, resumed_two[0])
    assert resumed_two[0]['metrics'] == pytest.approx(resumed_one['metrics'])
    # the stage-2 epoch started from the shifted prompts, not a new stage 1
    for record in (resumed_one, resumed_two[0]):
        torch.testing.assert_close(
            record['state']['id_prompt.ctx'],
            ckpt_two['state_dict']['id_prompt.ctx'])


# ----------------------------------------------------------------------
# the parts, in this process


@pytest.mark.parametrize('n,world', [(10, 3), (7, 7), (64, 2), (5, 4)])
def test_cache_shards_are_contiguous_and_cover_the_dataset(
        monkeypatch, n, world):
    loader = DataLoader(list(range(n)), batch_size=2)
    got = []
    for rank in range(world):
        monkeypatch.setattr(two_stage_loop, 'get_world_size', lambda: world)
        monkeypatch.setattr(two_stage_loop, 'get_rank', lambda r=rank: r)
        shard = TwoStageEpochBasedTrainLoop._shard(loader)
        assert len(shard.dataset) in (n // world, n // world + 1)
        got += [int(i) for batch in shard for i in batch]
    assert got == list(range(n))


def test_fewer_items_than_processes_is_refused(monkeypatch):
    monkeypatch.setattr(two_stage_loop, 'get_world_size', lambda: 4)
    monkeypatch.setattr(two_stage_loop, 'get_rank', lambda: 0)
    with pytest.raises(ValueError, match='3 items, fewer than the 4'):
        TwoStageEpochBasedTrainLoop._shard(DataLoader([0, 1, 2]))


def test_gathered_cache_is_in_rank_order(monkeypatch):
    """Uneven shards (3 and 2 rows) are padded for all_gather and
    trimmed back."""
    shards = [dict(pids=torch.tensor([0, 1, 2]), feat=torch.ones(3, 2)),
              dict(pids=torch.tensor([3, 4]), feat=torch.zeros(2, 2))]

    def fake_all_gather(t):
        if t.numel() == 1:
            return [torch.tensor([3]), torch.tensor([2])]
        key = 'pids' if t.dim() == 1 else 'feat'
        return [torch.cat([s[key], s[key].new_zeros(
            (3 - len(s[key]), ) + s[key].shape[1:])]) for s in shards]

    monkeypatch.setattr(two_stage_loop, 'all_gather', fake_all_gather)
    out = TwoStageEpochBasedTrainLoop._gather(shards[0])
    assert out['pids'].tolist() == [0, 1, 2, 3, 4]
    assert out['feat'].sum(1).tolist() == [2, 2, 2, 0, 0]


def test_ddp_wrapped_model_is_refused_with_the_fix():
    runner = mock.Mock()
    runner.model = mock.Mock(spec=DistributedDataParallel)
    with pytest.raises(TypeError, match='MultiOptimDataParallel'):
        TwoStageEpochBasedTrainLoop(
            runner, dataloader=None, max_epochs=2, stage1_epochs=1)


def test_every_step_averages_the_gradients_it_uses(monkeypatch):
    """Installed once, the averaging sees exactly the parameters with a
    gradient of that optimizer, right before each step."""
    seen = []
    monkeypatch.setattr(multi_optim_data_parallel, 'all_reduce_params',
                        lambda grads, op: seen.append((len(grads), op)))
    used, unused = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ow = OptimWrapper(
        torch.optim.SGD(list(used.parameters()) + list(unused.parameters()),
                        lr=0.1))
    install_gradient_averaging(ow)
    install_gradient_averaging(ow)  # idempotent
    ow.update_params(used(torch.ones(1, 2)).sum())
    assert seen == [(2, 'mean')]  # weight and bias of `used` only


def test_wrapper_delegates_steps_to_the_model():

    class Model(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.bn = torch.nn.BatchNorm1d(2)
            self.calls = []

        def train_step(self, data, optim_wrapper):
            self.calls.append(('train', data, optim_wrapper))

        def val_step(self, data):
            self.calls.append(('val', data))

    model = Model()
    wrapper = MultiOptimDataParallel(model)
    assert wrapper.module is model
    ow = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    wrapper.train_step({'x': 1}, ow)
    wrapper.val_step({'y': 1})
    assert model.calls == [('train', {'x': 1}, ow), ('val', {'y': 1})]
    assert hasattr(ow.step, '__wrapped__')


def test_cpu_launch_keeps_the_multi_optimizer_wrapper(monkeypatch):
    """setup_runtime replaces DDP's settings for CPU, but not a wrapper
    that is not DDP."""
    monkeypatch.setattr('mmreid_clip.utils.setup_env.init_cpu_distributed',
                        lambda launcher: True)
    cfg = setup_runtime(
        Config(
            dict(
                launcher='pytorch',
                model_wrapper_cfg=dict(type='MultiOptimDataParallel'))))
    assert cfg.model_wrapper_cfg.type == 'MultiOptimDataParallel'
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    cfg = setup_runtime(Config(dict(launcher='pytorch')))
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
