"""Generate SynthCC, a synthetic cloth-changing ReID dataset in the LTCC
layout with exact LIP parsing masks (``LTCC_ReID/{train,query,test}`` and
``LTCC_ReID/{train,query,test}-mask``).

    python tools/dataset_converters/make_synth_cc.py data/synth-cc \
        --seed 0 [--size tiny|small] [--train-ids N --test-ids N] \
        [--overwrite] [--num-workers 2]

Read it with ``dict(type='LTCC', data_root='data/synth-cc/LTCC_ReID',
with_mask=True)``.
"""
import argparse
import json
import logging
import time

from mmreid_synth import SYNTH_CC_SIZES, SYNTH_CC_VERSION, generate_synth_cc


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the SynthCC cloth-changing dataset (LTCC '
        f'layout), generator version {SYNTH_CC_VERSION}')
    parser.add_argument(
        'root',
        help='output folder (empty, new, or an existing SynthCC dataset)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--size',
        choices=sorted(SYNTH_CC_SIZES),
        default='tiny',
        help='size preset (tiny: 36 train / 20 test ids, 128x64, about '
        '1.5k images)')
    parser.add_argument(
        '--train-ids', type=int, help='override the preset\'s train ids')
    parser.add_argument(
        '--test-ids', type=int, help='override the preset\'s test ids')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace a SynthCC dataset made with other settings')
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
    start = time.perf_counter()
    counts = generate_synth_cc(
        args.root,
        seed=args.seed,
        size=args.size,
        overwrite=args.overwrite,
        num_workers=args.num_workers,
        train_ids=args.train_ids,
        test_ids=args.test_ids)
    elapsed = time.perf_counter() - start
    generated = counts.pop('generated')
    print(json.dumps(counts, indent=1))
    total = counts['total']['images']
    if generated:
        print(f'wrote {total} images (+ masks) to {args.root} in '
              f'{elapsed:.1f} s ({total / max(elapsed, 1e-9):.0f} images/s)')
    else:
        print(f'{args.root} already holds this dataset; nothing to do')


if __name__ == '__main__':
    main()
