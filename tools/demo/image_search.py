"""Find a person of a query photo in a folder of images; draw the ranking.

    python tools/demo/image_search.py CONFIG CHECKPOINT --gallery FOLDER \\
        --query-image person.jpg [person2.jpg ...] [--query-image ...] \\
        [--topk 10] \\
        [--out image_search.png] [--index FOLDER.index.npz] [--rebuild] \\
        [--index-kind {exact,flat,ivf,hnsw}] [--keep-self] [--device cpu] \\
        [--batch-size 32] [--num-workers 0] [--json results.json] \\
        [--cfg-options k=v ...] [--trust-checkpoint]

Works with any model whose ``predict`` gives image features (``img_feat``):
image ReID models and the text-image ones. A query image that is itself in
the gallery is left out of its own ranking unless ``--keep-self``. Index
files are shared with ``text_search.py`` (same model, same gallery).
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmreid_clip.apis import PersonReIdentifier
from mmreid_clip.apis.cli import (check_search_args, load_model, load_searcher,
                                  run_searches, search_demo_parser)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = search_demo_parser(
        'Image-based person search over a folder of images',
        out='image_search.png')
    parser.add_argument(
        '--query-image',
        nargs='+',
        action='extend',
        required=True,
        help='photo(s) of the person to find (several after one flag, or '
        'the flag repeated)')
    parser.add_argument(
        '--keep-self',
        action='store_true',
        help='keep a query image that is in the gallery in its own results')
    args = parser.parse_args(argv)
    check_search_args(parser, args)
    for path in args.query_image:
        if not osp.isfile(path):
            parser.error(f'query image {path!r} does not exist')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the demo; return ``{'out': png, 'results': [SearchResult]}``."""
    args = parse_args(argv)
    searcher = load_searcher(PersonReIdentifier, load_model(args), args)
    return run_searches(
        lambda path: searcher.query(
            path, args.topk, exclude_self=not args.keep_self),
        args.query_image,
        args,
        caption=lambda path: f'query: {osp.basename(path)}',
        show_query_image=True)


if __name__ == '__main__':
    main()
