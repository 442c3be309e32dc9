"""CLIP-ReID's two-stage schedule as one MMEngine train loop."""
import logging
import math
from typing import Dict, Optional, Union

import torch
from mmengine.dist import all_gather, get_rank, get_world_size
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset

from mmreid_clip.engine.progress import progress
from mmreid_clip.registry import LOOPS


class _Stage1Epoch:
    """What hooks and the log processor read of ``runner.train_dataloader``
    during a stage-1 epoch: its number of iterations (batches of cached
    features) and the training dataset (checkpoint metadata)."""

    def __init__(self, num_batches: int, dataset) -> None:
        self.num_batches = num_batches
        self.dataset = dataset

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        raise RuntimeError('stage-1 batches come from the feature cache')


@LOOPS.register_module()
class TwoStageEpochBasedTrainLoop(EpochBasedTrainLoop):
    """Stage 1 (prompts on cached features), then stage 2 (the encoder).

    ``docs/methods/ccaf.md`` §4 and §9 (CLIP-ReID's schedule):

    * **Stage 1**, epochs ``1 .. stage1_epochs``: the image and text towers
      are frozen; only prompt tokens learn. At the start of stage 1 the
      frozen image encoder encodes every training image once, with the test
      transforms (``stage1_dataloader``: no augmentation, the shielding /
      clothes-only views the model asks for), into a feature cache. Each
      epoch shuffles the cache and steps the model's stage-1 loss over
      batches of ``stage1_batch_size`` (last partial batch kept, as
      CLIP-ReID) with the ``'prompt'`` optimizer.
    * **Stage 2**, the remaining epochs: the usual epoch over
      ``train_dataloader`` (P x K batches); the model freezes the text side
      and precomputes the identity text features once
      (``model.begin_stage2(epoch)``, idempotent).

    Logs count stage-1 iterations as such (``[i/N]`` with ``N`` the
    stage-1 batches of an epoch, ``max_iters`` and the ETA over both
    stages), and each stage's start is logged.

    Epoch and iteration counters run across both stages, so checkpoints,
    ``--resume``, by-epoch schedulers (``begin``/``end`` in absolute
    epochs) and logs work unchanged: resuming inside stage 1 rebuilds the
    cache (deterministic: frozen encoder, no augmentation), resuming inside
    stage 2 recomputes the identity text features from the restored
    prompts. The stage-1 shuffling is seeded by ``(seed, epoch)``, so a
    resumed run sees the same batches.

    **Several processes** (``tools/dist_train.sh``; ``docs/methods/ccaf.md``
    §9): the model is wrapped in :class:`MultiOptimDataParallel`
    (``model_wrapper_cfg``; the CLIP-ReID configs set it), which averages
    every optimizer's gradients over the ranks. Each rank encodes a
    contiguous shard of the training set for the cache and the shards are
    all-gathered in dataset order, so every rank holds the one-process
    cache. Stage 1 then runs the same batches on every rank (the cache and
    the seeded shuffling are shared), as the official code trains its
    prompts on every GPU; stage 2 steps the encoder data-parallel, each
    rank on its own P x K batches from the identity sampler.

    The model must implement ``stage1_views()``, ``cache_features(data)``,
    ``set_train_metainfo(metainfo)``, ``begin_stage2(epoch)`` and a
    ``train_step`` that accepts a stage-1 batch (``{'stage': 1, ...}``) —
    see :class:`mmreid_clip.models.retrievers.CLIPReID`.

    Args:
        runner: The runner.
        dataloader: Stage-2 dataloader (config or object).
        max_epochs: Total epochs, stage 1 + stage 2.
        stage1_epochs: Epochs of stage 1 (0 skips it, e.g. to fine-tune
            from prompts learnt elsewhere).
        stage1_dataloader: Dataloader over the training set with test-style
            transforms for the feature cache. None takes the config's
            top-level ``stage1_dataloader`` (where the dataset configs put
            it, next to ``train_dataloader``), and without one reuses
            ``dataloader``'s dataset and collate (its augmentation then
            leaks into the cache, which is logged as a warning).
        stage1_batch_size: Batch size of stage 1 (CLIP-ReID: 64).
        val_begin: First epoch to validate after; defaults to the first
            stage-2 epoch (stage-1 image features are the frozen CLIP's).
        val_interval: Validation interval in epochs.
        dynamic_intervals: See ``EpochBasedTrainLoop``.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 max_epochs: int,
                 stage1_epochs: int,
                 stage1_dataloader: Union[DataLoader, Dict, None] = None,
                 stage1_batch_size: int = 64,
                 val_begin: Optional[int] = None,
                 val_interval: int = 1,
                 dynamic_intervals=None) -> None:
        if not 0 <= stage1_epochs <= max_epochs:
            raise ValueError(f'stage1_epochs ({stage1_epochs}) must be in '
                             f'[0, max_epochs={max_epochs}]')
        if stage1_batch_size < 1:
            raise ValueError('stage1_batch_size must be >= 1')
        if isinstance(runner.model, DistributedDataParallel):
            raise TypeError(
                'TwoStageEpochBasedTrainLoop steps several optimizers inside '
                'the model\'s train_step, which DistributedDataParallel does '
                "not synchronise; set model_wrapper_cfg=dict(type="
                "'MultiOptimDataParallel') in the config")
        super().__init__(
            runner,
            dataloader,
            max_epochs=max_epochs,
            val_begin=stage1_epochs + 1 if val_begin is None else val_begin,
            val_interval=val_interval,
            dynamic_intervals=dynamic_intervals)
        self.stage1_epochs = stage1_epochs
        self.stage1_batch_size = stage1_batch_size
        self._stage1_loader_cfg = stage1_dataloader
        self._cache: Optional[Dict[str, torch.Tensor]] = None
        self._metainfo_sent = False
        # stage-1 epochs step over the cached training images, not over
        # train_dataloader: count their iterations for the logs and the ETA
        # (the training set's size until the cache is built)
        self._set_stage1_iters(len(self.dataloader.dataset))
        self._announced = set()

    def _set_stage1_iters(self, num_images: int) -> None:
        self.stage1_iters_per_epoch = math.ceil(num_images /
                                                self.stage1_batch_size)
        self._max_iters = (
            self.stage1_epochs * self.stage1_iters_per_epoch +
            (self._max_epochs - self.stage1_epochs) * len(self.dataloader))

    def _recount_max_iters(self) -> None:
        """Recount ``max_iters`` at a stage-2 epoch's start.

        ``'exhaust'`` identity sampling gives every epoch its own length,
        and ``max_iters`` (the logs' total, the ETA) was first counted with
        the sampler's first epoch: count the iterations done, this epoch's
        exact length, and the same length for the epochs still to come.
        """
        self._max_iters = self._iter + (
            (self._max_epochs - self._epoch) * len(self.dataloader))

    def _announce(self) -> None:
        """One log line when a stage starts (or resumes)."""
        stage = self.stage
        if stage in self._announced:
            return
        self._announced.add(stage)
        if stage == 1:
            first, last = self._epoch + 1, self.stage1_epochs
            what = (f'prompt learning on cached features, '
                    f'{self.stage1_iters_per_epoch} iterations per epoch '
                    f'(batch {self.stage1_batch_size})')
        else:
            first, last = self._epoch + 1, self._max_epochs
            what = (f'the encoder on train_dataloader, {len(self.dataloader)}'
                    ' iterations per epoch')
        print_log(
            f'Stage {stage}: epochs {first}-{last} of {self._max_epochs}, '
            f'{what}; {self._max_iters} iterations in all',
            logger='current',
            level=logging.INFO)

    @property
    def stage(self) -> int:
        """1 or 2: the stage the next epoch belongs to."""
        return 1 if self._epoch < self.stage1_epochs else 2

    def _model(self):
        model = self.runner.model
        return getattr(model, 'module', model)

    def _send_metainfo(self) -> None:
        if not self._metainfo_sent:
            self._model().set_train_metainfo(self.dataloader.dataset.metainfo)
            self._metainfo_sent = True

    def _stage1_loader(self) -> DataLoader:
        cfg = self._stage1_loader_cfg
        if cfg is None:
            cfg = getattr(self.runner, 'cfg', {}).get('stage1_dataloader')
        if cfg is None:
            print_log(
                'no stage1_dataloader in the config: stage 1 caches features '
                'of the training dataloader\'s (augmented) pipeline',
                logger='current',
                level=logging.WARNING)
            return self._shard(
                DataLoader(
                    self.dataloader.dataset,
                    batch_size=self.stage1_batch_size,
                    shuffle=False,
                    collate_fn=self.dataloader.collate_fn))
        loader = (cfg if isinstance(cfg, DataLoader) else
                  self.runner.build_dataloader(cfg, seed=self.runner.seed))
        return self._shard(loader)

    @staticmethod
    def _shard(loader: DataLoader) -> DataLoader:
        """This rank's contiguous share of ``loader``'s dataset, in order.

        One process: ``loader`` itself. With several, rank ``r`` of ``W``
        takes items ``[r*N//W, (r+1)*N//W)`` (no padding, no repeats), so
        concatenating the ranks' features in rank order restores the
        dataset order.
        """
        world = get_world_size()
        if world == 1:
            return loader
        dataset, rank = loader.dataset, get_rank()
        n = len(dataset)
        if n < world:
            raise ValueError(f'the stage-1 dataset has {n} items, fewer '
                             f'than the {world} processes')
        shard = Subset(dataset, range(rank * n // world,
                                      (rank + 1) * n // world))
        return DataLoader(
            shard,
            batch_size=loader.batch_size,
            shuffle=False,
            num_workers=loader.num_workers,
            collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory)

    @torch.no_grad()
    def build_cache(self) -> Dict[str, torch.Tensor]:
        """Encode the training set once with the frozen image encoder."""
        model = self._model()
        was_training = model.training
        model.eval()
        parts: Dict[str, list] = {}
        loader = self._stage1_loader()
        world = get_world_size()
        total = len(loader.dataset.dataset if world > 1 else loader.dataset)
        share = (f' ({len(loader.dataset)} of them on rank {get_rank()} of '
                 f'{world})' if world > 1 else '')
        print_log(
            f'Stage 1: encoding the {total} training images once with the '
            f'frozen image encoder{share}',
            logger='current',
            level=logging.INFO)
        for data in progress(loader, desc='stage-1 feature cache'):
            out = model.cache_features(data)
            for key, value in out.items():
                parts.setdefault(key, []).append(value.detach().cpu())
        model.train(was_training)
        if not parts:
            raise RuntimeError('the stage-1 dataloader yielded no batch')
        cache = {k: torch.cat(v) for k, v in parts.items()}
        if world > 1:
            cache = self._gather(cache)
        n = len(next(iter(cache.values())))
        print_log(
            f'Stage 1: cached {sorted(cache)} features of {n} training '
            'images with the frozen image encoder',
            logger='current',
            level=logging.INFO)
        return cache

    @staticmethod
    def _gather(part: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """All ranks' cache shards, concatenated in rank (= dataset) order.

        Shards differ in length by at most one row; each is padded to the
        longest for ``all_gather`` and trimmed back.
        """
        rows = len(next(iter(part.values())))
        sizes = [int(s) for s in all_gather(torch.tensor([rows]))]
        longest = max(sizes)
        out = {}
        for key in sorted(part):
            value = part[key]
            pad = value.new_zeros((longest - rows, ) + value.shape[1:])
            shards = all_gather(torch.cat([value, pad]))
            out[key] = torch.cat(
                [s[:size].cpu() for s, size in zip(shards, sizes)])
        return out

    def run_epoch(self) -> None:
        """Run one epoch of the current stage."""
        self._send_metainfo()
        if self.stage == 1:
            if self._cache is None:
                self._cache = self.build_cache()
                self._set_stage1_iters(len(self._cache['pids']))
            self._announce()
            # hooks and the log processor see the stage-1 epoch's length
            train_loader = self.dataloader
            self.dataloader = _Stage1Epoch(self.stage1_iters_per_epoch,
                                           train_loader.dataset)
            try:
                self._run_stage1_epoch()
            finally:
                self.dataloader = train_loader
        else:
            self._cache = None  # free the stage-1 cache
            self._model().begin_stage2(self._epoch - self.stage1_epochs)
            # the epoch's length ('exhaust' identity sampling varies it) for
            # the stage's log line; DistSamplerSeedHook sets it again
            sampler = getattr(self.dataloader, 'sampler', None)
            if hasattr(sampler, 'set_epoch'):
                sampler.set_epoch(self._epoch)
            self._recount_max_iters()
            self._announce()
            super().run_epoch()

    def _run_stage1_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        n = len(self._cache['pids'])
        gen = torch.Generator().manual_seed(
            (self.runner.seed or 0) * 1000003 + self._epoch)
        order = torch.randperm(n, generator=gen)
        for idx, start in enumerate(range(0, n, self.stage1_batch_size)):
            rows = order[start:start + self.stage1_batch_size]
            batch = {k: v[rows] for k, v in self._cache.items()}
            batch['stage'] = 1
            self.runner.call_hook(
                'before_train_iter', batch_idx=idx, data_batch=batch)
            outputs = self.runner.model.train_step(
                batch, optim_wrapper=self.runner.optim_wrapper)
            self.runner.call_hook(
                'after_train_iter',
                batch_idx=idx,
                data_batch=batch,
                outputs=outputs)
            self._iter += 1
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
