"""IdentityBalancedSampler: P x K batches, determinism, rank slices."""
import collections

import numpy as np
import pytest

from mmreid_clip.datasets.samplers import (IdentityBalancedSampler,
                                           identity_sampler)
from mmreid_clip.registry import DATA_SAMPLERS


class PidDataset:
    """Only ``get_data_info(i)['pid']``, like any mmengine dataset."""

    def __init__(self, pids):
        self.pids = list(pids)
        self.calls = 0

    def __len__(self):
        return len(self.pids)

    def get_data_info(self, idx):
        self.calls += 1
        return dict(pid=self.pids[idx])


def imbalanced_pids():
    # identity i has 1 + (3 * i) % 11 items: 1..11 items, shuffled order
    pids = [i for i in range(40) for _ in range(1 + (3 * i) % 11)]
    return np.random.default_rng(0).permutation(pids).tolist()


def batches_of(sampler, batch_size):
    order = list(sampler)
    assert len(order) == len(sampler)
    assert len(order) % batch_size == 0
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


MODES = pytest.mark.parametrize('mode', ['exhaust', 'balanced'])


@MODES
@pytest.mark.parametrize('k, batch_size', [(4, 16), (2, 8), (3, 3)])
def test_every_batch_is_p_by_k(k, batch_size, mode):
    ds = PidDataset(imbalanced_pids())
    sampler = IdentityBalancedSampler(
        ds, num_instances=k, batch_size=batch_size, seed=1, mode=mode)
    assert ds.calls == len(ds)  # pids read once, at construction
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for batch in batches_of(sampler, batch_size):
            counts = collections.Counter(ds.pids[i] for i in batch)
            assert len(counts) == batch_size // k
            assert set(counts.values()) == {k}
    assert ds.calls == len(ds)


def test_epoch_covers_about_the_dataset():
    pids = imbalanced_pids()
    sampler = IdentityBalancedSampler(
        PidDataset(pids), num_instances=4, batch_size=16, seed=0,
        mode='balanced')
    # round(N / K) groups, cut to whole batches of 4 groups
    groups = int(len(pids) / 4 + 0.5)
    assert len(sampler) == groups // 4 * 16
    assert abs(len(sampler) - len(pids)) < 16
    seen = set(sampler)
    # items are drawn about once: most of the dataset is seen each epoch
    # (identities with fewer than K items take K slots for fewer items)
    assert len(seen) > 0.8 * len(pids)


@MODES
def test_small_identities_sampled_with_replacement(mode):
    pids = [0] * 1 + [1] * 2 + [2] * 4 + [3] * 5
    sampler = IdentityBalancedSampler(
        PidDataset(pids), num_instances=4, batch_size=8, seed=3, mode=mode)
    groups = sampler.global_batches().reshape(-1, 4)
    for group in groups:
        assert len({pids[i] for i in group}) == 1
    by_pid = {pids[g[0]]: sorted(g) for g in groups}
    assert by_pid.get(0, [0] * 4) == [0] * 4  # one image, repeated K times
    if 1 in by_pid and mode == 'balanced':
        assert set(by_pid[1]) == {1, 2}  # both images, one repeated
    if 1 in by_pid:
        assert set(by_pid[1]) <= {1, 2}


def test_heavy_identity_is_capped():
    # one identity with 40 items, three with 4: a batch of 4 identities
    # can hold the big one only once, so it cannot fill the epoch alone
    pids = [0] * 40 + [1] * 4 + [2] * 4 + [3] * 4
    sampler = IdentityBalancedSampler(
        PidDataset(pids), num_instances=4, batch_size=16, seed=0,
        mode='balanced')
    batches = batches_of(sampler, 16)
    assert len(batches) == len(pids) // 4 // 4
    for batch in batches:
        assert collections.Counter(pids[i] for i in batch) == {
            0: 4,
            1: 4,
            2: 4,
            3: 4
        }


