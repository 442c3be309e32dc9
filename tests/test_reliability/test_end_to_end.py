"""End-to-end reliability of tools/train.py and tools/test.py on the tiny
SynthPedes config: determinism, kill -9 and --resume, 1- vs 2-process
parity, and the checkpoint checks of tools/test.py.

Runs that do not depend on each other run two at a time (the machine has
two cores); each is a few iterations.
"""
import json
import os
import os.path as osp
import random
import re
import runpy
import signal
import socket
import subprocess
import sys

import pytest
import torch

from mmreid_clip.safe_load import UnsafeCheckpointError, safe_torch_load
from mmreid_clip.utils import CheckpointMismatchError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HERE = osp.dirname(osp.abspath(__file__))
CFG = osp.join(ROOT, 'configs/baselines/clip-baseline_synthpedes-tiny.py')
CFINE = osp.join(ROOT, 'configs/cfine/cfine_clip-tiny_synthpedes-tiny.py')
METRICS = ('t2i/R@1', 't2i/R@5', 't2i/R@10', 't2i/mAP', 't2i/mINP')
TRAIN_KEYS = ('loss', 'loss_infonce', 'loss_id', 'grad_norm', 'lr')
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def synth_root(tmp_path_factory):
    from mmreid_synth import generate_synth_pedes
    root = str(tmp_path_factory.mktemp('synth') / 'synth-pedes')
    # test split: 9 images + 18 captions = 27 items, odd on purpose
    generate_synth_pedes(
        root,
        seed=1,
        train_ids=8,
        val_ids=3,
        test_ids=3,
        images_per_id=dict(train=2, val=2, test=3))
    return root


def options(root, work, epochs=3, *extra):
    # 32 train pairs / 16 = 2 iterations per epoch; validation on the test
    # split every epoch; deterministic algorithms
    return [
        '--work-dir', work, '--cfg-options',
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        'val_dataloader.dataset.split=test', 'train_dataloader.batch_size=16',
        'model.id_head.num_classes=8', f'train_cfg.max_epochs={epochs}',
        'train_cfg.val_interval=1', 'default_hooks.logger.interval=1',
        'randomness.seed=0', 'randomness.deterministic=True', *extra
    ]


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return str(sock.getsockname()[1])


def env(**extra):
    return dict(
        os.environ,
        OMP_NUM_THREADS='1',
        PYTHONUNBUFFERED='1',
        PYTHONPATH=HERE + os.pathsep + os.environ.get('PYTHONPATH', ''),
        **extra)


def start(args, **extra_env):
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env(**extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True)


def finish(*procs, timeout=600):
    outs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, out[-4000:]
        outs.append(out)
    return outs


def train(work, root, *extra, epochs=3):
    return start([sys.executable, 'tools/train.py', CFG] +
                 options(root, work, epochs, *extra))


def runs(work):
    """The scalar rows of each run logged in ``work``, oldest first."""
    files = sorted(
        osp.join(dp, f) for dp, _, fs in os.walk(work) for f in fs
        if f.endswith('.json') and osp.basename(dp) == 'vis_data')
    return [[json.loads(line) for line in open(f)] for f in files]


def val_rows(rows):
    return [{k: r[k] for k in METRICS} for r in rows if 't2i/R@1' in r]


def train_rows(rows):
    return {
        r['step']: {
            k: r[k]
            for k in TRAIN_KEYS if k in r
        }
        for r in rows if 'loss' in r
    }


@pytest.fixture(scope='module')
def reference(synth_root, tmp_path_factory):
    """Two uninterrupted runs of the same config and seed, side by side."""
    works = [str(tmp_path_factory.mktemp(f'ref{i}')) for i in range(2)]
    finish(*[train(w, synth_root) for w in works])
    return works


def test_same_config_and_seed_give_identical_metrics(reference):
    first, second = [runs(w)[-1] for w in reference]
    assert len(val_rows(first)) == 3
    # bit-identical: exact equality of every metric and every logged loss
    assert val_rows(first) == val_rows(second)
    assert train_rows(first) == train_rows(second)
    assert len(train_rows(first)) == 6


