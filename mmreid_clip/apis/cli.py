"""Command-line pieces shared by the demos and analysis tools.

``tools/demo/text_search.py``, ``image_search.py``, ``search_app.py`` and
``tools/analysis/visualize_retrieval.py`` take the same model and gallery
arguments, load the model and its gallery searcher the same way, and (the
two command-line demos) draw and write their rankings the same way; those
parts live here so that the tools agree on names, defaults and errors.
"""
import argparse
import json
import os.path as osp
import sys
from contextlib import nullcontext
from typing import Callable, Dict, List, Sequence, Type

import torch.nn as nn
from mmengine.config import Config, DictAction

from mmreid_clip.safe_load import trust_checkpoints
from mmreid_clip.utils.data_root import apply_data_root_args
from mmreid_clip.utils.pretrained import pretrained_towers, set_clip_weights
from mmreid_clip.visualization import (RankedListLayout, render_ranked_list,
                                       save_png, score_decimals, stack_rows)
from .inference import init_model
from .search_index import INDEX_KINDS
from .searchers import GallerySearcher, SearchResult, StaleIndexError

__all__ = [
    'add_data_root_arg', 'add_index_args', 'add_model_args',
    'add_ranking_args', 'check_gallery', 'check_search_args', 'check_topk',
    'load_model', 'load_searcher', 'make_layout', 'run_searches',
    'search_demo_parser'
]


def add_model_args(parser: argparse.ArgumentParser,
                   config_help: str = 'model config file') -> None:
    """Add ``config``, ``checkpoint`` and the model-loading options.

    Adds the positionals ``config`` and ``checkpoint`` (optional: without
    it the config's pretrained CLIP weights are used, zero-shot) and the
    options ``--clip-weights``, ``--device``, ``--trust-checkpoint`` and
    ``--cfg-options``, as :func:`load_model` reads them.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        config_help (str): Help text of ``config``.
    """
    parser.add_argument('config', help=config_help)
    parser.add_argument(
        'checkpoint',
        nargs='?',
        help='trained checkpoint; leave out for zero-shot use of the '
        'config\'s CLIP weights (or --clip-weights)')
    parser.add_argument(
        '--clip-weights',
        help='CLIP weights for every open_clip tower (an OpenAI archive such '
        'as ViT-B-16.pt, or an open_clip state dict), for zero-shot use '
        'without a checkpoint')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
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


def add_index_args(parser: argparse.ArgumentParser) -> None:
    """Add the gallery and index options :func:`load_searcher` reads.

    ``--gallery``, ``--index``, ``--rebuild``, ``--index-kind``,
    ``--batch-size`` and ``--num-workers``. Check them after parsing with
    :func:`check_gallery`.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
    """
    parser.add_argument(
        '--gallery',
        help='folder of person images (searched recursively); optional when '
        '--index names an existing index')
    parser.add_argument(
        '--index',
        help='gallery index file to load, or to write after '
        'encoding the gallery (e.g. gallery.index.npz)')
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
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument(
        '--num-workers',
        type=int,
        default=0,
        help='processes loading gallery images while indexing')


def add_ranking_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--topk`` and ``--tile-height`` of a drawn ranking.

    Check ``--topk`` after parsing with :func:`check_topk`; build the
    drawing layout with :func:`make_layout`.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
    """
    parser.add_argument('--topk', type=int, default=10, help='results shown')
    parser.add_argument(
        '--tile-height', type=int, default=192, help='tile height in pixels')


def search_demo_parser(description: str, out: str) -> argparse.ArgumentParser:
    """The parser of a command-line search demo, less its query option.

    Has the :func:`add_model_args`, :func:`add_index_args` and
    :func:`add_ranking_args` options, ``--out`` (the PNG, default ``out``)
    and ``--json``, as :func:`run_searches` reads them. Check the parsed
    arguments with :func:`check_search_args`.

    Args:
        description (str): The tool's description.
        out (str): Default output PNG file.

    Returns:
        argparse.ArgumentParser: Add the query option, then parse.
    """
    parser = argparse.ArgumentParser(description=description)
    add_model_args(parser)
    add_index_args(parser)
    add_ranking_args(parser)
    parser.add_argument('--out', default=out, help='output PNG file')
    parser.add_argument('--json', help='also write the rankings as JSON')
    return parser


def check_search_args(parser: argparse.ArgumentParser,
                      args: argparse.Namespace) -> None:
    """:func:`check_topk` and :func:`check_gallery` of a search demo."""
    check_topk(parser, args)
    check_gallery(parser, args)


def check_gallery(parser: argparse.ArgumentParser,
                  args: argparse.Namespace) -> None:
    """Exit through ``parser.error`` unless there is a gallery to search.

    Args:
        parser (argparse.ArgumentParser): The parser that made ``args``.
        args (argparse.Namespace): With the :func:`add_index_args` options.
    """
    if not args.gallery and not (args.index and osp.isfile(args.index)):
        parser.error('give --gallery (or --index naming an existing index)')


def check_topk(parser: argparse.ArgumentParser,
               args: argparse.Namespace) -> None:
    """Exit through ``parser.error`` when ``--topk`` is below 1.

    Args:
        parser (argparse.ArgumentParser): The parser that made ``args``.
        args (argparse.Namespace): With ``topk``.
    """
    if args.topk < 1:
        parser.error('--topk must be >= 1')


def add_data_root_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-root`` (every loader's dataset folder), which
    :func:`load_model` applies."""
    parser.add_argument(
        '--data-root',
        help='dataset folder (or its parent) of the test dataloader, '
        'instead of the configured data_root')


