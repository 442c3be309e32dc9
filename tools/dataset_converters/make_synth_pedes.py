"""Generate SynthPedes, a synthetic text-image person dataset in the exact
CUHK-PEDES format (``reid_raw.json`` + ``imgs/<source>/*.jpg``).

    # v1 (the default; what the v1 studies used)
    python tools/dataset_converters/make_synth_pedes.py data/synth-pedes \
        --seed 0 [--train-ids 500 --val-ids 100 --test-ids 200] \
        [--images-per-id K | --train-images-per-id 4 --test-images-per-id 3] \
        [--height 128 --width 64] [--captions-per-image 2] [--overwrite]

    # v2: families of near-duplicate identities told apart by the local
    # details their captions name (presets: study = 500/100/200 ids,
    # tiny = 6/3/8 ids; the size options override the preset)
    python tools/dataset_converters/make_synth_pedes.py data/synth-pedes-v2 \
        --version 2 [--preset study] --seed 0

Read either with ``dict(type='CUHKPEDES', data_root=...)``.
"""
import argparse
import json
import logging
import time

from mmreid_synth import (DEFAULT_IMAGES_PER_ID, GENERATOR_VERSION,
                          generate_synth_pedes)
from mmreid_synth.synth_pedes_v2 import (GENERATOR_VERSION_V2, PRESETS_V2,
                                         generate_synth_pedes_v2)

#: v1's sizes when not given (v2 takes them from its preset).
V1_IDS = dict(train_ids=500, val_ids=100, test_ids=200)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the SynthPedes dataset (CUHK-PEDES format): '
        f'version 1 (generator {GENERATOR_VERSION}) or 2 (generator '
        f'{GENERATOR_VERSION_V2}, near-duplicate families)')
    parser.add_argument(
        'root',
        help='output folder (empty, new, or an '
        'existing SynthPedes dataset)')
    parser.add_argument(
        '--version',
        type=int,
        choices=(1, 2),
        default=1,
        help='dataset version (default: 1)')
    parser.add_argument(
        '--preset',
        choices=sorted(PRESETS_V2),
        default='study',
        help='v2 only: named size (default: study)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--train-ids', type=int, help='default: 500 (v1), the preset (v2)')
    parser.add_argument(
        '--val-ids', type=int, help='default: 100 (v1), the preset (v2)')
    parser.add_argument(
        '--test-ids', type=int, help='default: 200 (v1), the preset (v2)')
    parser.add_argument(
        '--images-per-id',
        type=int,
        help='images per identity in every split (default: '
        f'{DEFAULT_IMAGES_PER_ID} for v1, the preset for v2)')
    for split in ('train', 'val', 'test'):
        parser.add_argument(
            f'--{split}-images-per-id',
            type=int,
            help=f'images per identity in the {split} split (overrides '
            '--images-per-id)')
    parser.add_argument('--height', type=int, default=128)
    parser.add_argument('--width', type=int, default=64)
    parser.add_argument('--captions-per-image', type=int, default=2)
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace a SynthPedes dataset made with other settings')
    parser.add_argument(
        '--num-workers',
        type=int,
        default=0,
        help='worker processes (0: render in this process); the output does '
        'not depend on it')
    return parser.parse_args(argv)


def _images_per_id(args, default):
    per_id = dict(default)
    if args.images_per_id is not None:
        per_id = {split: args.images_per_id for split in per_id}
    for split in per_id:
        value = getattr(args, f'{split}_images_per_id')
        if value is not None:
            per_id[split] = value
    return per_id


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    start = time.perf_counter()
    common = dict(
        seed=args.seed,
        img_size=(args.height, args.width),
        captions_per_image=args.captions_per_image,
        overwrite=args.overwrite,
        num_workers=args.num_workers)
    ids = {k: getattr(args, k) for k in V1_IDS}
    if args.version == 1:
        counts = generate_synth_pedes(
            args.root,
            **{
                k: V1_IDS[k] if v is None else v
                for k, v in ids.items()
            },
            images_per_id=_images_per_id(args, DEFAULT_IMAGES_PER_ID),
            **common)
    else:
        counts = generate_synth_pedes_v2(
            args.root,
            preset=args.preset,
            **ids,
            images_per_id=_images_per_id(
                args, PRESETS_V2[args.preset]['images_per_id']),
            **common)
    elapsed = time.perf_counter() - start
    generated = counts.pop('generated')
    print(json.dumps(counts, indent=1))
    total = counts['total']['images']
    if generated:
        print(f'wrote {total} images to {args.root} in {elapsed:.1f} s '
              f'({total / max(elapsed, 1e-9):.0f} images/s)')
    else:
        print(f'{args.root} already holds this dataset; nothing to do')


if __name__ == '__main__':
    main()