def test_kill_9_then_resume_reaches_the_same_metrics(reference, synth_root,
                                                     tmp_path):
    work = str(tmp_path / 'killed')
    # a random (seeded) iteration after the first checkpoint: 3, 4 or 5 of 6
    target = random.Random(20261130).randint(3, 5)
    proc = train(work, synth_root)
    saved, step, log = False, 0, []
    for line in proc.stdout:
        log.append(line)
        saved = saved or 'Saving checkpoint at 1 epochs' in line
        m = re.search(r'Epoch\(train\)\s+\[(\d+)\]\[(\d+)/(\d+)\]', line)
        if m:
            step = (int(m[1]) - 1) * int(m[3]) + int(m[2])
        if saved and step >= target:
            proc.send_signal(signal.SIGKILL)
            break
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, ''.join(log[-30:])

    # whatever the moment of the kill, the pointer names a whole checkpoint
    with open(osp.join(work, 'last_checkpoint')) as f:
        latest = f.read()
    resumed_from = safe_torch_load(latest)['meta']['epoch']
    assert resumed_from in (1, 2)

    out, = finish(
        start([sys.executable, 'tools/train.py', CFG, '--resume'] +
              options(synth_root, work)))
    assert f'resumed epoch: {resumed_from}' in out
    assert 'Restored the random generators' in out
    resumed = runs(work)[-1]
    full = runs(reference[0])[-1]
    # the epochs run after resuming repeat the uninterrupted run exactly
    assert val_rows(resumed) == val_rows(full)[resumed_from:]
    after = train_rows(resumed)
    assert sorted(after) == list(range(2 * resumed_from + 1, 7))
    assert after == {k: v for k, v in train_rows(full).items() if k in after}


def test_two_processes_match_one(synth_root, tmp_path):
    """Same global batch (16 = 2 x 8) and a loss that averages over samples
    (the identity loss; InfoNCE's negatives are per rank, see
    docs/reliability.md), no random flip: the 2-process gloo run must give
    the metrics of the 1-process run within 0.01 points, on a test set
    of 27 items (not divisible by 2, nor by the batch size of 4)."""
    extra = [
        'model.losses=[]', 'train_dataloader.dataset.pipeline.2.prob=0.0',
        'val_dataloader.batch_size=4'
    ]
    one = train(str(tmp_path / 'one'), synth_root, *extra, epochs=1)
    two = start([
        'bash', 'tools/dist_train.sh', CFG, '2',
        *options(synth_root, str(tmp_path / 'two'), 1, *extra,
                 'train_dataloader.batch_size=8')
    ],
                PYTHON=sys.executable,
                PORT=free_port())
    out_one, out_two = finish(one, two)
    for out in (out_one, out_two):
        # every gallery image and every query exactly once
        assert 't2i: 18 caption queries x 9 images' in out
        assert 'repeated images' not in out
    rows_one, rows_two = runs(str(tmp_path / 'one'))[-1], runs(
        str(tmp_path / 'two'))[-1]
    (m1, ), (m2, ) = val_rows(rows_one), val_rows(rows_two)
    for key in METRICS:
        assert m2[key] == pytest.approx(m1[key], abs=0.01), key
    g1, g2 = train_rows(rows_one), train_rows(rows_two)
    assert sorted(g1) == sorted(g2) == [1, 2]
    for step in g1:
        assert g2[step]['grad_norm'] == pytest.approx(
            g1[step]['grad_norm'], rel=1e-4)


