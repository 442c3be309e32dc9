"""GPU training throughput of the ViT-B/16 methods (AMP, peak memory).

Usage::

    python .dev_scripts/bench_cuda.py [--json out.json] [--steps N]
        [--rounds R] [--amp bfloat16|float16|none] [--quick]

For each method and its baseline (CFine vs the CFine baseline row of
``docs/methods/cfine.md`` §10 on CUHK-PEDES with BERT-base; CCAF vs CLIP-ReID
on
PRCC), built from the real ViT-B/16 configs with random weights, it runs
``model.train_step`` (data preprocessor, forward, backward, optimizer
step(s)) with the config's optimizer wrappers switched to autocast
(:func:`mmreid_clip.utils.apply_amp`, bf16 by default) at the configs'
batch sizes (the papers': CFine 32 pairs, CCAF / CLIP-ReID 64 = 16 ids x 4
images), and reports samples/s, the method / baseline step-time ratio and
the peak GPU memory of each (``torch.cuda.max_memory_allocated``, the
model, optimizer state and activations of a step), and the GFLOP per sample
of a step (one step counted under ``FlopCounterMode`` at the timed batch;
``bench_flops.py``) with the MFU it gives against the device's dense peak
(``bench_flops.PEAK_TFLOPS``; omitted for a device not in the table).
``gpu_session.py`` runs every GPU figure (eager, compiled, largest batch)
in one command.

The batch is synthetic but shaped like the real one: uint8 images at the
config's input size (CCAF also its shielding view), token ids of caption
lengths (``bench_models.make_texts``) at the tokenizer's context length,
person ids drawn from the config's ``num_classes`` (CCAF: a P x K batch
whose clothes ids come from a ``pid2clothes`` table of the config's
``num_clothes``). Data loading is not part of the step (the CPU benchmark
``bench_models.py`` measures the pipelines). CCAF is timed in stage 2 with
CFM active (its costliest step: two views through the image tower and the
clothes examiner through the text tower every step).

Each side runs ``--rounds`` rounds of ``--steps`` steps after a warm-up,
alternating method and baseline round by round, and keeps its best round.

``--quick`` runs the clip-tiny configs at batch 8 on the CPU without
autocast (the code path of the tests, not a measurement).
"""
import argparse
import math
import os.path as osp
import sys
import time
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import bench_models as bm  # noqa: E402
from bench_common import machine_info  # noqa: E402

#: method / baseline config pairs; ``quick`` is the clip-tiny stand-in
PAIRS: List[Dict[str, str]] = [
    dict(
        name='cfine',
        size='ViT-B/16 224x224 + BERT-base, CUHK-PEDES',
        method='configs/cfine/cfine_vit-b16-bert_cuhk-pedes.py',
        reference='configs/cfine/'
        'cfine_vit-b16-bert_cuhk-pedes_ablation-baseline.py',
        label='CFine',
        ref_label='CFine baseline row (CLS + CMPM + CMPC)',
        quick_method='configs/cfine/cfine_clip-tiny_synthpedes-tiny.py',
        quick_reference='configs/cfine/'
        'cfine_clip-tiny_synthpedes-tiny_ablation-baseline.py'),
    dict(
        name='ccaf',
        size='ViT-B/16 256x128, PRCC',
        method='configs/ccaf/ccaf_vit-b16_prcc.py',
        reference='configs/clip_reid/clip-reid_vit-b16_prcc.py',
        label='CCAF stage 2',
        ref_label='CLIP-ReID stage 2',
        quick_method='configs/ccaf/ccaf_clip-tiny_synthcc-tiny.py',
        quick_reference='configs/ccaf/'
        'ccaf_clip-tiny_synthcc-tiny_ablation-baseline.py'),
]


def _find_int(node: Any, key: str) -> Optional[int]:
    """The first integer value of ``key`` in a nested config."""
    if isinstance(node, dict):
        if isinstance(node.get(key), int):
            return int(node[key])
        for value in node.values():
            found = _find_int(value, key)
            if found is not None:
                return found
    elif isinstance(node, (list, tuple)):
        for value in node:
            found = _find_int(value, key)
            if found is not None:
                return found
    return None


def _img_size(cfg) -> tuple:
    size = cfg.model['image_encoder'].get('img_size')
    if size is None:
        raise KeyError('model.image_encoder.img_size is not set: the input '
                       'size of the synthetic batch is unknown')
    return (size, size) if isinstance(size, int) else tuple(size)