def load_model(args: argparse.Namespace) -> nn.Module:
    """The model of the :func:`add_model_args` options.

    Without a checkpoint the model is used zero-shot with its towers'
    pretrained weights (``--clip-weights`` sets them); a model that would
    then have random towers is refused (exit with the message).

    Args:
        args (argparse.Namespace): ``config``, ``checkpoint``, ``device``,
            ``cfg_options``, ``trust_checkpoint``, ``clip_weights`` and,
            when the tool has it, ``data_root`` (:func:`add_data_root_arg`;
            also a top-level ``data_root=`` in ``--cfg-options``), applied
            to the test loader of ``model.cfg``.

    Returns:
        nn.Module: From :func:`~mmreid_clip.apis.init_model`.
    """
    from mmreid_clip.utils import choose_torch_threads
    print(f'torch threads: {choose_torch_threads()}')
    config = Config.fromfile(args.config)
    if args.cfg_options:
        config.merge_from_dict(args.cfg_options)
    data_root = getattr(args, 'data_root', None)
    for note in apply_data_root_args(
            config, data_root, args.cfg_options,
            loaders=('test_dataloader', )):
        print(f'--data-root: {note}')
    clip_weights = getattr(args, 'clip_weights', None)
    if clip_weights:
        try:
            set_clip_weights(config.model, clip_weights)
        except ValueError as err:
            sys.exit(f'error: --clip-weights: {err}')
    if args.checkpoint is None:
        # zero-shot: the towers' own pretrained weights, never random ones
        towers = pretrained_towers(config.model)
        random = [key for key, value in towers if not value]
        if not towers or random:
            sys.exit(
                'error: no checkpoint, and the config builds '
                f'{", ".join(random) or "the model"} without pretrained '
                'weights: the features would be random. Give a trained '
                'checkpoint, or --clip-weights PATH (e.g. OpenAI\'s '
                'ViT-B-16.pt) for zero-shot search with CLIP\'s own weights.')
        print('zero-shot: no checkpoint, the towers load '
              f'{sorted({str(v) for _, v in towers})}')
    with trust_checkpoints() if args.trust_checkpoint else nullcontext():
        return init_model(config, args.checkpoint, args.device)


def load_searcher(searcher_cls: Type[GallerySearcher], model: nn.Module,
                  args: argparse.Namespace) -> GallerySearcher:
    """Load or build the gallery searcher of the :func:`add_index_args`
    options; exit with the message when the saved index is stale.

    Args:
        searcher_cls (type): :class:`TextPersonSearcher` or
            :class:`PersonReIdentifier`.
        model (nn.Module): The model.
        args (argparse.Namespace): With the :func:`add_index_args` options.

    Returns:
        GallerySearcher: A searcher with a gallery.
    """
    try:
        return searcher_cls.load_or_build(
            model,
            args.gallery,
            args.index,
            rebuild=args.rebuild,
            index_kind=args.index_kind,
            batch_size=args.batch_size,
            num_workers=args.num_workers)
    except StaleIndexError as err:
        sys.exit(f'error: {err}')


def make_layout(args: argparse.Namespace) -> RankedListLayout:
    """The ranked-list layout of ``--tile-height`` (tiles 1:2 wide:high)."""
    return RankedListLayout(
        tile_size=(args.tile_height // 2, args.tile_height))


def run_searches(search: Callable[[str], SearchResult],
                 queries: Sequence[str],
                 args: argparse.Namespace,
                 caption: Callable[[str], str],
                 show_query_image: bool = False) -> Dict:
    """Run, print and draw the queries of a command-line search demo.

    Prints each ranking, writes one PNG row per query to ``args.out`` and,
    with ``args.json``, the rankings as JSON (``query`` plus
    :meth:`SearchResult.to_dict`).

    Args:
        search (Callable): ``search(query) -> SearchResult``.
        queries (Sequence[str]): Query texts or image paths.
        args (argparse.Namespace): ``out``, ``json`` and the
            :func:`add_ranking_args` options.
        caption (Callable): ``caption(query)``, the text above a row.
        show_query_image (bool): Draw the query (an image path) left of its
            results.

    Returns:
        dict: ``{'out': png path, 'results': [SearchResult]}``.
    """
    layout = make_layout(args)
    rows: List = []
    results: List[SearchResult] = []
    for query in queries:
        result = search(query)
        results.append(result)
        print(f'\nquery: {query}')
        # enough decimals to tell the scores apart (BN-necked ReID
        # features give cosines that all round to 1.000)
        decimals = max(4, score_decimals(result.scores))
        for rank, (rel, score) in enumerate(
                zip(result.rel_paths, result.scores), 1):
            print(f'  #{rank:<3d} {score:{decimals + 3}.{decimals}f}  {rel}')
        rows.append(
            render_ranked_list(
                result.paths,
                result.scores,
                caption=caption(query),
                query_image=query if show_query_image else None,
                labels=[osp.basename(p) for p in result.rel_paths],
                layout=layout))
    out = save_png(stack_rows(rows), args.out)
    print(f'\nranked grid written to {out}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump([
                dict(query=q, **r.to_dict()) for q, r in zip(queries, results)
            ],
                      f,
                      indent=2)
    return dict(out=out, results=results)