def test_cfine_two_processes_match_one_accumulating(synth_root, tmp_path):
    """CFine's losses are batch-level (CMPM and the triplet over in-batch
    pairs, BatchNorm in MGF), so 2 x 8 is not 1 x 16. What DDP must give is
    the one-process computation that accumulates the same two batches per
    step: the identity sampler hands step s of the ranks global batches
    2s and 2s + 1, the two batches one process with
    ``accumulative_counts=2`` steps on. Rank 0's losses are the one
    process's losses of the odd micro-steps and the gradient norms of the
    updates agree, exactly.

    The metrics are not compared with the one-process run: BatchNorm's
    running statistics (used at inference) are updated once per batch by
    one process and averaged over the ranks after the epoch by two. What
    is checked instead: the 2-process validation equals a 1-process
    ``tools/test.py`` of the 2-process checkpoint, i.e. every rank
    evaluated the saved model (without SyncBuffersHook each rank kept its
    own statistics and the two disagreed)."""
    extra = [
        'model.losses.1.num_classes=8',
        'train_dataloader.dataset.pipeline.2.prob=0.0',
        'train_dataloader.batch_size=8',
        'train_dataloader.sampler.type=IdentityBalancedSampler',
        'train_dataloader.sampler.num_instances=2',
        'train_dataloader.sampler.batch_size=8',
        # the same 4 batches every epoch for any number of ranks that
        # divides 4, and the logged losses per iteration (no smoothing)
        'train_dataloader.sampler.mode=balanced',
        'log_processor.window_size=1',
        # the warm-up by epoch: by iteration it would count one process's
        # micro-steps, twice the ranks' steps
        'param_scheduler.0.convert_to_iter_based=False',
        'val_dataloader.batch_size=4', 'test_dataloader.batch_size=4'
    ]

    def cfine_options(work, *more):
        opts = options(synth_root, work, 1, *extra, *more)
        return [o for o in opts if not o.startswith('model.id_head')]

    one = start([sys.executable, 'tools/train.py', CFINE] + cfine_options(
        str(tmp_path / 'one'), 'optim_wrapper.accumulative_counts=2'))
    two = start(['bash', 'tools/dist_train.sh', CFINE, '2'] +
                cfine_options(str(tmp_path / 'two')),
                PYTHON=sys.executable,
                PORT=free_port())
    finish(one, two)
    rows_one, rows_two = runs(str(tmp_path / 'one'))[-1], runs(
        str(tmp_path / 'two'))[-1]
    micro = {r['step']: r for r in rows_one if 'loss' in r}
    steps = {r['step']: r for r in rows_two if 'loss' in r}
    assert sorted(micro) == [1, 2, 3, 4] and sorted(steps) == [1, 2]
    for step, row in steps.items():
        for key in ('loss', 'loss_cmpm', 'loss_cmpc', 'loss_triplet'):
            assert row[key] == pytest.approx(
                micro[2 * step - 1][key], rel=1e-5, abs=1e-4), (step, key)
        assert row['grad_norm'] == pytest.approx(
            micro[2 * step]['grad_norm'], rel=1e-4), step
    out = str(tmp_path / 'test.json')
    finish(start([
        sys.executable, 'tools/test.py', CFINE,
        str(tmp_path / 'two' / 'epoch_1.pth'), '--work-dir',
        str(tmp_path / 'test'), '--out', out, '--cfg-options',
        f'test_dataloader.dataset.data_root={synth_root}',
        'model.losses.1.num_classes=8', 'test_dataloader.batch_size=4'
    ]))
    with open(out) as f:
        tested = json.load(f)
    (validated, ) = val_rows(rows_two)
    for key in METRICS:
        assert tested[key] == pytest.approx(validated[key], abs=1e-6), key


# ----------------------------------------------------------------------
# tools/test.py, in this process


def run_test_tool(monkeypatch, tmp_path, config, checkpoint, root):
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setattr(sys, 'argv', [
        'test.py', config, checkpoint, '--work-dir',
        str(tmp_path / 'test'), '--cfg-options',
        f'test_dataloader.dataset.data_root={root}',
        f'experiment_name=test_{tmp_path.name}'
    ])
    runpy.run_path(osp.join(ROOT, 'tools/test.py'), run_name='__main__')


def test_checkpoint_of_another_architecture_is_refused(monkeypatch, tmp_path,
                                                       reference, synth_root):
    ckpt = osp.join(reference[0], 'epoch_3.pth')
    with pytest.raises(CheckpointMismatchError) as err:
        run_test_tool(monkeypatch, tmp_path, CFINE, ckpt, synth_root)
    msg = str(err.value)
    assert msg.startswith(f'{ckpt} does not fit the CFine model')
    assert 'missing from the checkpoint: ' in msg and 'neck.*' in msg
    assert 'unexpected in the checkpoint: ' in msg and 'id_head.*' in msg
    assert "trained as model type 'CLIPTextImageReID'" in msg


