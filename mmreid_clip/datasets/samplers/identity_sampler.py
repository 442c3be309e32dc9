"""Identity-balanced (P x K) sampling for ReID training.

Two samplers cover the training recipes of the zoo:

- random over pairs (IRRA, TBPS-CLIP): mmengine's ``DefaultSampler``,
  ``sampler=dict(type='DefaultSampler', shuffle=True)``; nothing here.
- P identities x K instances per batch (triplet / SDM recipes with several
  positives per identity): :class:`IdentityBalancedSampler`, e.g.
  ``sampler=dict(type='IdentityBalancedSampler', num_instances=4,
  batch_size=64)`` next to ``batch_size=64`` in the dataloader.
"""
import logging
from typing import Iterator, List, Optional, Sized

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import print_log
from torch.utils.data import Sampler

from mmreid_clip.registry import DATA_SAMPLERS


def dataset_pids(dataset: Sized) -> np.ndarray:
    """The identity of every item of ``dataset``, in item order.

    Uses ``dataset.get_pids()`` when there is one (``TextImageDataset``
    caches it), else ``dataset.get_data_info(i)['pid']`` for every item.

    Args:
        dataset (Sized): The dataset.

    Returns:
        np.ndarray: int64 pids of length ``len(dataset)``.
    """
    if hasattr(dataset, 'get_pids'):
        pids = dataset.get_pids()
    elif hasattr(dataset, 'get_data_info'):
        pids = [dataset.get_data_info(i)['pid'] for i in range(len(dataset))]
    else:
        raise TypeError(
            f'{type(dataset).__name__} has neither get_pids() nor '
            "get_data_info(i)['pid']; IdentityBalancedSampler needs the "
            'identity of every item')
    pids = np.asarray(pids, dtype=np.int64)
    if pids.shape != (len(dataset), ):
        raise ValueError(f'expected {len(dataset)} pids, got shape '
                         f'{pids.shape}')
    return pids


#: Epoch modes of :class:`IdentityBalancedSampler`.
MODES = ('exhaust', 'balanced')