@MODES
def test_deterministic_by_seed_and_epoch(mode):
    ds = PidDataset(imbalanced_pids())

    def order(seed, epoch):
        s = IdentityBalancedSampler(ds, 4, batch_size=16, seed=seed,
                                    mode=mode)
        s.set_epoch(epoch)
        return list(s)

    assert order(5, 0) == order(5, 0)
    assert order(5, 1) == order(5, 1)
    assert order(5, 0) != order(5, 1)
    assert order(5, 0) != order(6, 0)


@MODES
def test_no_shuffle_is_fixed_and_ordered(mode):
    pids = [2, 0, 1, 0, 2, 1, 0, 2, 1, 0, 1, 2]
    s = IdentityBalancedSampler(
        PidDataset(pids), num_instances=2, batch_size=6, shuffle=False,
        seed=0, mode=mode)
    first = list(s)
    s.set_epoch(3)
    assert list(s) == first
    for batch in batches_of(s, 6):
        assert sorted(collections.Counter(pids[i] for i in batch).values()) \
            == [2, 2, 2]


@MODES
def test_ranks_get_disjoint_equal_interleaved_batches(monkeypatch, mode):
    # every identity has a multiple of K items: no index is drawn twice
    pids = [i for i in range(23) for _ in range(4 * (1 + i % 3))]
    ds = PidDataset(pids)
    world = 3
    per_rank = []
    for rank in range(world):
        monkeypatch.setattr(
            identity_sampler, 'get_dist_info', lambda rank=rank: (rank, world))
        s = IdentityBalancedSampler(ds, num_instances=4, batch_size=8, seed=7,
                                    mode=mode)
        s.set_epoch(2)
        per_rank.append(list(s))
        assert len(s) == len(per_rank[-1])
        global_order = s.global_batches().reshape(-1).tolist()
    assert len({len(o) for o in per_rank}) == 1
    assert len(per_rank[0]) % 8 == 0
    # step s of the ranks together is global batches s*W .. s*W+W-1
    steps = len(per_rank[0]) // 8
    assert steps * world * 8 == len(global_order)
    assert [
        i for step in range(steps) for rank in range(world)
        for i in per_rank[rank][step * 8:(step + 1) * 8]
    ] == global_order
    for a in range(world):
        for b in range(a + 1, world):
            assert not set(per_rank[a]) & set(per_rank[b])
    for batch in batches_of(s, 8):
        assert len({pids[i] for i in batch}) == 2


def test_unsynchronised_seed_is_drawn_via_sync_random_seed(monkeypatch):
    monkeypatch.setattr(identity_sampler, 'sync_random_seed', lambda: 1234)
    s = IdentityBalancedSampler(PidDataset([0, 0, 1, 1]), 2, batch_size=4)
    assert s.seed == 1234


def test_without_batch_size_yields_k_groups():
    pids = imbalanced_pids()
    s = IdentityBalancedSampler(PidDataset(pids), num_instances=4, seed=0,
                                mode='balanced')
    order = list(s)
    assert len(order) == int(len(pids) / 4 + 0.5) * 4
    for i in range(0, len(order), 4):
        assert len({pids[j] for j in order[i:i + 4]}) == 1


def test_bad_arguments():
    ds = PidDataset([0, 0, 1, 1])
    with pytest.raises(ValueError, match='multiple of num_instances'):
        IdentityBalancedSampler(ds, num_instances=4, batch_size=6)
    with pytest.raises(ValueError, match='at least 3 identities'):
        IdentityBalancedSampler(ds, num_instances=2, batch_size=6)
    with pytest.raises(ValueError, match='num_instances'):
        IdentityBalancedSampler(ds, num_instances=0)
    with pytest.raises(TypeError, match='get_pids'):
        IdentityBalancedSampler([1, 2, 3], num_instances=1, batch_size=1)
    with pytest.raises(ValueError, match='needs batch_size'):
        IdentityBalancedSampler(ds, num_instances=2)
    with pytest.raises(ValueError, match='mode must be one of'):
        IdentityBalancedSampler(ds, num_instances=2, batch_size=4,
                                mode='official')