def _uint8_images(batch: int, img_size: tuple,
                  gen: torch.Generator) -> torch.Tensor:
    return torch.randint(
        0, 256, (batch, 3, *img_size), generator=gen, dtype=torch.uint8)


def text_image_batch(cfg, model: nn.Module, batch: int, seed: int = 0) -> dict:
    """A CUHK-PEDES-shaped batch of ``batch`` random image-caption pairs."""
    from mmpretrain.structures import DataSample

    from mmreid_clip.models.utils import text_vocab_size
    gen = torch.Generator().manual_seed(seed)
    num_classes = _find_int(cfg.model.to_dict(), 'num_classes')
    if num_classes is None:
        raise KeyError('no num_classes in the model config')
    bert = cfg.model['text_encoder']['type'] == 'BertTextEncoder'
    texts = bm.make_texts(batch,
                          bm._text_context_length(cfg, model.text_encoder),
                          text_vocab_size(model.text_encoder), bert, seed)
    pids = torch.randint(0, num_classes, (batch, ), generator=gen)
    samples = []
    for i, pid in enumerate(pids.tolist()):
        s = DataSample()
        s.set_gt_label(pid)
        s.set_metainfo(
            dict(
                pid=pid,
                image_id=i,
                caption_id=i,
                has_image=True,
                has_text=True))
        samples.append(s)
    return dict(
        inputs=dict(
            images=_uint8_images(batch, _img_size(cfg), gen), texts=texts),
        data_samples=samples)


def cloth_changing_metainfo(num_pids: int, num_clothes: int) -> dict:
    """Training-set metainfo of ``num_pids`` people sharing out
    ``num_clothes`` clothes labels in turn (PRCC: 2 outfits each)."""
    p2c = torch.zeros(num_pids, num_clothes, dtype=torch.bool)
    for c in range(num_clothes):
        p2c[c % num_pids, c] = True
    return dict(
        num_pids=num_pids, num_clothes=num_clothes, pid2clothes=p2c.numpy())


