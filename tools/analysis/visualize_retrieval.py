"""Draw the ranked gallery of test queries: true matches green, others red.

    python tools/analysis/visualize_retrieval.py CONFIG CHECKPOINT \\
        [--queries 0 12 57 | --worst 10] [--topk 10] [--out-dir DIR] \\
        [--sheet] [--show-gt] [--batch-size N] [--num-workers N] \\
        [--device cpu] [--cfg-options k=v ...] [--trust-checkpoint]

Runs the model over the config's test split exactly as ``tools/test.py``
does (the test dataloader, ``test_step``), ranks the gallery images of every
caption query by cosine similarity (the stable order of the metric), and
draws the chosen queries: ``--queries`` by index (0-based, in caption order)
or the ``--worst`` K by average precision. Each row shows the caption above
the top-k images, outlined green when the image shows the query's identity
and red when not, with rank, score and identity below; ``--show-gt`` adds
the image the caption was written for on the left (blue). One PNG per query
(``query_00012.png``), or all in ``retrieval_sheet.png`` with ``--sheet``;
``summary.json`` lists each drawn query's caption, AP and ranked list.
"""
import argparse
import copy
import json
import os
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from mmreid_clip.apis import chunked_topk
from mmreid_clip.apis.cli import (add_model_args, add_ranking_args, check_topk,
                                  load_model, make_layout)
from mmreid_clip.evaluation.functional import rank_queries
from mmreid_clip.utils import missing_files
from mmreid_clip.visualization import render_ranked_list, save_png, stack_rows


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Visualise the ranked results of test queries')
    add_model_args(parser, config_help='test config file')
    add_ranking_args(parser)
    pick = parser.add_mutually_exclusive_group()
    pick.add_argument(
        '--queries',
        type=int,
        nargs='+',
        help='query indices (0-based, in caption order)')
    pick.add_argument(
        '--worst',
        type=int,
        help='draw the K queries with the lowest average precision '
        '(default: 8)')
    parser.add_argument(
        '--out-dir', default='work_dirs/retrieval_vis', help='output folder')
    parser.add_argument(
        '--sheet', action='store_true', help='one PNG with all queries')
    parser.add_argument(
        '--show-gt',
        action='store_true',
        help='draw the image each caption describes left of its results')
    parser.add_argument('--batch-size', type=int, help='override the loader')
    parser.add_argument('--num-workers', type=int, help='override the loader')
    args = parser.parse_args(argv)
    check_topk(parser, args)
    if args.worst is not None and args.worst < 1:
        parser.error('--worst must be >= 1')
    if args.queries is None and args.worst is None:
        args.worst = 8
    return args


def collect_test_features(model: torch.nn.Module,
                          batch_size: Optional[int] = None,
                          num_workers: Optional[int] = None) -> Dict:
    """Run ``model`` over its config's test split.

    Args:
        model (nn.Module): From :func:`~mmreid_clip.apis.init_model`.
        batch_size (int, optional): Override the test loader's.
        num_workers (int, optional): Override the test loader's.

    Returns:
        dict: ``gallery`` (features ``G x D``, ``pids``, ``paths``, by
        ``image_id``) and ``queries`` (features ``Q x D``, ``pids``,
        ``captions``, ``image_ids``, in loader order).

    Raises:
        ValueError: The split has no caption queries or no images.
    """
    cfg = model.cfg
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    if batch_size is not None:
        loader_cfg.batch_size = batch_size
    if num_workers is not None:
        loader_cfg.num_workers = num_workers
    if loader_cfg.get('num_workers', 0) == 0:
        loader_cfg.persistent_workers = False
    problems = missing_files(cfg, ('test_dataloader', ))
    if problems:
        raise FileNotFoundError('The config names files that are not there:'
                                '\n  - ' + '\n  - '.join(problems))
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmreid_clip')):
        loader = Runner.build_dataloader(loader_cfg, seed=0)
    gallery: Dict[int, tuple] = {}
    queries: List[tuple] = []
    model.eval()
    with torch.no_grad():
        for batch in loader:
            for s in model.test_step(batch):
                meta = s.metainfo
                if meta.get('has_image') and 'img_feat' in s:
                    gallery.setdefault(
                        int(meta['image_id']),
                        (s.img_feat.float().cpu(), int(
                            meta['pid']), meta['img_path']))
                if meta.get('has_text') and 'text_feat' in s:
                    queries.append(
                        (s.text_feat.float().cpu(), int(meta['pid']),
                         meta['caption'], int(meta['image_id'])))
    if not queries:
        raise ValueError('the test split yielded no caption queries with '
                         'text_feat: this tool needs a text-image dataset '
                         'and model')
    if not gallery:
        raise ValueError('the test split yielded no gallery images with '
                         'img_feat')
    ids = sorted(gallery)
    return dict(
        gallery=dict(
            feats=torch.stack([gallery[i][0] for i in ids]),
            pids=torch.tensor([gallery[i][1] for i in ids]),
            paths=[gallery[i][2] for i in ids],
            image_ids=ids),
        queries=dict(
            feats=torch.stack([q[0] for q in queries]),
            pids=torch.tensor([q[1] for q in queries]),
            captions=[q[2] for q in queries],
            image_ids=[q[3] for q in queries]))