def test_malicious_checkpoint_is_refused(monkeypatch, tmp_path, reference,
                                         synth_root):
    marker = tmp_path / 'pwned'

    class Payload:

        def __reduce__(self):
            return (os.system, (f'touch {marker}', ))

    good = torch.load(
        osp.join(reference[0], 'epoch_3.pth'), weights_only=False)
    evil = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict=good['state_dict'], meta=Payload()), evil)
    monkeypatch.delenv('MMREID_TRUST_CHECKPOINTS', raising=False)
    with pytest.raises(UnsafeCheckpointError, match='evil.pth.*system'):
        run_test_tool(monkeypatch, tmp_path, CFG, evil, synth_root)
    assert not marker.exists()


# ----------------------------------------------------------------------
# child processes on the toy model


def test_sigkill_during_checkpoint_writes(tmp_path):
    """SIGKILL a run that writes a ~20 MB checkpoint every epoch at known
    points inside the writes (the child kills itself right before a given
    rename): the pointer always names a complete checkpoint, the one the
    kill point implies, and no file under a final name is truncated."""
    work = str(tmp_path / 'work')
    pointer = osp.join(work, 'last_checkpoint')
    # (resume, kill before the rename onto this name, epoch the pointer
    # then names); each run resumes from what the previous one left
    cases = [
        (False, 'epoch_3.pth', 2),  # epoch 3 written, not renamed
        (True, 'last_checkpoint', 2),  # epoch 3 renamed, pointer not moved
        (True, 'epoch_4.pth', 3),  # pointer at 3, epoch 4 not renamed
    ]
    for resume, kill_before, pointer_epoch in cases:
        proc = start([
            sys.executable, '-c', 'import reliability_helpers as h; '
            f'h.keep_saving({work!r}, 400000, {resume}, {kill_before!r})'
        ])
        out = proc.communicate(timeout=600)[0]
        assert proc.returncode == -signal.SIGKILL, out[-3000:]
        latest = open(pointer).read()
        assert osp.basename(latest) == f'epoch_{pointer_epoch}.pth'
        assert safe_torch_load(latest)['meta']['epoch'] == pointer_epoch
        for name in os.listdir(work):
            if name.endswith('.pth'):
                safe_torch_load(osp.join(work, name))  # none is truncated


def test_nan_on_one_rank_is_skipped_on_every_rank(tmp_path):
    """2 gloo processes, NonFiniteLossHook(action='skip'), a NaN on rank 1
    only: both ranks skip the step (one stepping alone would hang DDP),
    training finishes and the ranks keep identical weights."""
    work = str(tmp_path / 'work')
    os.makedirs(work)
    port = free_port()
    procs = []
    for rank in range(2):
        procs.append(
            subprocess.Popen([
                sys.executable, '-c', 'import reliability_helpers as h; '
                f'h.ddp_nan_on_one_rank({work!r}, bad_rank=1)'
            ],
                             cwd=ROOT,
                             env=dict(
                                 env(),
                                 MASTER_ADDR='127.0.0.1',
                                 MASTER_PORT=port,
                                 RANK=str(rank),
                                 LOCAL_RANK=str(rank),
                                 WORLD_SIZE='2'),
                             stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT,
                             text=True))
    finish(*procs, timeout=300)
    r0, r1 = [torch.load(osp.join(work, f'rank{r}.pt')) for r in range(2)]
    assert r0['skipped'] == r1['skipped'] == 1
    assert r0['calls'] == r1['calls'] == 4  # 8 samples per rank, batch 4
    for r in (r0, r1):
        # iteration 3 starts from the weights iteration 2 started from
        assert all(
            torch.equal(r['seen'][2][k], r['seen'][1][k])
            for k in r['seen'][1])
    assert all(
        torch.equal(r0['final'][k], r1['final'][k]) for k in r0['final'])
