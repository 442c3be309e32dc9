"""FLOPs of one training step and model FLOPs utilisation (MFU).

Usage::

    python .dev_scripts/bench_flops.py [--quick] [--json out.json]

Counts the FLOPs of one ``model.train_step`` (data preprocessor, forward,
backward, optimizer step(s)) of each ViT-B/16 config benchmarked by
``bench_cuda.py`` with :class:`torch.utils.flop_counter.FlopCounterMode`,
on the CPU, at small batch sizes, and extrapolates to the papers' batch
sizes (CFine 32 pairs, CLIP-ReID / CCAF 64 images).

Conventions:

* A multiply-add counts as 2 FLOPs (PyTorch's formulas; the peak FLOP/s of
  NVIDIA's datasheets count an FMA as 2 too). fvcore / mmengine count it as
  1, so "ViT-B/16 forward+backward is ~53 GFLOPs at 224x224" (3 x 17.6
  GMACs) is ~106 GFLOP here; :func:`vit_b16_check` measures it.
* Only operations with a formula are counted (matrix products,
  convolutions, attention); element-wise work (norms, activations, the
  optimizer's update) is not: it is a few percent of a transformer's and
  is not what the peak FLOP/s figures measure.
* Attention is counted through PyTorch's math kernel
  (``sdpa_kernel(SDPBackend.MATH)``): the model's FLOPs, the same on CPU
  and GPU, without the recomputation that fused backward kernels do.

Why not one count at batch 1 times the batch: the step is not linear in
the batch. CCAF's clothes examiner sends every clothes prompt (300 on
PRCC) through the text tower every step whatever the batch, and the
contrastive / triplet losses compare every pair of the batch. The count is
a polynomial of the batch of degree at most 2 (per-sample work, pairwise
terms, a constant): :func:`fit_step_flops` counts at three batch sizes,
fits it exactly (integer arithmetic) and checks the fit at a fourth size
before extrapolating. On a GPU ``bench_cuda.py`` counts at the true batch.
"""
import argparse
import os.path as osp
import sys
import time
from fractions import Fraction
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

_HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(_HERE)
# siblings (bench_models, ...) and the package import as top-level modules
sys.path[:0] = [p for p in (_HERE, ROOT) if p not in sys.path]

import bench_models as bm  # noqa: E402
from bench_common import machine_info  # noqa: E402

#: Dense peak TFLOP/s (no structured sparsity) by autocast dtype; ``None``
#: (fp32 autocast off) uses TF32, which bench_cuda.py enables. Source:
#: NVIDIA H100 Tensor Core GPU datasheet (H100 SXM), NVIDIA H200 datasheet
#: (same tensor-core peaks as H100 SXM), NVIDIA A100 datasheet.
PEAK_TFLOPS: Dict[str, Dict[str, float]] = {
    'H100 SXM': dict(bfloat16=989.4, float16=989.4, tf32=494.7),
    'H200': dict(bfloat16=989.4, float16=989.4, tf32=494.7),
    'A100': dict(bfloat16=312.0, float16=312.0, tf32=156.0),
}
PEAK_SOURCE = 'NVIDIA datasheets (H100 SXM, H200, A100), dense, no sparsity'

#: The configs counted: (name, config, batch sizes fitted, check, paper).
COUNTED: List[Tuple[str, str, Tuple[int, ...], int, int]] = [
    ('CFine', 'configs/cfine/cfine_vit-b16-bert_cuhk-pedes.py', (2, 3, 4), 5,
     32),
    ('CFine baseline', 'configs/cfine/'
     'cfine_vit-b16-bert_cuhk-pedes_ablation-baseline.py', (2, 3, 4), 5, 32),
    ('CLIP-ReID stage 2', 'configs/clip_reid/clip-reid_vit-b16_prcc.py',
     (8, 12, 16), 20, 64),
    ('CCAF stage 2', 'configs/ccaf/ccaf_vit-b16_prcc.py', (8, 12, 16), 20, 64),
]
QUICK_COUNTED = [
    ('CFine', 'configs/cfine/cfine_clip-tiny_synthpedes-tiny.py', (2, 3, 4), 5,
     8),
    ('CCAF stage 2', 'configs/ccaf/ccaf_clip-tiny_synthcc-tiny.py',
     (8, 12, 16), 20, 8),
]


