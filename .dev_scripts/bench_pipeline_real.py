"""Data pipelines of the ViT-B/16 configs at real resolution, per CPU worker.

Usage::

    python .dev_scripts/bench_pipeline_real.py [--quick] [--json out.json]
        [--workers 0 2] [--batches N]

(also section ``pipeline_real`` of ``bench_models.py``).

For each real training pipeline (CFine on CUHK-PEDES: Pillow decode,
224x224 bicubic squash, flip, BERT WordPiece captions of 100 tokens;
CCAF on PRCC: decode, parsing-mask PNG, resize / flip / crop of both,
shielding view, random erasing of both views; CLIP-ReID on PRCC: the same
without mask and shielding view) it measures, over synthetic data in the
real file formats at realistic source sizes:

* samples/s of the config's ``train_dataloader`` (its sampler, collate and
  batch size) with 0 workers per CPU second of this process (the rate of
  one worker process, robust to the machine's load), and per wall second
  with the given worker counts;
* the CPU time of each transform of the pipeline (is decoding the cost?);
* JPEG decoders available offline on the same bytes against Pillow (what
  the configs use): samples/s and whether the pixels are identical;
* workers needed to feed each GPU rate of ``docs/benchmarks.md``:
  ``ceil(rate / per-worker samples/s)``.

The data: SynthPedes / SynthCC (``mmreid_synth``) rendered at the source
size, with Gaussian sensor noise (sigma :data:`NOISE_SIGMA`) added before
JPEG encoding, because flat synthetic renders compress several times
smaller than camera crops and would decode unrealistically fast; the mean
file size is reported. The PRCC tree is SynthCC's training images
re-encoded as JPEG in PRCC's layout (outfit 1 in cameras A/B, outfit 2 in
C) with its LIP label PNGs as masks. The CFine tokenizer uses a WordPiece
vocabulary learnt from the synthetic captions (bert-base-uncased's file is
not available offline); the tokenizer's cost does not depend on the
vocabulary's size (a hash lookup per piece).
"""
import argparse
import collections
import io
import json
import math
import os
import os.path as osp
import re
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

_HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(_HERE)
# siblings (bench_models, ...) and the package import as top-level modules
sys.path[:0] = [p for p in (_HERE, ROOT) if p not in sys.path]

import bench_models as bm  # noqa: E402
from bench_common import machine_info  # noqa: E402

#: Source (height, width) of the JPEGs. CUHK-PEDES mixes crops of five
#: ReID sets; 330x120 is the example of docs/methods/fidelity.md. PRCC's
#: crops vary by camera; 384x160 is an assumption on the large side (a
#: larger source only makes decoding slower). Override with --pedes-size /
#: --prcc-size.
SRC_SIZES = {'pedes': (330, 120), 'prcc': (384, 160)}
#: JPEG quality of the re-encoded images.
JPEG_QUALITY = 90
#: Noise added before encoding (intensity levels), see the module doc.
NOISE_SIGMA = 4.0
#: The real pipelines: (row name, config, data kind).
PIPELINES = [
    ('cfine', 'configs/cfine/cfine_vit-b16-bert_cuhk-pedes.py', 'pedes'),
    ('ccaf', 'configs/ccaf/ccaf_vit-b16_prcc.py', 'prcc'),
    ('clip_reid', 'configs/clip_reid/clip-reid_vit-b16_prcc.py', 'prcc'),
]
#: GPU training rates (samples/s) to feed: (pipeline, label, rate, source).
GPU_RATES = [
    ('cfine', 'CFine', 215, 'measured, H200 bf16 (docs/benchmarks.md)'),
    ('cfine', 'CFine', 265, 'measured, H200 fp32/TF32'),
    ('cfine', 'CFine', 600, 'target'),
    ('clip_reid', 'CLIP-ReID', 1045, 'measured, H200 bf16'),
    ('clip_reid', 'CLIP-ReID', 2000, 'target'),
    ('ccaf', 'CCAF', 560, 'measured, H200 bf16'),
]
#: Per mode (key: quick): identities / frames rendered, timed batches,
#: batch (None: the config's), items of the stage breakdown, files decoded
#: and rounds of the decoder timing.
_KEYS = ('pedes_ids', 'cc_frames', 'batches', 'batch', 'stage_n', 'decode_n',
         'decode_repeats')
SETTINGS = {
    True: dict(zip(_KEYS, (8, 1, 1, 8, 8, 16, 1))),
    False: dict(zip(_KEYS, (64, 2, 10, None, 64, 128, 5))),
}


