"""Generate SynthCC, a synthetic cloth-changing ReID dataset in the LTCC
layout with exact LIP parsing masks (``LTCC_ReID/{train,query,test}`` and
``LTCC_ReID/{train,query,test}-mask``).

    # v1 (the default; what the v1 studies used)
    python tools/dataset_converters/make_synth_cc.py data/synth-cc \
        --seed 0 [--size tiny|small] [--train-ids N --test-ids N] \
        [--overwrite] [--num-workers 2]

    # v2: detector-like framing, backgrounds shared by all cameras,
    # identity cues that survive a change of clothes, a real clothes
    # shortcut (presets: study = 48 / 30 ids, tiny = 6 / 10 ids)
    python tools/dataset_converters/make_synth_cc.py data/synth-cc-v2 \
        --version 2 [--size study] --seed 0

Read either with ``dict(type='LTCC', data_root='<root>/LTCC_ReID',
with_mask=True)``; measure v2 with ``tools/analysis/synth_cc_probe.py``.
"""
import argparse
import json
import logging
import time

from mmreid_synth import (SYNTH_CC_SIZES, SYNTH_CC_V2_SIZES,
                          SYNTH_CC_V2_VERSION, SYNTH_CC_VERSION,
                          generate_synth_cc, generate_synth_cc_v2)

#: The size preset of each version when --size is not given.
DEFAULT_SIZE = {1: 'tiny', 2: 'study'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the SynthCC cloth-changing dataset (LTCC '
        f'layout): version 1 (generator {SYNTH_CC_VERSION}) or 2 '
        f'(generator {SYNTH_CC_V2_VERSION})')
    parser.add_argument(
        'root',
        help='output folder (empty, new, or an existing SynthCC dataset)')
    parser.add_argument(
        '--version',
        type=int,
        choices=(1, 2),
        default=1,
        help='dataset version (default: 1)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--size',
        choices=sorted(set(SYNTH_CC_SIZES) | set(SYNTH_CC_V2_SIZES)),
        help='size preset; v1: tiny (the default: 36 train / 20 test ids, '
        '128x64, about 1.5k images) or small; v2: study (the default: 48 '
        'train / 30 test ids, 128x64, 1,962 images) or tiny (tests)')
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
    size = args.size or DEFAULT_SIZE[args.version]
    sizes = SYNTH_CC_SIZES if args.version == 1 else SYNTH_CC_V2_SIZES
    if size not in sizes:
        raise SystemExit(f'--size {size} is not a SynthCC v{args.version} '
                         f'preset; choose from {", ".join(sorted(sizes))}')
    generate = generate_synth_cc if args.version == 1 else \
        generate_synth_cc_v2
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    start = time.perf_counter()
    counts = generate(
        args.root,
        seed=args.seed,
        size=size,
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