def test_exhaust_stops_when_fewer_than_p_identities_are_left():
    # P = 3 = every identity: each batch takes one group of each, so the
    # epoch ends when the smallest identity runs out (2 groups), and the
    # identities' remainders (n mod K) are never drawn
    pids = [0] * 8 + [1] * 13 + [2] * 22
    s = IdentityBalancedSampler(PidDataset(pids), num_instances=4,
                                batch_size=12, seed=0)
    for epoch in range(3):
        s.set_epoch(epoch)
        order = list(s)
        assert len(order) == len(s) == 2 * 12
        assert len(set(order)) == len(order)  # no item twice in an epoch
    bal = IdentityBalancedSampler(PidDataset(pids), num_instances=4,
                                  batch_size=12, seed=0, mode='balanced')
    assert len(bal) == 3 * 12


def test_exhaust_epoch_is_shorter_on_uneven_identities():
    # a PRCC-like training set: 150 identities with 3-500 items (18,170);
    # identities are drawn uniformly, so large ones are left over and the
    # strong baseline's sampler gives ~258 batches of 64, not 284
    rng = np.random.default_rng(3)
    counts = np.clip(rng.lognormal(np.log(100), 0.6, 150).astype(int), 3,
                     500)
    pids = np.repeat(np.arange(150), counts).tolist()
    lengths = []
    for seed in range(3):
        s = IdentityBalancedSampler(PidDataset(pids), num_instances=4,
                                    batch_size=64, seed=seed)
        batches = batches_of(s, 64)
        lengths.append(len(batches))
        for batch in batches:
            assert sorted(collections.Counter(
                pids[i] for i in batch).values()) == [4] * 16
    bound = int((counts - counts % 4).sum() / 64)
    assert all(240 <= n <= 275 for n in lengths), lengths
    assert max(lengths) < 0.95 * bound


def test_registry_and_large_dataset_epoch_is_vectorised(monkeypatch):
    """CUHK-PEDES-sized: 68k items, 11k identities. What keeps an epoch
    fast is checked by counting, not timing: the pids are read in one
    ``get_pids()`` call (never item by item), the epoch is drawn once
    (``len`` and ``iter`` share it) and the per-identity work runs at most
    once per identity."""

    class Big:

        def __init__(self):
            rng = np.random.default_rng(0)
            self.pids = np.repeat(
                np.arange(11003), rng.choice([4, 6, 8], 11003))
            self.pid_reads = 0

        def __len__(self):
            return len(self.pids)

        def get_pids(self):
            self.pid_reads += 1
            return self.pids

        def get_data_info(self, idx):
            raise AssertionError('pids read item by item')

    calls = collections.Counter()

    def counted(name):
        original = getattr(IdentityBalancedSampler, name)

        def wrapper(self, *args, **kwargs):
            calls[name] += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(IdentityBalancedSampler, name, wrapper)

    for name in ('_balanced_batches', '_exhaust_batches', '_identity_groups'):
        counted(name)

    ds = Big()
    # exhaust drops each identity's n mod K items (6 items: one group)
    usable = int((ds.pids.size - (np.bincount(ds.pids) % 4).sum()))
    for mode, expected in (('balanced', len(ds)), ('exhaust', usable)):
        calls.clear()
        ds.pid_reads = 0
        sampler = DATA_SAMPLERS.build(
            dict(type='IdentityBalancedSampler', num_instances=4,
                 batch_size=64, mode=mode),
            default_args=dict(dataset=ds, seed=0))
        assert len(sampler) > 0
        order = np.fromiter(iter(sampler), dtype=np.int64)
        assert ds.pid_reads == 1, mode
        assert calls[f'_{mode}_batches'] == 1, mode
        assert calls['_identity_groups'] <= 11003, mode
        assert abs(len(order) - expected) < 64 * 4, mode
        per_batch = ds.pids[order].reshape(-1, 64)
        assert all(len(np.unique(b)) == 16 for b in per_batch[:50])