def peak_tflops(gpu: Optional[str],
                amp: Optional[str]) -> Tuple[Optional[float], str]:
    """Dense peak TFLOP/s of a GPU (by its CUDA name) for an autocast dtype.

    Returns:
        tuple: (TFLOP/s or None, what it is or why there is none).
    """
    if not gpu:
        return None, 'no GPU: MFU omitted'
    name = gpu.upper()
    if 'H200' in name:
        key = 'H200'
    elif 'H100' in name and ('SXM' in name or 'HBM3' in name):
        # "NVIDIA H100 80GB HBM3" is the SXM part; PCIe / NVL differ
        key = 'H100 SXM'
    elif 'A100' in name:
        key = 'A100'
    else:
        return None, f'{gpu} is not in the peak table: MFU omitted'
    dtype = amp or 'tf32'
    return PEAK_TFLOPS[key][dtype], f'{key} {dtype} dense, {PEAK_SOURCE}'


def count_step_flops(model: nn.Module, data: dict, optim) -> int:
    """FLOPs of one ``model.train_step(data, optim)`` (it runs, and updates
    the weights).

    The total only: ``FlopCounterMode``'s per-module table attributes the
    backward to more modules than ran it here (the parts of a CFine step
    summed to 1.6x its total), so no breakdown is reported.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with sdpa_kernel([SDPBackend.MATH]), counter:
        model.train_step(data, optim)
    return int(counter.get_total_flops())


def batch_for(cfg, model: nn.Module, batch: int) -> dict:
    """The synthetic batch bench_cuda.py times (see there)."""
    import bench_cuda
    if hasattr(model, 'set_train_metainfo'):
        return bench_cuda.cloth_changing_batch(cfg, batch)[0]
    return bench_cuda.text_image_batch(cfg, model, batch)


def _quadratic(points: Sequence[Tuple[int, int]]) -> Tuple[Fraction, ...]:
    """(a, b, c) of a + b x + c x^2 through three (x, y), exactly."""
    (x0, y0), (x1, y1), (x2, y2) = [(Fraction(x), Fraction(y))
                                    for x, y in points]
    d01 = (y1 - y0) / (x1 - x0)
    d12 = (y2 - y1) / (x2 - x1)
    c = (d12 - d01) / (x2 - x0)
    b = d01 - c * (x0 + x1)
    return y0 - b * x0 - c * x0 * x0, b, c


def fit_step_flops(config: str, batches: Sequence[int], check: int,
                   target: int) -> Dict[str, Any]:
    """Count one CPU training step at ``batches`` and ``check``, fit the
    quadratic through the first three, and extrapolate to ``target``.

    Returns:
        dict: ``counts`` (batch -> FLOPs), ``coeffs`` (constant, per
        sample, per pair of samples; floats), ``fit_exact`` (the fit
        predicts the ``check`` count exactly), ``check_rel_error``,
        ``flops_at_target``, ``gflop_per_sample`` (at ``target``) and
        ``count_s`` (wall seconds).
    """
    import bench_cuda
    t0 = time.perf_counter()
    side = bench_cuda.prepare(config, 'cpu', None, batches[0])
    cfg = bm.load_config(config)
    model = side['model']
    counts = {}
    for b in list(batches) + [check]:
        data = side['data'] if b == batches[0] else batch_for(cfg, model, b)
        counts[b] = count_step_flops(model, data, side['optim'])
    del side, model
    a, lin, quad = _quadratic([(b, counts[b]) for b in batches])
    predicted = a + lin * check + quad * check * check
    at = a + lin * target + quad * target * target
    return dict(
        config=config,
        counts={
            str(k): v
            for k, v in counts.items()
        },
        coeffs=dict(
            constant=float(a), per_sample=float(lin), per_pair=float(quad)),
        fit_exact=predicted == counts[check],
        check_rel_error=float(abs(predicted - counts[check]) / counts[check]),
        target_batch=target,
        flops_at_target=float(at),
        gflop_per_sample=float(at) / target / 1e9,
        count_s=time.perf_counter() - t0)


def vit_b16_check(img_size: int = 224) -> Dict[str, float]:
    """GFLOP of a bare ViT-B/16 forward+backward of one image (the CFine
    config's image tower without its attention output), to set against
    the ~53 GMAC (x 2 = ~106 GFLOP) usually quoted."""
    from torch.utils.flop_counter import FlopCounterMode
    enc = bm.bare_encoder_config(
        bm.random_weights(bm.load_config(
            COUNTED[0][1]).model)['image_encoder'])
    tower = bm.build_model(enc).train()
    x = torch.randn(1, 3, img_size, img_size)
    counter = FlopCounterMode(display=False)
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel([SDPBackend.MATH]), counter:
        out = tower(x)
        # the towers return a dict (global feature, all tokens): the
        # backward of every output reaches the whole tower
        outs = out.values() if isinstance(out, dict) else [out]
        sum(o.float().sum() for o in outs).backward()
    total = counter.get_total_flops()
    return dict(
        gflop=total / 1e9,
        gmac=total / 2e9,
        ratio_to_53_gmac=total / 2e9 / 53.0)


def run(quick: bool = False,
        names: Optional[Sequence[str]] = None,
        json_path: Optional[str] = None) -> Dict[str, Any]:
    """Count every config of :data:`COUNTED` (or ``names``); the report is
    rewritten to ``json_path`` after each (a count takes minutes)."""
    bm._ensure_registered()
    report = dict(
        machine=machine_info('cpu'),
        quick=bool(quick),
        convention='multiply-add = 2 FLOPs; matmul/conv/attention '
        'only; attention via the math kernel (no recompute)',
        vit_b16=None if quick else vit_b16_check(),
        rows=[])
    for name, config, batches, check, target in (QUICK_COUNTED
                                                 if quick else COUNTED):
        if names and name not in names:
            continue
        report['rows'].append(
            dict(name=name, **fit_step_flops(config, batches, check, target)))
        bm.write_report(json_path, report)
    return report


def format_report(report: Dict[str, Any]) -> str:
    """Markdown table of :func:`run`'s rows."""
    lines = [
        f'FLOPs per training step ({report["convention"]})', '',
        '| config | counted at batch | fit exact at check batch | '
        'GFLOP constant | GFLOP per sample (slope) | '
        'paper batch | GFLOP/sample at paper batch |',
        '|---|---|---|---|---|---|---|'
    ]
    for r in report['rows']:
        lines.append(
            f'| {r["name"]} | {", ".join(r["counts"])} | '
            f'{"yes" if r["fit_exact"] else "no"} '
            f'({r["check_rel_error"]:.1e}) | '
            f'{r["coeffs"]["constant"] / 1e9:.1f} | '
            f'{r["coeffs"]["per_sample"] / 1e9:.2f} | {r["target_batch"]} '
            f'| {r["gflop_per_sample"]:.2f} |')
    v = report.get('vit_b16')
    if v:
        lines += [
            '', f'bare ViT-B/16, one 224x224 image, forward+backward: '
            f'{v["gflop"]:.1f} GFLOP = {v["gmac"]:.1f} GMAC '
            f'({v["ratio_to_53_gmac"]:.2f} x the ~53 quoted)'
        ]
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--quick',
        action='store_true',
        help='clip-tiny configs (a code-path check)')
    parser.add_argument('--names', nargs='+', choices=[c[0] for c in COUNTED])
    parser.add_argument('--json', help='write the report here')
    args = parser.parse_args(argv)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel('WARNING')
    report = run(args.quick, args.names, args.json)
    print(format_report(report))
    return 0


if __name__ == '__main__':
    sys.exit(main())
