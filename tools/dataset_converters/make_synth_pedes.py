"""Generate SynthPedes, a synthetic text-image person dataset in the exact
CUHK-PEDES format (``reid_raw.json`` + ``imgs/<source>/*.jpg``).

    python tools/dataset_converters/make_synth_pedes.py data/synth-pedes \
        --seed 0 [--train-ids 500 --val-ids 100 --test-ids 200] \
        [--images-per-id K | --train-images-per-id 4 --test-images-per-id 3] \
        [--height 128 --width 64] [--captions-per-image 2] [--overwrite]

Read it with ``dict(type='CUHKPEDES', data_root='data/synth-pedes')``.
"""
import argparse
import json
import logging
import time

from mmreid_synth import (DEFAULT_IMAGES_PER_ID, GENERATOR_VERSION,
                          generate_synth_pedes)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the SynthPedes dataset (CUHK-PEDES format), '
        f'generator version {GENERATOR_VERSION}')
    parser.add_argument(
        'root',
        help='output folder (empty, new, or an '
        'existing SynthPedes dataset)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--train-ids', type=int, default=500)
    parser.add_argument('--val-ids', type=int, default=100)
    parser.add_argument('--test-ids', type=int, default=200)
    parser.add_argument(
        '--images-per-id',
        type=int,
        help='images per identity in every split (default: '
        f'{DEFAULT_IMAGES_PER_ID})')
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


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    per_id = dict(DEFAULT_IMAGES_PER_ID)
    if args.images_per_id is not None:
        per_id = {split: args.images_per_id for split in per_id}
    for split in per_id:
        value = getattr(args, f'{split}_images_per_id')
        if value is not None:
            per_id[split] = value
    start = time.perf_counter()
    counts = generate_synth_pedes(
        args.root,
        seed=args.seed,
        train_ids=args.train_ids,
        val_ids=args.val_ids,
        test_ids=args.test_ids,
        images_per_id=per_id,
        img_size=(args.height, args.width),
        captions_per_image=args.captions_per_image,
        overwrite=args.overwrite,
        num_workers=args.num_workers)
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
