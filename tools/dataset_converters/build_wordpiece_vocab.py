"""Build a lower-case BERT WordPiece ``vocab.txt`` from dataset captions.

For CFine's BERT text encoder (``docs/methods/cfine.md`` §2) trained from
scratch
on a caption corpus with no pretrained BERT at hand, e.g. SynthPedes::

    python tools/dataset_converters/build_wordpiece_vocab.py \
        data/synth-pedes data/synth-pedes/vocab.txt \
        [--splits train] [--vocab-size 30522] [--min-frequency 2] [--cased]

The input is a CUHK-PEDES-format annotation file (``reid_raw.json``: a JSON
list of ``{"split", "captions", ...}`` entries; ICFG-PEDES and RSTPReid files
have the same fields) or a dataset folder holding ``reid_raw.json``. Only the
training captions are used by default, so no test wording leaks into the
vocabulary. The output starts with ``[PAD]`` (id 0), ``[UNK]``, ``[CLS]``,
``[SEP]``, ``[MASK]`` and holds every character of the captions, so they all
tokenise without ``[UNK]``; the algorithm and the order of the lines are
those of :func:`mmreid_clip.datasets.tokenizers.build_wordpiece_vocab`
(deterministic). Use it with::

    tokenizer=dict(type='BertWordPieceTokenizer',
                   vocab_file='data/synth-pedes/vocab.txt')
    backbone=dict(type='BertTextEncoder', config='bert-tiny',
                  vocab_file='data/synth-pedes/vocab.txt')
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

from mmreid_clip.datasets.tokenizers import (MAX_INPUT_CHARS_PER_WORD,
                                             BertWordPieceTokenizer,
                                             build_wordpiece_vocab)

DEFAULT_ANN_FILE = 'reid_raw.json'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Build a BERT WordPiece vocab.txt from the captions of '
        'a CUHK-PEDES-format annotation file')
    parser.add_argument(
        'ann_file',
        help=f'annotation JSON (e.g. {DEFAULT_ANN_FILE}) or a dataset folder '
        f'holding {DEFAULT_ANN_FILE}')
    parser.add_argument(
        'out', help='output vocab.txt (a folder gets vocab.txt inside)')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=['train'],
        help='splits whose captions are used; "all" uses every entry, also '
        'entries without a split (default: train)')
    parser.add_argument(
        '--vocab-size',
        type=int,
        default=30522,
        help='most entries, special tokens included (default: 30522, '
        'BERT\'s); small corpora stop earlier, at --min-frequency')
    parser.add_argument(
        '--min-frequency',
        type=int,
        default=2,
        help='least number of occurrences of a learned piece (default: 2)')
    parser.add_argument(
        '--cased',
        action='store_true',
        help='keep case and accents (then use the tokenizer with '
        'lowercase=False)')
    return parser.parse_args(argv)


def read_captions(ann_file: str, splits: Sequence[str]) -> List[str]:
    """Captions of the entries of ``splits`` in ``ann_file``, in file order.

    Args:
        ann_file (str): Annotation JSON, or a folder holding
            ``reid_raw.json``.
        splits (Sequence[str]): Splits to keep; ``'all'`` among them keeps
            every entry.

    Returns:
        list[str]: The captions.

    Raises:
        FileNotFoundError: No annotation file.
        ValueError: Not a list of entries with a ``captions`` list of
            strings, an entry without ``split`` while splits are selected,
            or no caption in the selected splits.
    """
    if osp.isdir(ann_file):
        ann_file = osp.join(ann_file, DEFAULT_ANN_FILE)
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'annotation file {ann_file!r} not found')
    with open(ann_file, encoding='utf-8') as f:
        entries = json.load(f)
    if not isinstance(entries, list):
        raise ValueError(f'{ann_file!r} must hold a JSON list of entries, '
                         f'got {type(entries).__name__}')
    keep_all = 'all' in splits
    captions, seen_splits = [], set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(
                entry.get('captions'), list):
            raise ValueError(f'entry {i} of {ann_file!r} has no "captions" '
                             'list')
        if not keep_all:
            if 'split' not in entry:
                raise ValueError(
                    f'entry {i} of {ann_file!r} has no "split"; pass '
                    '--splits all to use every caption')
            seen_splits.add(entry['split'])
            if entry['split'] not in splits:
                continue
        for caption in entry['captions']:
            if not isinstance(caption, str):
                raise ValueError(f'entry {i} of {ann_file!r} has a caption '
                                 f'that is not a string: {caption!r}')
            captions.append(caption)
    if not captions:
        raise ValueError(f'no caption in splits {list(splits)} of '
                         f'{ann_file!r} (its splits: {sorted(seen_splits)})')
    return captions


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Build and write the vocabulary; returns the path written."""
    args = parse_args(argv)
    captions = read_captions(args.ann_file, args.splits)
    vocab = build_wordpiece_vocab(
        captions,
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        lowercase=not args.cased)
    out = args.out
    if osp.isdir(out) or out.endswith(('/', os.sep)):
        out = osp.join(out, 'vocab.txt')
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out, 'w', encoding='utf-8', newline='\n') as f:
        f.write('\n'.join(vocab) + '\n')

    # Read it back as training will, and check the coverage promise.
    tokenizer = BertWordPieceTokenizer(out, lowercase=not args.cased)
    with_unk = sum(
        tokenizer.unk_token_id in tokenizer.encode(c) for c in captions)
    print(f'wrote {len(vocab)} tokens to {out} from {len(captions)} captions '
          f'(splits: {" ".join(args.splits)})')
    if with_unk:
        print(
            f'warning: {with_unk} captions still contain [UNK]: they have '
            f'words longer than {MAX_INPUT_CHARS_PER_WORD} characters, '
            'which BERT maps to [UNK] whatever the vocabulary',
            file=sys.stderr)
    return out


if __name__ == '__main__':
    main()
