"""Build the pretrained stand-in CLIP of the synthetic benchmarks, once.

    python tools/misc/build_synth_clip.py
        [--out checkpoints/synth-clip/clip-tiny-p8-synth.pth]
        [--corpus data/synth-clip-corpus] [--work-dir work_dirs/synth-clip]
        [--num-workers 2] [--no-eval] [--force]

The papers fine-tune OpenAI's CLIP; on the synthetic benchmarks the tiny
CLIP ``clip-tiny-p8`` pretrained on the SynthCLIP corpus (image-text pairs
of people disjoint from every benchmark split) stands in for it. One
command, each step skipped when its output is already there:

1. generate the corpus (``mmreid_synth.clip_corpus``, seed 1000);
2. train ``configs/baselines/clip-pretrain_clip-tiny-p8_synth-corpus.py``
   (resumes an interrupted run; about an hour on 2 CPU cores);
3. export the two towers as an open_clip state dict (``--out``), the file
   the ``*clip-tiny-p8*`` study configs load;
4. measure it (unless ``--no-eval``): zero-shot retrieval on the test split
   of each benchmark whose data is present (SynthPedes v2 text-to-image
   with the CLIP baseline's config, SynthCC v2 image ReID with the
   CLIP-ReID row's config), and the in-batch matching rate on SynthPedes
   v2's training batches, i.e. how well matched the pairs are when
   fine-tuning starts;
5. write ``<out>.json``: the file's SHA-256, the corpus annotation's, the
   config's, torch's version and thread count, and the figures.

A later run with the same ``--out`` finds the stamp, checks the file's
SHA-256 and prints the recorded figures without training (the cache). A
different file at ``--out`` (no stamp, or another checksum) is never
replaced without ``--force``. Training on the same torch version and
thread count reproduces the file; the stamp records both.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, Optional

from mmreid_synth.writer import file_sha256

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/baselines/clip-pretrain_clip-tiny-p8_synth-corpus.py'
ARCH = 'clip-tiny-p8'
DEFAULT_OUT = 'checkpoints/synth-clip/clip-tiny-p8-synth.pth'
#: Zero-shot evaluations: (name, config, data folder it needs).
ZERO_SHOT = (
    ('synthpedes_v2_test_t2i',
     'configs/baselines/clip-baseline_clip-tiny-p8_synthpedes-v2.py',
     'data/synth-pedes-v2'),
    ('synthcc_v2_test_reid',
     'configs/ccaf/ccaf_clip-tiny-p8_synthcc-v2_ablation-baseline.py',
     'data/synth-cc-v2/LTCC_ReID'),
)
#: The in-batch figures use this config's training batches (batch 64).
IN_BATCH_CONFIG = ZERO_SHOT[0][1]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Build (once) the pretrained tiny CLIP that stands in for '
        'CLIP on the synthetic benchmarks')
    parser.add_argument('--out', default=DEFAULT_OUT,
                        help=f'weights file to write (default {DEFAULT_OUT})')
    parser.add_argument('--corpus', default='data/synth-clip-corpus',
                        help='corpus folder (generated if missing)')
    parser.add_argument('--work-dir', default='work_dirs/synth-clip',
                        help='training and evaluation outputs')
    parser.add_argument('--num-workers', type=int, default=0,
                        help='processes rendering the corpus')
    parser.add_argument('--no-eval', action='store_true',
                        help='skip the zero-shot and in-batch figures')
    parser.add_argument('--force', action='store_true',
                        help='replace a weights file that is not this '
                        "tool's cached build")
    return parser.parse_args(argv)


def read_stamp(out: str) -> Optional[dict]:
    """The stamp of a cached build, or None when ``out`` is not one."""
    stamp = out + '.json'
    if not (osp.isfile(out) and osp.isfile(stamp)):
        return None
    try:
        with open(stamp, encoding='utf-8') as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if record.get('weights_sha256') != file_sha256(out):
        return None
    return record


def run(cmd: list) -> None:
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def train(args: argparse.Namespace, corpus: str) -> str:
    """Train (or resume) the pretraining config; the last checkpoint."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, CONFIG))
    work_dir = osp.join(args.work_dir, 'pretrain')
    final = osp.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    if osp.isfile(final):
        print(f'{final} exists: training already done')
        return final
    cmd = [
        sys.executable, 'tools/train.py', CONFIG, '--work-dir', work_dir,
        '--cfg-options', f'train_dataloader.dataset.data_root={corpus}',
        f'val_dataloader.dataset.data_root={corpus}'
    ]
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        cmd.append('--resume')
    run(cmd)
    if not osp.isfile(final):
        raise SystemExit(f'training ended without {final}')
    return final