def select_queries(ap: torch.Tensor, valid: torch.Tensor,
                   queries: Optional[List[int]],
                   worst: Optional[int]) -> List[int]:
    """The query indices to draw (checked), or the ``worst`` by AP."""
    num = ap.numel()
    if queries is not None:
        bad = [q for q in queries if not 0 <= q < num]
        if bad:
            raise ValueError(f'query indices {bad} are out of range: the test '
                             f'split has {num} queries (0..{num - 1})')
        return list(queries)
    # queries without any positive have no AP; leave them out
    candidates = torch.nonzero(valid).flatten()
    order = torch.argsort(ap[candidates], stable=True)
    return candidates[order[:worst]].tolist()


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the tool; return ``{'files': [...], 'summary': [...]}``."""
    args = parse_args(argv)
    model = load_model(args)
    data = collect_test_features(model, args.batch_size, args.num_workers)
    gal, qry = data['gallery'], data['queries']
    ranks = rank_queries(qry['feats'], gal['feats'], qry['pids'], gal['pids'])
    chosen = select_queries(ranks.ap, ranks.valid, args.queries, args.worst)
    scores, indices = chunked_topk(qry['feats'][chosen], gal['feats'],
                                   args.topk)
    layout = make_layout(args)
    path_of_image = dict(zip(gal['image_ids'], gal['paths']))
    rows, summary, files = [], [], []
    os.makedirs(args.out_dir, exist_ok=True)
    for row, q in enumerate(chosen):
        pid = int(qry['pids'][q])
        top = indices[row].tolist()
        matches = [int(gal['pids'][g]) == pid for g in top]
        ap = float(ranks.ap[q])
        caption = (f'query {q} (id {pid}, AP {100 * ap:.1f}): '
                   f'"{qry["captions"][q]}"')
        image = render_ranked_list(
            [gal['paths'][g] for g in top],
            scores[row].tolist(),
            matches,
            caption=caption,
            query_image=(path_of_image.get(qry['image_ids'][q])
                         if args.show_gt else None),
            labels=[f'id {int(gal["pids"][g])}' for g in top],
            query_label='described',
            layout=layout)
        summary.append(
            dict(
                query=q,
                caption=qry['captions'][q],
                pid=pid,
                ap=ap,
                first_match_rank=int(ranks.first_rank[q]),
                topk_paths=[gal['paths'][g] for g in top],
                topk_scores=scores[row].tolist(),
                topk_matches=matches))
        if args.sheet:
            rows.append(image)
        else:
            files.append(
                save_png(image, osp.join(args.out_dir, f'query_{q:05d}.png')))
    if args.sheet:
        files.append(
            save_png(
                stack_rows(rows), osp.join(args.out_dir,
                                           'retrieval_sheet.png')))
    with open(osp.join(args.out_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print(f'{len(chosen)} queries drawn into {args.out_dir} '
          f'({", ".join(osp.basename(p) for p in files[:5])}'
          f'{", ..." if len(files) > 5 else ""})')
    return dict(files=files, summary=summary)


if __name__ == '__main__':
    main()
