"""Generate the SynthCLIP corpus: the image-text pairs the stand-in tiny CLIP
is pretrained on (identities disjoint from every benchmark split; see
``mmreid_synth/clip_corpus.py``), in the CUHK-PEDES format.

    python tools/dataset_converters/make_synth_clip_corpus.py \
        data/synth-clip-corpus [--size default] [--seed 1000] \
        [--num-workers 2] [--overwrite]

``tools/misc/build_synth_clip.py`` calls it as the first step of building
the pretrained tiny CLIP.
"""
import argparse
import json
import logging
import time

from mmreid_synth.clip_corpus import (CORPUS_SEED, CORPUS_SIZES,
                                      CORPUS_VERSION, generate_clip_corpus)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the SynthCLIP pretraining corpus (version '
        f'{CORPUS_VERSION})')
    parser.add_argument(
        'root', help='output folder (empty, new, or an existing corpus)')
    parser.add_argument(
        '--size',
        choices=sorted(CORPUS_SIZES),
        default='default',
        help='size preset (default: 10,800 training images, 2 captions '
        'each; tiny: for the tests)')
    parser.add_argument(
        '--seed',
        type=int,
        default=CORPUS_SEED,
        help=f'corpus seed (default {CORPUS_SEED}; the benchmarks use 0-2)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace a corpus made with other settings')
    parser.add_argument(
        '--num-workers',
        type=int,
        default=0,
        help='worker processes (0: render in this process); the output does '
        'not depend on it')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    start = time.perf_counter()
    result = generate_clip_corpus(
        args.root,
        size=args.size,
        seed=args.seed,
        overwrite=args.overwrite,
        num_workers=args.num_workers)
    print(json.dumps(result['counts'], indent=1))
    print(f'annotation sha256 {result["annotation_sha256"]}')
    if result['generated']:
        print(f'wrote the corpus to {args.root} in '
              f'{time.perf_counter() - start:.1f} s')
    else:
        print(f'{args.root} already holds this corpus; nothing to do')
    return result


if __name__ == '__main__':
    main()
