"""One prepared GPU session: every GPU training figure in one command.

Usage (on the GPU machine; ``gpu_session.sh`` wraps it with a hard
timeout and ``nvidia-smi``, after installing the wheels that
``gpu_wheels.py`` prepared where a package index was reachable)::

    python .dev_scripts/gpu_session.py --out DIR [--budget-s 420]
        [--amp bfloat16|float16|none] [--max-batch 4096] [--quick]

For CFine, the CFine baseline row, CLIP-ReID stage 2 and CCAF stage 2
(the ViT-B/16 configs of ``bench_cuda.py``, random weights, its synthetic
batches, autocast) it measures samples/s, GFLOP per sample, achieved
TFLOP/s, MFU and peak memory, and checks the device's losses, in four
phases, most important first:

1. ``eager``: the papers' batch sizes (CFine 32, CLIP-ReID / CCAF 64).
   The FLOPs of a step are counted at batch b/2, 3b/4 and b on the device
   (``bench_flops.count_step_flops``) and fitted exactly by a quadratic in
   the batch (``bench_flops``' module doc says why), which gives the FLOPs
   of the other batch sizes. The first step's losses (seed 0) are kept.
2. ``fidelity``: the first step's losses on the device against the CPU's,
   same weights and batch of 8, fp32 without TF32, every dropout at 0
   (CPU and CUDA generators differ; with dropout off a step draws no random
   number, checked on the CPU with two seeds): the equivalence harnesses
   tie the CPU path to the authors' code, this ties the device path to it.
3. ``max_batch``: the batch doubles from the paper's until a step runs out
   of memory (caught, the allocator's cache emptied) or ``--max-batch``;
   every size that fits is timed briefly, so the result is a curve.
4. ``compile``: the papers' batch sizes again with the image and text
   encoders compiled in place (``nn.Module.compile``: the state-dict keys
   stay; inductor on CUDA); the warm-up, where compilation happens, is
   reported as ``compile_s``. Inductor draws random numbers with eager's
   generator here (``fallback_random``), so the compiled first step's
   losses compare with the eager phase's at the same seed.

Loss comparisons go to ``loss_checks`` (a second table), flagged above
:data:`LOSS_RTOL`.

A phase's next unit starts only while the elapsed time is under
``--budget-s``; units left out are listed as skipped. The JSON
(``gpu_session.json``) and a markdown table (``gpu_session.md``) are
rewritten after every unit, so a session cut short keeps what it measured.

``--quick`` runs the clip-tiny configs on the CPU at batch 16 (search up
to 32, ``torch.compile`` with ``backend='eager'``): the code path, as a smoke
test, not a measurement.
"""
import argparse
import contextlib
import gc
import json
import os
import os.path as osp
import sys
import time
import traceback
from typing import Any, Dict, List, Optional

import torch

_HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(_HERE)
# siblings (bench_models, ...) and the package import as top-level modules
sys.path[:0] = [p for p in (_HERE, ROOT) if p not in sys.path]

import bench_cuda  # noqa: E402
import bench_flops  # noqa: E402
import bench_models as bm  # noqa: E402
from bench_common import machine_info  # noqa: E402

#: (name, ViT-B/16 config, clip-tiny stand-in of --quick)
UNITS = [
    ('CFine', 'configs/cfine/cfine_vit-b16-bert_cuhk-pedes.py',
     'configs/cfine/cfine_clip-tiny_synthpedes-tiny.py'),
    ('CFine baseline',
     'configs/cfine/cfine_vit-b16-bert_cuhk-pedes_ablation-baseline.py',
     'configs/cfine/cfine_clip-tiny_synthpedes-tiny_ablation-baseline.py'),
    ('CLIP-ReID stage 2', 'configs/clip_reid/clip-reid_vit-b16_prcc.py',
     'configs/ccaf/ccaf_clip-tiny_synthcc-tiny_ablation-baseline.py'),
    ('CCAF stage 2', 'configs/ccaf/ccaf_vit-b16_prcc.py',
     'configs/ccaf/ccaf_clip-tiny_synthcc-tiny.py'),
]
PHASES = ('eager', 'fidelity', 'max_batch', 'compile')

