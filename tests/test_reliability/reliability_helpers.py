"""A tiny real mmengine Runner for the engine tests.

The toy model is a linear regressor whose data pipeline draws numpy random
numbers (like ``RandomFlip``), whose validation does too, and which can be
told to return a NaN/Inf loss term at given iterations. Runs take well
under a second, so the hooks are tested through mmengine's real loops.
"""
import uuid
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset


class NoisyDataset(Dataset):
    """``x -> 2x + 1`` pairs with numpy-drawn augmentation noise."""

    def __init__(self, size: int = 16, noise: float = 0.1) -> None:
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(size, 4, generator=gen)
        self.y = self.x.sum(1, keepdim=True) * 2 + 1
        self.noise = noise

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx: int) -> dict:
        jitter = np.random.uniform(-self.noise, self.noise, size=4)
        return dict(
            inputs=self.x[idx] + torch.from_numpy(jitter).float(),
            data_samples=self.y[idx])


class ToyRegressor(BaseModel):
    """Two loss terms, ``loss_mse`` and ``loss_l1``.

    Args:
        bad (dict): ``{iteration (1-based): (term, value)}`` replaces that
            term's value at that training iteration (e.g. ``float('nan')``).
        width (int): Hidden width (a larger one makes bigger checkpoints).
        record (bool): Keep the parameters of every iteration in
            :attr:`seen`. Defaults to True.
    """

    def __init__(self,
                 bad: Optional[Dict[int, Tuple[str, float]]] = None,
                 width: int = 8,
                 record: bool = True) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(4, width)
        self.fc2 = torch.nn.Linear(width, 1)
        # built before the Runner seeds the generators: initialise from a
        # fixed one so that every run starts from the same weights
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=gen) - 0.5)
        self.bad = dict(bad or {})
        self.record = record
        self.calls = 0
        #: parameters seen at the start of each training iteration
        self.seen: List[Dict[str, torch.Tensor]] = []

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        out = self.fc2(torch.relu(self.fc1(inputs)))
        if mode == 'loss':
            self.calls += 1
            if self.record:
                self.seen.append({
                    k: v.detach().clone()
                    for k, v in self.state_dict().items()
                })
            losses = dict(
                loss_mse=((out - data_samples)**2).mean(),
                loss_l1=(out - data_samples).abs().mean() * 0.1)
            if self.calls in self.bad:
                term, value = self.bad[self.calls]
                losses[term] = losses[term] * 0 + value
            return losses
        if mode == 'predict':
            return [dict(pred=o, target=t) for o, t in zip(out, data_samples)]
        return out


class ToyMetric(BaseMetric):
    """Negative mean absolute error (greater is better); its processing
    draws a numpy random number, like a random augmentation would."""

    default_prefix = 'toy'

    def process(self, data_batch, data_samples) -> None:
        np.random.rand()
        for sample in data_samples:
            self.results.append(
                float((sample['pred'] - sample['target']).abs().mean()))

    def compute_metrics(self, results) -> dict:
        return dict(score=-float(np.mean(results)))


def make_runner(work_dir: str,
                model: Optional[ToyRegressor] = None,
                max_epochs: int = 3,
                checkpoint: Optional[dict] = None,
                custom_hooks: Optional[list] = None,
                extra_hooks: Optional[dict] = None,
                validate: bool = True,
                val_interval: int = 1,
                resume: bool = False,
                load_from: Optional[str] = None,
                seed: int = 0,
                **runner_kwargs) -> Runner:
    """A Runner on :class:`ToyRegressor` with the project's hooks by name."""
    default_hooks = dict(
        logger=dict(type='LoggerHook', interval=1),
        checkpoint=checkpoint or dict(type='AtomicCheckpointHook', interval=1),
    )
    default_hooks.update(extra_hooks or {})
    val = dict(
        val_dataloader=dict(
            dataset=NoisyDataset(size=6, noise=0.0),
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            batch_size=4),
        val_cfg=dict(),
        val_evaluator=[ToyMetric()]) if validate else {}
    return Runner(
        model=model if model is not None else ToyRegressor(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=NoisyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            batch_size=4),
        train_cfg=dict(
            by_epoch=True, max_epochs=max_epochs, val_interval=val_interval),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        default_hooks=default_hooks,
        custom_hooks=custom_hooks,
        default_scope='mmreid_clip',
        # deterministic=True would stay switched on in the test process;
        # the CPU toy is deterministic without it
        randomness=dict(seed=seed),
        resume=resume,
        load_from=load_from,
        log_level='WARNING',
        # unique: mmengine keys its logger and message hub by this name
        experiment_name=f'toy_{uuid.uuid4().hex}',
        **val,
        **runner_kwargs)


def weights(runner: Runner) -> Dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


# ----------------------------------------------------------------------
# entry points of the child processes of the end-to-end tests


def _setup_child() -> None:
    from mmreid_clip.compat import apply_patches
    from mmreid_clip.utils import register_all_modules
    register_all_modules()
    apply_patches()


def keep_saving(work_dir: str,
                width: int,
                resume: bool,
                kill_before_replace: Optional[str] = None) -> None:
    """Train "forever" with big checkpoints every epoch (until killed).

    With ``kill_before_replace`` (a file name such as ``'epoch_3.pth'`` or
    ``'last_checkpoint'``) the process SIGKILLs itself right before its
    first ``os.replace`` onto that name: the temporary file is complete and
    the rename not done, a known point of the writes instead of a random
    moment.
    """
    if kill_before_replace is not None:
        import os
        import signal
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if os.path.basename(dst) == kill_before_replace:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(src, dst, *args, **kwargs)

        os.replace = replace
    _setup_child()
    runner = make_runner(
        work_dir,
        model=ToyRegressor(width=width, record=False),
        max_epochs=100000,
        validate=False,
        resume=resume,
        checkpoint=dict(
            type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2))
    runner.train()


def ddp_nan_on_one_rank(work_dir: str, bad_rank: int) -> None:
    """Two-process gloo run where only ``bad_rank`` sees a NaN at iteration
    2, with NonFiniteLossHook(action='skip'); each rank saves what it
    saw to ``work_dir/rank<r>.pt``."""
    import os
    import torch.distributed as dist
    from mmreid_clip.compat import cpu_ddp_wrapper_cfg, init_cpu_distributed
    from mmreid_clip.utils import finish_distributed
    _setup_child()
    init_cpu_distributed('pytorch')
    rank = dist.get_rank()
    model = ToyRegressor(bad={2: ('loss_mse',
                                  float('nan'))} if rank == bad_rank else {})
    runner = make_runner(
        work_dir,
        model=model,
        max_epochs=2,
        validate=False,
        custom_hooks=[dict(type='NonFiniteLossHook', action='skip')],
        launcher='pytorch',
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        cfg=dict(model_wrapper_cfg=cpu_ddp_wrapper_cfg()))
    runner.train()
    hook = [h for h in runner.hooks if type(h).__name__ == 'NonFiniteLossHook']
    torch.save(
        dict(
            seen=model.seen,
            final=weights(runner),
            skipped=hook[0].num_skipped,
            calls=model.calls), os.path.join(work_dir, f'rank{rank}.pt'))
    # as tools/train.py ends: a gloo rank left to interpreter shutdown
    # sometimes aborted after a successful run (docs/reliability.md §7)
    finish_distributed()