@DATA_SAMPLERS.register_module()
class IdentityBalancedSampler(Sampler):
    """P x K sampler: each batch holds P identities with K items each.

    Two ways to lay out an epoch (``mode``):

    ``'exhaust'`` (default) is the ``RandomIdentitySampler`` of the ReID
    strong baseline (Luo et al., CVPR-W 2019, arXiv 1903.07071) that
    CLIP-ReID and most ReID codebases train with. Every epoch, each
    identity's items are shuffled and cut into groups of K (the last
    ``n mod K`` items are dropped; an identity with fewer than K items
    gets one group drawn with replacement). Then, while at least P
    identities still have groups, P of them are drawn uniformly (without
    replacement) and each gives its next group to the batch. Identities
    with many items are therefore left over at the end: an epoch has a
    random number of batches, fewer than the dataset size suggests (258
    instead of 284 batches of 64 for 18,170 items of 150 identities with
    3-500 items each). ``len(self)`` is the current epoch's exact count.

    ``'balanced'`` covers about the whole dataset every epoch: each
    identity is cut into groups of K of its items
    (identities with fewer than K items are filled up by sampling their
    items again, with replacement). An identity gets ``floor(n / K)``
    groups (at least one) and the remaining groups, up to ``round(N / K)``
    in total, go to identities at random in proportion to their leftover
    items, so an epoch covers about the dataset size (``N`` items) in whole
    K-groups and every item is drawn about once.

    With ``batch_size`` given (``P = batch_size / K``), groups are laid out
    so that every batch holds P *distinct* identities: the groups are
    written identity by identity in random identity order and batch ``b``
    takes the groups at positions ``b, b + B, b + 2B, ...`` (``B`` batches),
    which never picks two groups of one identity as long as no identity has
    more than ``B`` groups (enforced). The batch order and the order inside
    each batch are then shuffled. Without ``batch_size`` the K-groups are
    only shuffled, so a batch may hold two groups of one identity.

    Distributed (both modes): every rank computes the same global order
    (same seed and epoch; ``seed=None`` is synchronised with
    ``sync_random_seed``) and takes every ``world_size``-th whole batch of
    it, starting at its rank: training step ``s`` of the ranks together
    covers global batches ``s*W .. s*W+W-1``, the batches one process
    would accumulate over ``W`` micro-steps (as the official CLIP-ReID
    DDP sampler interleaves its mini-batches). Batches that do
    not divide evenly among the ranks are dropped, so ``len(self)`` (per
    rank) is a multiple of ``batch_size`` (of K without it) and the
    dataloader should use ``drop_last=False``.

    Args:
        dataset (Sized): A dataset with ``get_pids()`` or
            ``get_data_info(i)['pid']``.
        num_instances (int): K, items per identity in a batch. Defaults to 4.
        batch_size (int, optional): The dataloader's (per-rank) batch size,
            a multiple of K; needed to guarantee P distinct identities per
            batch (the sampler cannot see the dataloader's). Defaults to
            None.
        shuffle (bool): Reshuffle every epoch. With False the order is
            deterministic and the same every epoch (identities in sorted
            order, items in dataset order), for debugging. Defaults to True.
        seed (int, optional): Random seed, identical on all ranks; the
            Runner passes its own. Defaults to None (synchronised random).
        mode (str): ``'exhaust'`` (the strong baseline's and CLIP-ReID's
            epoch, default) or ``'balanced'`` (about the dataset size per
            epoch); see above. ``'exhaust'`` needs ``batch_size``.
    """

    def __init__(self,
                 dataset: Sized,
                 num_instances: int = 4,
                 batch_size: Optional[int] = None,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 mode: str = 'exhaust') -> None:
        if num_instances < 1:
            raise ValueError(f'num_instances must be >= 1, got '
                             f'{num_instances}')
        if batch_size is not None and (batch_size < num_instances
                                       or batch_size % num_instances):
            raise ValueError(
                f'batch_size ({batch_size}) must be a positive multiple of '
                f'num_instances ({num_instances})')
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        if mode == 'exhaust' and batch_size is None:
            raise ValueError(
                "mode='exhaust' draws P identities per batch and needs "
                "batch_size (P = batch_size / num_instances); pass it or "
                "use mode='balanced'")
        self.mode = mode
        self._epoch_cache = None
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.num_instances = num_instances
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0

        pids = dataset_pids(dataset)
        if pids.size == 0:
            raise ValueError('IdentityBalancedSampler got an empty dataset')
        # item indices of each identity, in dataset order
        order = np.argsort(pids, kind='stable')
        self.identities, starts, self._sizes = np.unique(
            pids[order], return_index=True, return_counts=True)
        self._members: List[np.ndarray] = np.split(order, starts[1:])
        self.num_identities = len(self.identities)

        k = num_instances
        self.ids_per_batch = batch_size // k if batch_size else 1
        if self.ids_per_batch > self.num_identities:
            raise ValueError(
                f'a batch of {self.ids_per_batch} identities x {k} needs at '
                f'least {self.ids_per_batch} identities; the dataset has '
                f'{self.num_identities}. Lower batch_size.')
        # at least one group per identity; floor(n / K) for the larger ones
        self._base = np.maximum(1, self._sizes // k)
        self._leftover = np.where(self._sizes >= k,
                                  self._sizes / k - self._sizes // k, 0.0)
        # round half up, so N = 6, K = 4 gives 2 groups as one would expect
        num_groups = max(int(len(pids) / k + 0.5), int(self._base.sum()))
        batches = num_groups // self.ids_per_batch
        self.num_batches = batches - batches % self.world_size
        if self.num_batches == 0:
            raise ValueError(
                f'{len(pids)} items make {num_groups} groups of {k}, fewer '
                f'than one batch of {self.ids_per_batch} groups per rank '
                f'({self.world_size} ranks)')
        self.num_groups = self.num_batches * self.ids_per_batch
        self.num_samples = (
            self.num_batches // self.world_size * self.ids_per_batch * k)
        if batch_size is None:
            print_log(
                'IdentityBalancedSampler without batch_size: K-groups are '
                'shuffled, but a batch may hold two groups of one identity; '
                'set batch_size to the dataloader\'s for P distinct '
                'identities per batch',
                logger='current',
                level=logging.WARNING)

    # ------------------------------------------------------------------

    def _group_counts(self, rng: np.random.Generator) -> np.ndarray:
        """How many K-groups each identity gets this epoch (sum fixed)."""
        counts = self._base.copy()
        extra = int(self.num_groups - counts.sum())
        eligible = np.flatnonzero(self._leftover > 0)
        if extra > 0 and eligible.size:
            take = min(extra, eligible.size)
            weight = self._leftover[eligible]
            if self.shuffle:
                chosen = rng.choice(
                    eligible, take, replace=False, p=weight / weight.sum())
            else:
                chosen = eligible[np.argsort(-weight, kind='stable')[:take]]
            counts[chosen] += 1
        # An identity with more groups than there are batches would appear
        # twice in some batch; cap it, then add or remove single groups until
        # the total is exactly num_groups (always possible: ids >= P).
        counts = np.minimum(counts, self.num_batches)
        diff = int(self.num_groups - counts.sum())
        while diff:
            if diff < 0:
                pool = np.flatnonzero(counts > 0)
                weight = counts[pool].astype(np.float64)
            else:
                pool = np.flatnonzero(counts < self.num_batches)
                weight = self._sizes[pool].astype(np.float64)
            take = min(abs(diff), pool.size)
            if self.shuffle:
                chosen = rng.choice(
                    pool, take, replace=False, p=weight / weight.sum())
            else:
                chosen = pool[np.argsort(-weight, kind='stable')[:take]]
            counts[chosen] += 1 if diff > 0 else -1
            diff = int(self.num_groups - counts.sum())
        return counts

    def _identity_groups(self, ident: int, count: int,
                         rng: np.random.Generator) -> np.ndarray:
        """``count`` groups of K items of identity ``ident``: count x K."""
        members = self._members[ident]
        need = count * self.num_instances
        if not self.shuffle:
            # cycle through the items in dataset order
            return np.resize(members, need).reshape(count, -1)
        picked = rng.permutation(members)
        if need > len(picked):
            # every item once, the rest drawn again with replacement
            refill = rng.choice(members, need - len(picked), replace=True)
            picked = rng.permutation(np.concatenate([picked, refill]))
        return picked[:need].reshape(count, -1)

    def _exhaust_batches(self, rng: np.random.Generator) -> np.ndarray:
        """The ``'exhaust'`` epoch: ``batches x P x K`` (all ranks)."""
        k, p = self.num_instances, self.ids_per_batch
        groups, left = [], np.empty(self.num_identities, dtype=np.int64)
        for ident, members in enumerate(self._members):
            if len(members) < k:
                # too few items: K of them drawn with replacement
                picked = (rng.choice(members, k, replace=True)
                          if self.shuffle else np.resize(members, k))
            else:
                picked = rng.permutation(members) if self.shuffle else members
                picked = picked[:len(picked) - len(picked) % k]
            groups.append(picked.reshape(-1, k))
            left[ident] = len(groups[-1])
        taken = np.zeros(self.num_identities, dtype=np.int64)
        avail = np.flatnonzero(left)
        batches = []
        while len(avail) >= p:
            chosen = (rng.choice(avail, p, replace=False)
                      if self.shuffle else avail[:p])
            batches.append(np.stack(
                [groups[i][taken[i]] for i in chosen.tolist()]))
            taken[chosen] += 1
            avail = avail[taken[avail] < left[avail]]
        usable = len(batches) - len(batches) % self.world_size
        if usable == 0:
            raise RuntimeError(
                f'epoch {self.epoch} gave {len(batches)} batches, fewer than '
                f'one per rank ({self.world_size} ranks)')
        return np.stack(batches[:usable])

    def global_batches(self) -> np.ndarray:
        """The epoch's batches for all ranks: ``num_batches x P x K``.

        Deterministic given ``seed`` and ``epoch`` (and ``shuffle``); in
        ``'exhaust'`` mode ``num_batches`` varies with the epoch.
        """
        key = (self.seed, self.epoch, self.shuffle)
        if self._epoch_cache is not None and self._epoch_cache[0] == key:
            return self._epoch_cache[1]
        rng = np.random.default_rng([self.seed % 2**63, self.epoch])
        if self.mode == 'exhaust':
            batches = self._exhaust_batches(rng)
        else:
            batches = self._balanced_batches(rng)
        self._epoch_cache = (key, batches)
        return batches

    def _balanced_batches(self, rng: np.random.Generator) -> np.ndarray:
        """The ``'balanced'`` epoch: ``num_batches x P x K`` (all ranks)."""
        counts = self._group_counts(rng)
        idents = np.flatnonzero(counts)
        if self.shuffle:
            idents = rng.permutation(idents)
        groups = np.concatenate(
            [self._identity_groups(i, counts[i], rng) for i in idents])
        # position j * B + b goes to batch b: one identity's consecutive
        # groups (at most B of them) land in distinct batches
        batches = groups.reshape(self.ids_per_batch, self.num_batches,
                                 self.num_instances).transpose(1, 0, 2)
        if self.shuffle:
            batches = batches[rng.permutation(self.num_batches)]
            # an independent order of the P groups inside every batch
            inner = np.argsort(rng.random(batches.shape[:2]), axis=1)
            batches = np.take_along_axis(batches, inner[:, :, None], axis=1)
        return batches

    def __iter__(self) -> Iterator[int]:
        """Indices of this rank's batches, batch after batch."""
        batches = self.global_batches()
        mine = batches[self.rank::self.world_size]
        return iter(mine.reshape(-1).tolist())

    def __len__(self) -> int:
        """Number of indices this rank yields in the current epoch."""
        if self.mode == 'exhaust':
            return (len(self.global_batches()) // self.world_size *
                    self.ids_per_batch * self.num_instances)
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch, so every epoch (and rank) gets a new, reproducible
        order.

        Args:
            epoch (int): Epoch number.
        """
        self.epoch = epoch