#: Batch of the GPU-vs-CPU loss check (P = 2 x K = 4 for the ReID models).
FIDELITY_BATCH = 8
#: Relative loss differences above these are flagged in the report: fp32
#: on the GPU against fp32 on the CPU (only summation order differs), and
#: the compiled step against the eager one under the same autocast (fused
#: kernels round bf16 intermediates at other points).
LOSS_RTOL = {'gpu_vs_cpu': 1e-3, 'compiled_vs_eager': 2e-2}

#: torch.OutOfMemoryError since 2.5 (torch.cuda's is an alias of it)
OOM = getattr(torch, 'OutOfMemoryError', torch.cuda.OutOfMemoryError)


def _free(device: str) -> None:
    gc.collect()
    if device.startswith('cuda'):  # GPU only
        torch.cuda.empty_cache()


def first_step_losses(side: dict, seed: int = 0) -> Dict[str, float]:
    """Every logged loss of one ``train_step`` from a fixed RNG state (the
    step updates the weights: it doubles as a warm-up step)."""
    torch.manual_seed(seed)  # every device's generator
    log = side['model'].train_step(side['data'], side['optim'])
    return {k: float(torch.as_tensor(v).detach()) for k, v in log.items()}


def max_rel_diff(value: Dict[str, float], ref: Dict[str, float]) -> float:
    """Largest ``|value - ref| / max(|ref|, 1e-8)`` over the losses."""
    if set(value) != set(ref):
        raise KeyError(f'different losses: {sorted(value)} vs {sorted(ref)}')
    return max(abs(value[k] - ref[k]) / max(abs(ref[k]), 1e-8) for k in ref)


def disable_dropout(model: torch.nn.Module) -> int:
    """Set every ``nn.Dropout*``'s ``p`` to 0 (Hugging Face BERT reads its
    attention dropout from ``.p`` too), so that a step draws no random
    mask: CPU and CUDA generators differ. The number changed."""
    n = 0
    for m in model.modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p:
            m.p = 0.0
            n += 1
    return n