def _noisy_jpeg(img, rng: np.random.Generator, path: str) -> int:
    """Save ``img`` (PIL RGB) with sensor noise as a JPEG; its bytes."""
    from PIL import Image
    arr = np.asarray(img, dtype=np.float32)
    arr = arr + rng.normal(0.0, NOISE_SIGMA, arr.shape)
    Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8)).save(
        path, 'JPEG', quality=JPEG_QUALITY)
    return osp.getsize(path)


def realistic_pedes_root(train_ids: int,
                         src_size: Tuple[int, int]) -> Tuple[str, str]:
    """SynthPedes at ``src_size`` with noisy JPEGs, and a vocab.txt.

    Returns:
        tuple: (data root, WordPiece vocab file).
    """
    from PIL import Image

    from mmreid_clip.datasets.tokenizer_wordpiece_vocab import \
        build_wordpiece_vocab
    from mmreid_synth import generate_synth_pedes
    root = osp.join(bm._tmp_root(), f'pedes-real-{train_ids}-'
                    f'{src_size[0]}x{src_size[1]}')
    vocab = osp.join(root, 'vocab.txt')
    if osp.isfile(vocab):
        return root, vocab
    generate_synth_pedes(
        root,
        seed=0,
        train_ids=train_ids,
        val_ids=1,
        test_ids=1,
        images_per_id=dict(train=4, val=1, test=1),
        img_size=src_size)
    with open(osp.join(root, 'reid_raw.json')) as f:
        items = json.load(f)
    rng = np.random.default_rng(0)
    for item in items:
        path = osp.join(root, 'imgs', item['file_path'])
        _noisy_jpeg(Image.open(path).convert('RGB'), rng, path)
    lines = build_wordpiece_vocab(c for it in items for c in it['captions'])
    with open(vocab, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return root, vocab


def realistic_prcc_root(frames: int, src_size: Tuple[int, int]) -> str:
    """A PRCC training tree (JPEG images, LIP label PNG masks) made from
    SynthCC rendered at ``src_size``."""
    import shutil

    from PIL import Image

    from mmreid_synth import generate_synth_cc
    root = osp.join(bm._tmp_root(),
                    f'prcc-real-{frames}-{src_size[0]}x{src_size[1]}')
    if osp.isdir(osp.join(root, 'rgb')):
        return root
    src = osp.join(root, 'synth')
    # tiny: 36 ids x 3 outfits; 2 cameras per outfit
    generate_synth_cc(
        src,
        seed=0,
        size='tiny',
        test_ids=1,
        cameras_per_outfit=2,
        frames_per_camera=frames,
        img_size=src_size)
    ltcc = osp.join(src, 'LTCC_ReID')
    name_re = re.compile(r'(\d+)_(\d+)_c(\d+)_(\d+)\.png$')
    rng = np.random.default_rng(0)
    count: Dict[str, int] = collections.Counter()
    for name in sorted(os.listdir(osp.join(ltcc, 'train'))):
        m = name_re.match(name)
        outfit = int(m.group(2))
        if outfit > 2:  # PRCC: two outfits per person
            continue
        pid, cam = m.group(1), int(m.group(3))
        letter = 'C' if outfit == 2 else 'AB'[cam % 2]
        count[pid] += 1
        stem = f'{letter}_cropped_rgb{count[pid]:03d}'
        for sub in ('rgb', 'mask'):
            os.makedirs(osp.join(root, sub, 'train', pid), exist_ok=True)
        _noisy_jpeg(
            Image.open(osp.join(ltcc, 'train', name)).convert('RGB'), rng,
            osp.join(root, 'rgb', 'train', pid, stem + '.jpg'))
        shutil.copy(
            osp.join(ltcc, 'train-mask', name),
            osp.join(root, 'mask', 'train', pid, stem + '.png'))
    shutil.rmtree(src)
    return root


def _loader_cfg(config: str, kind: str, quick: bool,
                src: Dict[str, Tuple[int, int]]):
    """(config with the synthetic data root and vocab, data root)."""
    s = SETTINGS[bool(quick)]
    cfg = bm.load_config(config)
    if kind == 'pedes':
        root, vocab = realistic_pedes_root(s['pedes_ids'], src['pedes'])
        for t in cfg.train_dataloader['dataset']['text_pipeline']:
            if 'tokenizer' in t and 'vocab_file' in t['tokenizer']:
                t['tokenizer']['vocab_file'] = vocab
    else:
        root = realistic_prcc_root(s['cc_frames'], src['prcc'])
    return cfg, root


def stage_times(dataset, n: int) -> Dict[str, float]:
    """CPU seconds per sample of each transform (image, then text
    pipeline, then packing) over the first ``n`` items."""
    dataset.full_init()
    acc: Dict[str, float] = collections.OrderedDict()

    def run(stages, results):
        for t in stages:
            c0 = time.process_time()
            results = t(results)
            key = type(t).__name__
            acc[key] = acc.get(key, 0.0) + time.process_time() - c0
        return results

    n = min(n, len(dataset))
    for i in range(n):
        res = run(dataset.pipeline.transforms, dataset.get_data_info(i))
        text = getattr(dataset, 'text_pipeline', None)
        if text is not None and 'caption' in res:
            res = run(text.transforms, res)
        if hasattr(dataset, 'pack'):
            run([dataset.pack], res)
    return {k: v / n for k, v in acc.items()}


def _pil_decode(data: bytes) -> np.ndarray:
    import mmcv
    return mmcv.imfrombytes(data, backend='pillow')  # what the configs use


def decoders(files: Sequence[str],
             target_hw: Tuple[int, int],
             repeats: int = 5) -> Dict[str, Dict[str, Any]]:
    """Decode rate (images per CPU second, bytes in memory; best of
    ``repeats`` interleaved rounds) of each JPEG decoder available here
    against Pillow's, and whether its BGR pixels equal Pillow's (max
    absolute difference)."""
    import mmcv
    datas = []
    for path in files:
        with open(path, 'rb') as f:
            datas.append(f.read())
    ref = [_pil_decode(d) for d in datas]
    fns = {
        'pillow (configs)': _pil_decode,
        'cv2': lambda d: mmcv.imfrombytes(d, backend='cv2')
    }
    try:
        import torch
        from torchvision.io import decode_jpeg

        def tv(d):
            x = decode_jpeg(torch.frombuffer(bytearray(d), dtype=torch.uint8))
            return x.permute(1, 2, 0).numpy()[..., ::-1]

        fns['torchvision.io.decode_jpeg'] = tv
    except ImportError:
        pass

    def draft(d):
        from PIL import Image
        img = Image.open(io.BytesIO(d))
        # JPEG DCT scaling: only by 1/2, 1/4, 1/8, never below the size
        # asked for, so it only acts when the source is >= 2x the target
        img.draft('RGB', (target_hw[1], target_hw[0]))
        return np.asarray(img.convert('RGB'))[..., ::-1]

    fns['pillow draft()'] = draft
    out = {}
    for name, fn in fns.items():
        got = [fn(d) for d in datas]  # the pixel check
        diff = None
        if all(g.shape == r.shape for g, r in zip(got, ref)):
            diff = max(
                int(np.abs(g.astype(int) - r).max()) for g, r in zip(got, ref))
        out[name] = dict(max_abs_diff=diff, identical=diff == 0)
    # interleaved rounds, best CPU time of each: on a busy machine one
    # pass of a decoder moves by 30%
    loops = {
        k: (lambda fn=fn: [fn(d) for d in datas])
        for k, fn in fns.items()
    }
    t = bm.time_interleaved(loops, repeats, warmup=1)
    for name in fns:
        out[name]['per_s'] = len(datas) / max(t[name]['best_cpu'], 1e-9)
    return out


def _target_hw(cfg) -> Tuple[int, int]:
    for t in cfg.train_dataloader['dataset']['pipeline']:
        if t['type'] == 'Resize':
            w, h = t['scale']
            return h, w
    raise KeyError('no Resize in the train pipeline')


def bench_pipelines(
        quick: bool = False,
        workers: Sequence[int] = (0, 2),
        batches: Optional[int] = None,
        src_sizes: Optional[Dict[str, Tuple[int,
                                            int]]] = None) -> Dict[str, Any]:
    """Measure every pipeline of :data:`PIPELINES`; see the module doc.

    Args:
        quick (bool): Few images, batch 8, one timed batch, 0 workers
            only (a smoke run, not a measurement).
        workers (Sequence[int]): Worker counts of the wall-clock rates (0
            is always measured, per CPU second).
        batches (int, optional): Timed batches per rate.
        src_sizes (dict, optional): ``pedes`` / ``prcc`` -> (H, W) of the
            source JPEGs; default :data:`SRC_SIZES`.

    Returns:
        dict: ``section``, ``quick``, ``src_sizes``, ``rows`` (one per
        pipeline: ``name``, ``config``, ``batch``, ``jpeg_kib`` (mean file
        size), ``per_worker`` (samples per CPU second, 0 workers),
        ``wall`` (workers -> samples per wall second), ``stages`` (CPU ms
        per sample of each transform), ``decode_share`` (LoadImageFromFile
        over all stages), ``decoders``) and ``workers_needed``.
    """
    bm._ensure_registered()
    s = SETTINGS[bool(quick)]
    src = dict(SRC_SIZES, **(src_sizes or {}))
    batches = batches or s['batches']
    workers = [0] if quick else sorted({0, *workers})
    rows = []
    for name, config, kind in PIPELINES:
        cfg, root = _loader_cfg(config, kind, quick, src)
        bs = s['batch'] or int(cfg.train_dataloader['batch_size'])
        wall = {}
        per_worker = None
        for w in workers:
            loader = bm.build_train_loader(cfg, root, bs, w)
            rate = bm.pipeline_throughput(loader, batches)
            wall[str(w)] = rate['wall']
            if w == 0:
                per_worker = rate['cpu']
                dataset = loader.dataset
            del loader
        stages = stage_times(dataset, s['stage_n'])
        files = sorted({
            dataset.get_data_info(i)['img_path']
            for i in range(len(dataset))
        })[:s['decode_n']]
        # yapf: disable
        rows.append(dict(
            name=name, config=config, batch=bs,
            jpeg_kib=float(np.mean([osp.getsize(f) for f in files])) / 1024,
            per_worker=per_worker, wall=wall,
            stages={k: 1e3 * v for k, v in stages.items()},
            decode_share=stages.get('LoadImageFromFile', 0.0) /
            sum(stages.values()),
            decoders=decoders(files, _target_hw(cfg), s['decode_repeats'])))
    by_name = {r['name']: r for r in rows}
    need = [dict(pipeline=p, method=label, rate=rate, source=source,
                 workers=math.ceil(rate / by_name[p]['per_worker']))
            for p, label, rate, source in GPU_RATES]
    return dict(section='pipeline_real', quick=bool(quick),
                src_sizes={k: list(v) for k, v in src.items()},
                jpeg_quality=JPEG_QUALITY, noise_sigma=NOISE_SIGMA,
                batches=batches, rows=rows, workers_needed=need)
    # yapf: enable


def format_section(r: Dict[str, Any]) -> str:
    """Markdown tables of :func:`bench_pipelines`' result."""
    lines = [
        '### Data pipelines at real resolution (per CPU worker)', '',
        f'sources (H x W): {r["src_sizes"]}, JPEG quality '
        f'{r["jpeg_quality"]}, noise sigma {r["noise_sigma"]}', '',
        '| pipeline | batch | JPEG KiB | samples/s per worker (CPU time) | '
        'wall samples/s by workers | decode share | stages (CPU ms/sample) |',
        '|---|---|---|---|---|---|---|'
    ]
    for row in r['rows']:
        walls = ', '.join(f'{w}: {v:.0f}' for w, v in row['wall'].items())
        stages = ', '.join(f'{k} {v:.2f}' for k, v in row['stages'].items())
        lines.append(f'| {row["name"]} | {row["batch"]} | '
                     f'{row["jpeg_kib"]:.1f} | {row["per_worker"]:.0f} | '
                     f'{walls} | {100 * row["decode_share"]:.0f}% | '
                     f'{stages} |')
    lines += [
        '', '| pipeline | decoder | images/s (CPU) | identical to '
        'Pillow | max abs diff |', '|---|---|---|---|---|'
    ]
    for row in r['rows']:
        for name, d in row['decoders'].items():
            lines.append(f'| {row["name"]} | {name} | {d["per_s"]:.0f} | '
                         f'{"yes" if d["identical"] else "no"} | '
                         f'{d["max_abs_diff"]} |')
    lines += [
        '', '| method | GPU samples/s | source | workers needed |',
        '|---|---|---|---|'
    ]
    for n in r['workers_needed']:
        lines.append(f'| {n["method"]} | {n["rate"]} | {n["source"]} | '
                     f'{n["workers"]} |')
    return '\n'.join(lines + [''])


def _size(text: str) -> Tuple[int, int]:
    h, w = text.lower().split('x')
    return int(h), int(w)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--quick',
        action='store_true',
        help='few images, one batch of 8 (smoke run)')
    parser.add_argument('--json', help='write the report here')
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 2])
    parser.add_argument('--batches', type=int, help='timed batches')
    parser.add_argument('--pedes-size', type=_size, help='HxW of CUHK-PEDES')
    parser.add_argument('--prcc-size', type=_size, help='HxW of PRCC')
    args = parser.parse_args(argv)
    import torch
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel('WARNING')
    sizes = {
        k: v
        for k, v in (('pedes', args.pedes_size), ('prcc', args.prcc_size)) if v
    }
    t0 = time.perf_counter()
    with bm.torch_threads(1):
        section = bench_pipelines(args.quick, args.workers, args.batches,
                                  sizes)
    report = dict(
        machine=machine_info(),
        load_avg_end=os.getloadavg(),
        torch_threads=1,
        wall_s=time.perf_counter() - t0,
        section=section,
        torch=torch.__version__)
    print(f'machine: {report["machine"]["cpu"]}, load average '
          f'{report["machine"]["load_avg"]} -> {report["load_avg_end"]}')
    print(format_section(section))
    bm.write_report(args.json, report)
    return 0


if __name__ == '__main__':
    sys.exit(main())
