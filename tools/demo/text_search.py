"""Search a folder of person images with a description; draw the ranking.

    python tools/demo/text_search.py CONFIG CHECKPOINT --gallery FOLDER \\
        --query "a woman in a red coat with a black bag" [--query ...] \\
        [--topk 10] [--out text_search.png] [--index FOLDER.index.npz] \\
        [--rebuild] [--index-kind {exact,flat,ivf,hnsw}] [--device cpu] \\
        [--batch-size 32] [--num-workers 0] [--json results.json] \\
        [--cfg-options k=v ...] [--trust-checkpoint]

The gallery is encoded once; with ``--index`` the features are saved there
and reused by later runs (an index made by another model or checkpoint is
refused; ``--rebuild`` re-encodes). The PNG has one row per query: the
query above, the top-k images with rank and cosine score below. The ranked
paths and scores are also printed (and written with ``--json``).
"""
import argparse
from typing import List, Optional

from mmreid_clip.apis import TextPersonSearcher
from mmreid_clip.apis.cli import (check_search_args, load_model, load_searcher,
                                  run_searches, search_demo_parser)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = search_demo_parser(
        'Text-based person search over a folder of images',
        out='text_search.png')
    parser.add_argument(
        '--query',
        action='append',
        required=True,
        help='a description of the person; repeat for several queries')
    args = parser.parse_args(argv)
    check_search_args(parser, args)
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the demo; return ``{'out': png, 'results': [SearchResult]}``."""
    args = parse_args(argv)
    searcher = load_searcher(TextPersonSearcher, load_model(args), args)
    return run_searches(
        lambda text: searcher.query(text, args.topk),
        args.query,
        args,
        caption=lambda text: f'"{text}"')


if __name__ == '__main__':
    main()