def cloth_changing_batch(cfg,
                         batch: int,
                         seed: int = 0,
                         instances: int = 4) -> dict:
    """A P x K batch (``instances`` images per person) with camera and
    clothes labels and a shielding view.

    When P would exceed the config's identities (a batch-size search past
    ``4 x num_classes``), K doubles until P fits: every sample still has
    its identity's positives.
    """
    from mmpretrain.structures import DataSample
    num_pids = int(cfg.model['num_classes'])
    while batch // instances > num_pids:
        instances *= 2
    if batch % instances:
        raise ValueError(f'batch {batch} is not a multiple of {instances}')
    gen = torch.Generator().manual_seed(seed)
    num_clothes = cfg.model.get('num_clothes') or num_pids
    meta = cloth_changing_metainfo(num_pids, num_clothes)
    p2c = torch.as_tensor(meta['pid2clothes'])
    people = torch.randperm(num_pids, generator=gen)[:batch // instances]
    samples = []
    for pid in people.repeat_interleave(instances).tolist():
        outfits = p2c[pid].nonzero().flatten()
        clothes = outfits[torch.randint(len(outfits), (1, ), generator=gen)]
        s = DataSample()
        s.set_gt_label(pid)
        s.set_metainfo(
            dict(
                pid=pid,
                camid=int(torch.randint(1, 4, (1, ), generator=gen)),
                clothes_id=int(clothes),
                subset='train'))
        samples.append(s)
    size = _img_size(cfg)
    return dict(
        inputs=dict(
            images=_uint8_images(batch, size, gen),
            shield_images=_uint8_images(batch, size, gen)),
        data_samples=samples), meta


def prepare(config: str,
            device: str,
            amp: Optional[str],
            batch: Optional[int] = None) -> Dict[str, Any]:
    """Model (train mode, on ``device``), optim wrapper and batch of one
    config."""
    from mmengine.optim import build_optim_wrapper

    from mmreid_clip.utils import apply_amp
    cfg = bm.load_config(config)
    batch = batch or int(cfg.train_dataloader['batch_size'])
    model = bm.build_model(bm.random_weights(cfg.model)).to(device)
    model.train()
    ow_cfg = cfg.optim_wrapper.to_dict()
    if amp:
        apply_amp(ow_cfg, dtype=amp)
    optim = build_optim_wrapper(model, ow_cfg)
    if hasattr(model, 'set_train_metainfo'):
        data, meta = cloth_changing_batch(cfg, batch)
        model.set_train_metainfo(meta)
        cfm = getattr(model, 'cfm', None)
        # stage 2 with CFM active: the costliest CCAF step
        model.begin_stage2(cfm.start_epoch if cfm is not None else 0)
    else:
        data = text_image_batch(cfg, model, batch)
    return dict(
        model=model,
        optim=optim,
        data=data,
        batch=batch,
        params=sum(p.numel() for p in model.parameters()))


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize(device)


def time_pair(sides: Dict[str, Dict[str, Any]], device: str, steps: int,
              rounds: int, warmup: int) -> Dict[str, Dict[str, Any]]:
    """Best round's seconds per step of each side, rounds alternating."""
    cuda = device.startswith('cuda')
    out = {k: dict(round_s=[], peak_bytes=None) for k in sides}
    for name, side in sides.items():
        for _ in range(warmup):
            side['model'].train_step(side['data'], side['optim'])
    for _ in range(rounds):
        for name, side in sides.items():
            if cuda:
                _sync(device)
                torch.cuda.reset_peak_memory_stats(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                log = side['model'].train_step(side['data'], side['optim'])
            _sync(device)
            out[name]['round_s'].append((time.perf_counter() - t0) / steps)
            if cuda:
                peak = torch.cuda.max_memory_allocated(device)
                out[name]['peak_bytes'] = max(out[name]['peak_bytes'] or 0,
                                              peak)
            loss = float(log['loss'])
            if not math.isfinite(loss):
                raise FloatingPointError(f'{name}: non-finite loss {loss}')
    for name in out:
        out[name]['step_s'] = min(out[name]['round_s'])
    return out


def run(quick: bool = False,
        device: Optional[str] = None,
        amp: Optional[str] = 'bfloat16',
        steps: int = 10,
        rounds: int = 3,
        warmup: int = 3,
        batch: Optional[int] = None,
        pairs: Optional[List[str]] = None,
        flops: bool = True) -> Dict[str, Any]:
    """Time the pairs (default: all); see the module docstring.

    With ``flops``, one more step of each side runs under
    ``FlopCounterMode`` (``bench_flops.count_step_flops``, at the timed
    batch on the timed device) before the timing; the rows gain GFLOP per
    sample, achieved TFLOP/s and MFU (None where the device's peak is not
    in ``bench_flops.PEAK_TFLOPS``).
    """
    import bench_flops
    bm._ensure_registered()
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if quick:
        amp, steps, rounds, warmup, batch = None, 1, 1, 1, batch or 8
    if device.startswith('cuda'):
        # TF32 for the fp32 parts (optimizer, norms), as training would
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    known = [p['name'] for p in PAIRS]
    unknown = set(pairs or []) - set(known)
    if unknown:
        raise ValueError(f'unknown pairs {sorted(unknown)}; known: {known}')
    machine = machine_info(device)
    peak, peak_note = bench_flops.peak_tflops(machine.get('gpu'), amp)
    rows = []
    for pair in PAIRS:
        if pairs and pair['name'] not in pairs:
            continue
        keys = ('quick_method', 'quick_reference') if quick else ('method',
                                                                  'reference')
        sides = {
            side: prepare(pair[key], device, amp, batch)
            for side, key in zip(('method', 'reference'), keys)
        }
        counted = {
            side: bench_flops.count_step_flops(s['model'], s['data'],
                                               s['optim'])
            for side, s in sides.items()
        } if flops else {}
        t = time_pair(sides, device, steps, rounds, warmup)
        row = dict(
            name=pair['name'],
            size='clip-tiny' if quick else pair['size'],
            method=pair['label'],
            reference=pair['ref_label'],
            configs={
                s: pair[k]
                for s, k in zip(('method', 'reference'), keys)
            },
            batch=sides['method']['batch'],
            ratio=t['method']['step_s'] / t['reference']['step_s'])
        for side in ('method', 'reference'):
            row[side + '_step_s'] = t[side]['step_s']
            row[side + '_round_s'] = t[side]['round_s']
            row[side + '_samples_per_s'] = (
                sides[side]['batch'] / t[side]['step_s'])
            row[side + '_peak_gib'] = (None if t[side]['peak_bytes'] is None
                                       else t[side]['peak_bytes'] / 2**30)
            row[side + '_params_m'] = sides[side]['params'] / 1e6
            row.update(
                flop_columns(side, counted.get(side), sides[side]['batch'],
                             t[side]['step_s'], peak))
        rows.append(row)
        del sides
        if device.startswith('cuda'):
            torch.cuda.empty_cache()
    return dict(
        machine=machine,
        quick=bool(quick),
        amp=amp,
        peak_tflops=peak,
        peak_note=peak_note,
        steps=steps,
        rounds=rounds,
        warmup=warmup,
        rows=rows)


def flop_columns(prefix: str, flops: Optional[int], batch: int, step_s: float,
                 peak: Optional[float]) -> Dict[str, Any]:
    """``<prefix>_gflop_per_sample``, ``_tflops`` (achieved) and ``_mfu``
    (achieved / ``peak`` TFLOP/s; None without a count or a peak)."""
    if flops is None:
        keys = ('gflop_per_sample', 'tflops', 'mfu')
        return {f'{prefix}_{k}': None for k in keys}
    tflops = flops / step_s / 1e12
    return {
        f'{prefix}_gflop_per_sample': flops / batch / 1e9,
        f'{prefix}_tflops': tflops,
        f'{prefix}_mfu': None if peak is None else tflops / peak
    }


def _pct(v: Optional[float]) -> str:
    return '-' if v is None else f'{100 * v:.1f}%'


def _num(v: Optional[float], nd: int = 1) -> str:
    return '-' if v is None else f'{v:.{nd}f}'


def _gib(v: Optional[float]) -> str:
    return '-' if v is None else f'{v:.1f}'


def format_report(report: Dict[str, Any]) -> str:
    """A markdown table of :func:`run`'s rows."""
    m = report['machine']
    head = (f'device: {m.get("gpu") or "CPU"} ({m["device"]}), torch '
            f'{m["torch"]}, CUDA {m.get("cuda_version")}, '
            f'autocast {report["amp"]}, '
            f'best of {report["rounds"]} rounds x {report["steps"]} steps, '
            f'{m["date"]}; MFU against {report.get("peak_note")}')
    lines = [
        head, '', '| size | method | baseline | batch | method samples/s | '
        'baseline samples/s | '
        'step ratio (method / baseline) | method peak GiB | '
        'baseline peak GiB | method GFLOP/sample | baseline GFLOP/sample | '
        'method MFU | baseline MFU |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|'
    ]
    for r in report['rows']:
        lines.append(f'| {r["size"]} | {r["method"]} | {r["reference"]} | '
                     f'{r["batch"]} | '
                     f'{r["method_samples_per_s"]:.1f} | '
                     f'{r["reference_samples_per_s"]:.1f} | '
                     f'{r["ratio"]:.2f} | {_gib(r["method_peak_gib"])} | '
                     f'{_gib(r["reference_peak_gib"])} | '
                     f'{_num(r.get("method_gflop_per_sample"))} | '
                     f'{_num(r.get("reference_gflop_per_sample"))} | '
                     f'{_pct(r.get("method_mfu"))} | '
                     f'{_pct(r.get("reference_mfu"))} |')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--json', help='write the report here')
    parser.add_argument('--device', help='default: cuda when available')
    parser.add_argument(
        '--amp',
        default='bfloat16',
        choices=['bfloat16', 'float16', 'none'],
        help='autocast dtype of every optimizer wrapper')
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument(
        '--batch', type=int, help='default: each config\'s batch size')
    parser.add_argument(
        '--pairs',
        nargs='+',
        choices=[p['name'] for p in PAIRS],
        help='default: all')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='clip-tiny configs, batch 8, one step, no autocast')
    parser.add_argument(
        '--no-flops',
        action='store_true',
        help='skip the FLOP count (one extra step per side)')
    args = parser.parse_args(argv)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel('WARNING')
    report = run(args.quick, args.device,
                 None if args.amp == 'none' else args.amp, args.steps,
                 args.rounds, args.warmup, args.batch, args.pairs,
                 not args.no_flops)
    print(format_report(report))
    bm.write_report(args.json, report)
    return 0


if __name__ == '__main__':
    sys.exit(main())