def zero_shot(config: str, weights: str, work_dir: str) -> Dict[str, float]:
    """Test ``config``'s model with the towers loaded from ``weights``."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmreid_clip.utils.pretrained import set_clip_weights
    cfg = Config.fromfile(osp.join(ROOT, config))
    set_clip_weights(cfg.model, weights)
    cfg.load_from = None
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    return {k: float(v) for k, v in runner.test().items()}


def batch_matching(sim, pids) -> Dict[str, int]:
    """Counts of one batch: ``sim[i, j]`` scores caption i against image j
    (caption i belongs to image i), ``pids`` their identities.

    Returns:
        dict: ``t2i``/``i2t``: anchors whose own item scores above every
        other identity's item; ``violating``: anchors (both directions)
        that some other identity's item outscores.
    """
    neg = pids.view(-1, 1) != pids.view(1, -1)
    pos = sim.diagonal()
    t2i_best = sim.masked_fill(~neg, float('-inf')).max(1).values
    i2t_best = sim.t().masked_fill(~neg, float('-inf')).max(1).values
    return dict(
        t2i=int((pos > t2i_best).sum()),
        i2t=int((pos > i2t_best).sum()),
        violating=int((t2i_best > pos).sum() + (i2t_best > pos).sum()))


def in_batch_matching(config: str, weights: str,
                      max_batches: int = 0) -> Dict[str, float]:
    """How well the training pairs are matched before fine-tuning.

    Over the training batches of ``config`` (its sampler, batch size and
    pipeline; seed 0), with global image and text features and the cosine
    ``S`` of every image-caption pair in a batch: the share of captions
    (images) whose own image (caption) scores above every other person's
    (``t2i_top1``, ``i2t_top1``), and the share of anchors, over both
    directions, that some other person's item outscores: the anchors
    CFine's triplet term mines (``violating``).
    """
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmreid_clip.models.retrievers.clip_text_image import \
        pids_from_samples
    from mmreid_clip.registry import MODELS
    from mmreid_clip.utils import register_all_modules
    from mmreid_clip.utils.pretrained import set_clip_weights
    register_all_modules()
    cfg = Config.fromfile(osp.join(ROOT, config))
    set_clip_weights(cfg.model, weights)
    model = MODELS.build(cfg.model).eval()
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    counts = dict(t2i=0, i2t=0, violating=0, anchors=0, batches=0)
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if max_batches and i >= max_batches:
                break
            data = model.data_preprocessor(batch, False)
            img = model.extract_img_feat(data['inputs']['images'])
            txt = model.extract_text_feat(data['inputs']['texts'])
            img = torch.nn.functional.normalize(img.float(), dim=-1)
            txt = torch.nn.functional.normalize(txt.float(), dim=-1)
            pids = pids_from_samples(data['data_samples'], img.device)
            for key, value in batch_matching(txt @ img.t(), pids).items():
                counts[key] += value
            counts['anchors'] += len(pids)
            counts['batches'] += 1
    n = max(counts['anchors'], 1)
    return dict(
        t2i_top1=100.0 * counts['t2i'] / n,
        i2t_top1=100.0 * counts['i2t'] / n,
        violating=100.0 * counts['violating'] / (2 * n),
        batch_size=float(cfg.train_dataloader.batch_size),
        batches=float(counts['batches']))


def measure(weights: str, work_dir: str) -> Dict[str, dict]:
    figures: Dict[str, dict] = {}
    for name, config, data in ZERO_SHOT:
        if not osp.isdir(osp.join(ROOT, data)):
            print(f'{data} not found: no {name} figures (generate it first)')
            continue
        figures[name] = zero_shot(config, weights,
                                  osp.join(work_dir, 'zero_shot', name))
    if osp.isdir(osp.join(ROOT, ZERO_SHOT[0][2])):
        figures['synthpedes_v2_train_in_batch'] = in_batch_matching(
            IN_BATCH_CONFIG, weights)
    return figures


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = args.out if osp.isabs(args.out) else osp.join(ROOT, args.out)
    record = read_stamp(out)
    if record is not None and (record.get('figures') or args.no_eval):
        print(f'{args.out} is a cached build (sha256 '
              f'{record["weights_sha256"]}); nothing to do')
        print(json.dumps(record, indent=1))
        return record
    if record is None and osp.exists(out) and not args.force:
        raise SystemExit(
            f'{args.out} exists and is not a build of this tool (no '
            f'{args.out}.json stamp with its checksum); pass --force to '
            'replace it, or choose another --out')
    start = time.time()
    if record is None:
        from mmreid_synth.clip_corpus import generate_clip_corpus
        corpus = generate_clip_corpus(
            args.corpus, num_workers=args.num_workers)
        final = train(args, args.corpus)
        os.makedirs(osp.dirname(out), exist_ok=True)
        run([
            sys.executable,
            'tools/model_converters/export_open_clip_weights.py', final,
            out, '--arch', ARCH
        ])
        import torch
        record = dict(
            weights=args.out,
            weights_sha256=file_sha256(out),
            arch=ARCH,
            config=CONFIG,
            config_sha256=file_sha256(osp.join(ROOT, CONFIG)),
            corpus_annotation_sha256=corpus['annotation_sha256'],
            checkpoint=final,
            torch=torch.__version__,
            torch_threads=torch.get_num_threads(),
            build_seconds=round(time.time() - start))
    if not args.no_eval:
        record['figures'] = measure(out, args.work_dir)
    with open(out + '.json', 'w', encoding='utf-8') as f:
        json.dump(record, f, indent=1)
    print(json.dumps(record, indent=1))
    return record


if __name__ == '__main__':
    main()
