"""Find a person of a query photo in a folder of images; draw the ranking.

    python tools/demo/image_search.py CONFIG CHECKPOINT --gallery FOLDER \\
        --query-image person.jpg [person2.jpg ...] [--topk 10] \\
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
import json
import os.path as osp
import sys
from contextlib import nullcontext
from typing import List, Optional

from mmengine.config import DictAction

from mmreid_clip.apis import PersonReIdentifier, StaleIndexError, init_model
from mmreid_clip.apis.search_index import INDEX_KINDS
from mmreid_clip.compat import trust_checkpoints
from mmreid_clip.visualization import (RankedListLayout, render_ranked_list,
                                       save_png, stack_rows)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Image-based person search over a folder of images')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--gallery',
        help='folder of person images (searched recursively); optional when '
        '--index names an existing index')
    parser.add_argument(
        '--query-image',
        nargs='+',
        required=True,
        help='photo(s) of the person to find')
    parser.add_argument('--topk', type=int, default=10, help='results shown')
    parser.add_argument(
        '--out', default='image_search.png', help='output PNG file')
    parser.add_argument('--index', help='gallery index file to load or write')
    parser.add_argument(
        '--rebuild',
        action='store_true',
        help='re-encode the gallery even '
        'if --index exists')
    parser.add_argument(
        '--index-kind',
        choices=INDEX_KINDS,
        default='exact',
        help='exact (default) or a faiss index: flat (exact), ivf, hnsw')
    parser.add_argument(
        '--keep-self',
        action='store_true',
        help='keep a query image that is in the gallery in its own results')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument(
        '--num-workers',
        type=int,
        default=0,
        help='processes loading gallery images while indexing')
    parser.add_argument('--json', help='also write the rankings as JSON')
    parser.add_argument(
        '--tile-height', type=int, default=192, help='tile height in pixels')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='load a checkpoint with arbitrary pickled objects (only for '
        'files you trust)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, key=value')
    args = parser.parse_args(argv)
    if args.topk < 1:
        parser.error('--topk must be >= 1')
    if not args.gallery and not (args.index and osp.isfile(args.index)):
        parser.error('give --gallery (or --index naming an existing index)')
    for path in args.query_image:
        if not osp.isfile(path):
            parser.error(f'query image {path!r} does not exist')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the demo; return ``{'out': png, 'results': [SearchResult]}``."""
    args = parse_args(argv)
    with trust_checkpoints() if args.trust_checkpoint else nullcontext():
        model = init_model(args.config, args.checkpoint, args.device,
                           args.cfg_options)
    try:
        searcher = PersonReIdentifier.load_or_build(
            model,
            args.gallery,
            args.index,
            rebuild=args.rebuild,
            index_kind=args.index_kind,
            batch_size=args.batch_size,
            num_workers=args.num_workers)
    except StaleIndexError as err:
        sys.exit(f'error: {err}')
    layout = RankedListLayout(
        tile_size=(args.tile_height // 2, args.tile_height))
    rows, results = [], []
    for path in args.query_image:
        result = searcher.query(
            path, args.topk, exclude_self=not args.keep_self)
        results.append(result)
        print(f'\nquery: {path}')
        for rank, (rel, score) in enumerate(
                zip(result.rel_paths, result.scores), 1):
            print(f'  #{rank:<3d} {score:7.4f}  {rel}')
        rows.append(
            render_ranked_list(
                result.paths,
                result.scores,
                caption=f'query: {osp.basename(path)}',
                query_image=path,
                labels=[osp.basename(p) for p in result.rel_paths],
                layout=layout))
    out = save_png(stack_rows(rows), args.out)
    print(f'\nranked grid written to {out}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump([
                dict(query=q, **r.to_dict())
                for q, r in zip(args.query_image, results)
            ],
                      f,
                      indent=2)
    return dict(out=out, results=results)


if __name__ == '__main__':
    main()