@contextlib.contextmanager
def no_tf32():
    """Full fp32 matmuls and convolutions on CUDA inside the block."""
    old = (torch.backends.cuda.matmul.allow_tf32,
           torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = old


@contextlib.contextmanager
def eager_random(backend: str):
    """With inductor, draw random numbers with eager's generator
    (``fallback_random``), so that a compiled step's dropout masks are the
    eager step's at the same seed and their losses compare."""
    if backend != 'inductor':
        yield
        return
    import torch._inductor.config as inductor_config
    old = inductor_config.fallback_random
    inductor_config.fallback_random = True
    try:
        yield
    finally:
        inductor_config.fallback_random = old


def compile_encoders(model: torch.nn.Module, backend: str) -> List[str]:
    """Compile ``image_encoder`` / ``text_encoder`` in place, as the
    ``model.compile_encoders=dict(backend=...)`` config key does; their
    names."""
    from mmreid_clip.models.utils import compile_submodules
    return list(compile_submodules(model, dict(backend=backend)))


class Session:
    """The state of one session: settings, rows, clock, output files."""

    def __init__(self, out: str, quick: bool, device: str, amp: Optional[str],
                 budget_s: float, max_batch: int, steps: int, rounds: int,
                 warmup: int) -> None:
        self.out, self.quick, self.device, self.amp = out, quick, device, amp
        self.budget_s, self.max_batch = budget_s, max_batch
        self.steps, self.rounds, self.warmup = steps, rounds, warmup
        self.t0 = time.perf_counter()
        self.machine = machine_info(device)
        self.peak, self.peak_note = bench_flops.peak_tflops(
            self.machine.get('gpu'), amp)
        self.rows: List[Dict[str, Any]] = []
        self.skipped: List[str] = []
        self.fits: Dict[str, Dict[str, Any]] = {}
        self.checks: List[Dict[str, Any]] = []
        #: first-step losses of the eager phase, the compiled step's ref.
        self.eager_losses: Dict[str, Dict[str, float]] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def config(self, unit: tuple) -> str:
        return unit[2] if self.quick else unit[1]

    def paper_batch(self, unit: tuple) -> int:
        if self.quick:
            return 16
        return int(bm.load_config(unit[1]).train_dataloader['batch_size'])

    def flops_at(self, name: str, batch: int) -> Optional[float]:
        fit = self.fits.get(name)
        if fit is None:
            return None
        a, b, c = fit['coeffs']
        return a + b * batch + c * batch * batch

    def record(self, unit: tuple, phase: str, batch: int, timing: dict,
               **extra) -> Dict[str, Any]:
        """Append a row (samples/s, FLOP columns, peak memory) and save."""
        flops = self.flops_at(unit[0], batch)
        row = dict(
            name=unit[0],
            config=self.config(unit),
            phase=phase,
            batch=batch,
            step_s=timing['step_s'],
            round_s=timing['round_s'],
            samples_per_s=batch / timing['step_s'],
            peak_gib=(None if timing['peak_bytes'] is None else
                      timing['peak_bytes'] / 2**30),
            **extra)
        row.update(
            bench_cuda.flop_columns('x', None if flops is None else int(flops),
                                    batch, timing['step_s'], self.peak))
        for k in ('gflop_per_sample', 'tflops', 'mfu'):
            row[k] = row.pop('x_' + k)
        self.rows.append(row)
        self.save()
        return row

    def check(self, unit: tuple, kind: str, batch: int,
              value: Dict[str, float], ref: Dict[str, float],
              **extra) -> None:
        """Record a loss comparison (flagged above ``LOSS_RTOL[kind]``)."""
        diff = max_rel_diff(value, ref)
        self.checks.append(
            dict(
                name=unit[0],
                check=kind,
                batch=batch,
                max_rel_diff=diff,
                rtol=LOSS_RTOL[kind],
                ok=diff <= LOSS_RTOL[kind],
                losses=value,
                reference=ref,
                **extra))
        self.save()

    def time_side(self, side: dict, steps: int, rounds: int,
                  warmup: int) -> dict:
        return bench_cuda.time_pair({'x': side}, self.device, steps, rounds,
                                    warmup)['x']

    # ---------------------------------------------------------- phases --
    def eager(self, unit: tuple) -> None:
        side = bench_cuda.prepare(
            self.config(unit), self.device, self.amp, self.paper_batch(unit))
        cfg = bm.load_config(self.config(unit))
        b0 = side['batch']
        # the reference of the compiled step (also a warm-up step)
        self.eager_losses[unit[0]] = first_step_losses(side)
        # P x K batches need P >= 2 for the triplet loss: not below b0 / 2
        sizes = (b0 // 2, 3 * b0 // 4, b0)
        counts = {}
        for b in sizes:
            data = side['data'] if b == b0 else bench_flops.batch_for(
                cfg, side['model'], b)
            counts[b] = bench_flops.count_step_flops(side['model'], data,
                                                     side['optim'])
        a, lin, quad = bench_flops._quadratic(list(counts.items()))
        self.fits[unit[0]] = dict(
            counts={
                str(k): v
                for k, v in counts.items()
            },
            coeffs=[float(a), float(lin), float(quad)])
        t = self.time_side(side, self.steps, self.rounds, self.warmup)
        self.record(unit, 'eager', b0, t)
        del side
        _free(self.device)

    def fidelity(self, unit: tuple) -> None:
        """The first step's losses on the device against the CPU's: same
        weights and batch, fp32 without TF32, dropout off. The equivalence
        harnesses compare the CPU path with the authors' code; this ties
        the device path (fused attention kernels, value checks that stop
        reading, non-blocking copies) to it."""
        losses, dropouts = {}, 0
        for dev in ('cpu', self.device):
            side = bench_cuda.prepare(self.config(unit), dev, None,
                                      FIDELITY_BATCH)
            dropouts = disable_dropout(side['model'])
            with no_tf32():
                losses[dev] = first_step_losses(side)
            del side
            _free(dev)
        self.check(unit, 'gpu_vs_cpu', FIDELITY_BATCH, losses[self.device],
                   losses['cpu'], dropout_modules_off=dropouts,
                   device=self.device)

    def max_batch_search(self, unit: tuple) -> None:
        side = bench_cuda.prepare(
            self.config(unit), self.device, self.amp, self.paper_batch(unit))
        cfg = bm.load_config(self.config(unit))
        b, stop = side['batch'] * 2, None
        while stop is None:
            if b > self.max_batch:
                stop = f'cap {self.max_batch}'
                break
            if self.elapsed() > self.budget_s:
                stop = 'budget'
                break
            try:
                side['data'] = bench_flops.batch_for(cfg, side['model'], b)
                side['batch'] = b
                t = self.time_side(side, max(2, self.steps // 3), 1, 1)
            except OOM:
                stop = f'out of memory at batch {b}'
            else:
                self.record(unit, 'max_batch', b, t)
                b *= 2
            finally:
                side['optim'].zero_grad(set_to_none=True)
                side['data'] = None
                _free(self.device)
        # the last row of this unit holds the largest batch that fitted
        for row in reversed(self.rows):
            if row['name'] == unit[0] and row['phase'] == 'max_batch':
                row['search_stopped'] = stop
                break
        else:
            self.skipped.append(f'max_batch {unit[0]}: none fitted ({stop})')
        del side
        _free(self.device)
        self.save()

    def compiled(self, unit: tuple) -> None:
        side = bench_cuda.prepare(
            self.config(unit), self.device, self.amp, self.paper_batch(unit))
        backend = 'eager' if self.quick else 'inductor'
        names = compile_encoders(side['model'], backend)
        with eager_random(backend):
            w0 = time.perf_counter()
            # compilation happens in the warm-up; its first step is
            # compared with the eager phase's first step
            losses = first_step_losses(side)
            for _ in range(self.warmup - 1):
                side['model'].train_step(side['data'], side['optim'])
            bench_cuda._sync(self.device)
            compile_s = time.perf_counter() - w0
            t = self.time_side(side, self.steps, self.rounds, 0)
        ref = self.eager_losses.get(unit[0])
        if ref is not None:
            self.check(unit, 'compiled_vs_eager', side['batch'], losses, ref,
                       compile_backend=backend)
        self.record(
            unit,
            'compile',
            side['batch'],
            t,
            compiled=names,
            compile_backend=backend,
            compile_s=compile_s)
        del side
        _free(self.device)

    def run(self, phases=PHASES, units: Optional[List[str]] = None) -> None:
        """Run ``phases`` (in order) over :data:`UNITS` (or those named)."""
        bm._ensure_registered()
        if self.device.startswith('cuda'):  # GPU only: as bench_cuda.run
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        todo = {
            'eager': self.eager,
            'fidelity': self.fidelity,
            'max_batch': self.max_batch_search,
            'compile': self.compiled
        }
        for phase in phases:
            for unit in UNITS:
                if units and unit[0] not in units:
                    continue
                if self.elapsed() > self.budget_s:
                    self.skipped.append(f'{phase} {unit[0]}: budget')
                    continue
                try:
                    todo[phase](unit)
                except Exception as err:  # noqa: B902
                    # one failing unit (e.g. inductor missing a compiler)
                    # must not cost the loan's other figures
                    traceback.print_exc()
                    self.skipped.append(
                        f'{phase} {unit[0]}: {type(err).__name__}: {err}')
                    _free(self.device)
        self.save()

    # ---------------------------------------------------------- output --
    def report(self) -> Dict[str, Any]:
        return dict(
            machine=self.machine,
            quick=self.quick,
            amp=self.amp,
            peak_tflops=self.peak,
            peak_note=self.peak_note,
            flops_convention='multiply-add = 2; matmul/conv/'
            'attention (math kernel) only; bench_flops.py',
            steps=self.steps,
            rounds=self.rounds,
            warmup=self.warmup,
            budget_s=self.budget_s,
            elapsed_s=self.elapsed(),
            flop_fits=self.fits,
            rows=self.rows,
            loss_checks=self.checks,
            skipped=self.skipped)

    def save(self) -> None:
        report = bm._jsonable(self.report())
        with open(osp.join(self.out, 'gpu_session.json'), 'w') as f:
            json.dump(report, f, indent=2)
        with open(osp.join(self.out, 'gpu_session.md'), 'w') as f:
            f.write(format_report(report) + '\n')


def _n(v: Any, fmt: str = '.1f') -> str:
    return '-' if v is None else format(v, fmt)


def format_report(r: Dict[str, Any]) -> str:
    """Markdown table of a session report."""
    m = r['machine']
    lines = [
        f'device: {m.get("gpu") or "CPU"} ({m["device"]}), torch '
        f'{m["torch"]}, CUDA {m.get("cuda_version")}, autocast {r["amp"]}, '
        f'{m["date"]}, quick={r["quick"]}; MFU against {r["peak_note"]}; '
        f'{r["elapsed_s"]:.0f} s', '',
        '| config | phase | batch | samples/s | GFLOP/sample | TFLOP/s | '
        'MFU | peak GiB | note |', '|---|---|---|---|---|---|---|---|---|'
    ]
    for row in r['rows']:
        note = []
        if row.get('compiled'):
            note.append(f'compiled {"+".join(row["compiled"])} '
                        f'({row["compile_backend"]}, warm-up '
                        f'{row["compile_s"]:.0f} s)')
        if row.get('search_stopped'):
            note.append(f'largest fitted; stopped: {row["search_stopped"]}')
        mfu = None if row['mfu'] is None else 100 * row['mfu']
        lines.append(
            f'| {row["name"]} | {row["phase"]} | {row["batch"]} | '
            f'{_n(row["samples_per_s"])} | {_n(row["gflop_per_sample"])} | '
            f'{_n(row["tflops"], ".2f")} | '
            f'{"-" if mfu is None else f"{mfu:.1f}%"} | '
            f'{_n(row["peak_gib"])} | {"; ".join(note)} |')
    if r.get('loss_checks'):
        lines += [
            '', '| config | loss check | batch | max rel. diff | '
            'flagged above | result |', '|---|---|---|---|---|---|'
        ]
        for c in r['loss_checks']:
            lines.append(f'| {c["name"]} | {c["check"]} | {c["batch"]} | '
                         f'{c["max_rel_diff"]:.2e} | {c["rtol"]:.0e} | '
                         f'{"ok" if c["ok"] else "MISMATCH"} |')
    if r['skipped']:
        lines += ['', 'skipped: ' + '; '.join(r['skipped'])]
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out',
        default=os.environ.get('OUT', '.'),
        help='output folder (default: $OUT, else .)')
    parser.add_argument(
        '--budget-s',
        type=float,
        default=420.0,
        help='start no unit after this many seconds')
    parser.add_argument(
        '--amp', default='bfloat16', choices=['bfloat16', 'float16', 'none'])
    parser.add_argument('--max-batch', type=int, default=4096)
    parser.add_argument(
        '--phases', nargs='+', default=list(PHASES), choices=PHASES)
    parser.add_argument(
        '--units',
        nargs='+',
        choices=[u[0] for u in UNITS],
        help='default: all')
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument(
        '--quick',
        action='store_true',
        help='clip-tiny on the CPU, batch 16 to 32, '
        'compile backend eager (smoke test)')
    args = parser.parse_args(argv)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel('WARNING')
    if args.quick:
        device, amp = 'cpu', None
        steps, rounds, warmup, max_batch = 1, 1, 1, min(args.max_batch, 32)
    else:
        if not torch.cuda.is_available():
            parser.error('no CUDA device: run with --quick for the CPU '
                         'smoke test')
        device, amp = 'cuda', None if args.amp == 'none' else args.amp
        steps, rounds, warmup = args.steps, args.rounds, args.warmup
        max_batch = args.max_batch
    os.makedirs(args.out, exist_ok=True)
    session = Session(args.out, args.quick, device, amp, args.budget_s,
                      max_batch, steps, rounds, warmup)
    session.run(args.phases, args.units)
    print(format_report(session.report()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
