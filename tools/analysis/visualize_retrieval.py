"""Draw the ranked gallery of test queries: true matches green, others red.

    python tools/analysis/visualize_retrieval.py CONFIG CHECKPOINT \\
        [--queries 0 12 57 | --worst 10] [--topk 10] [--out-dir DIR] \\
        [--sheet] [--show-gt] [--setting NAME] [--batch-size N] \\
        [--num-workers N] [--device cpu] [--cfg-options k=v ...] \\
        [--trust-checkpoint]

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

Image ReID test sets (items with a ``subset``: LTCC, PRCC, VC-Clothes,
DeepChange, SynthCC) are drawn per setting of the config's ``ReIDMetric``
(``--setting``, default its first: e.g. ``general`` or ``cc``): the query
image on the left, then its top-k gallery images with the setting's junk
(same identity in the same camera, and in the cloth-changing / same-clothes
modes same / other clothes) removed, as the metric ranks them; queries are
numbered in the setting's query order and labelled with identity, camera
and clothes.
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
from mmreid_clip.apis.cli import (add_data_root_arg, add_model_args,
                                  add_ranking_args, check_topk, load_model,
                                  make_layout)
from mmreid_clip.engine.progress import progress
from mmreid_clip.evaluation.functional import rank_queries
from mmreid_clip.utils import missing_files
from mmreid_clip.visualization import render_ranked_list, save_png, stack_rows


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Visualise the ranked results of test queries')
    add_model_args(parser, config_help='test config file')
    add_data_root_arg(parser)
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
    parser.add_argument(
        '--setting',
        help='ReID test sets: the ReIDMetric setting to draw (default: the '
        'config\'s first)')
    parser.add_argument('--batch-size', type=int, help='override the loader')
    parser.add_argument('--num-workers', type=int, help='override the loader')
    args = parser.parse_args(argv)
    check_topk(parser, args)
    if args.worst is not None and args.worst < 1:
        parser.error('--worst must be >= 1')
    if args.queries is None and args.worst is None:
        args.worst = 8
    return args


#: Labels of ReID test items kept for drawing and junk removal.
REID_LABELS = ('pid', 'camid', 'clothes_id', 'tracklet_id')


def collect_test_features(model: torch.nn.Module,
                          batch_size: Optional[int] = None,
                          num_workers: Optional[int] = None) -> Dict:
    """Run ``model`` over its config's test split.

    Args:
        model (nn.Module): From :func:`~mmreid_clip.apis.init_model`.
        batch_size (int, optional): Override the test loader's.
        num_workers (int, optional): Override the test loader's.

    Returns:
        dict: For text-image sets ``gallery`` (features ``G x D``,
        ``pids``, ``paths``, by ``image_id``) and ``queries`` (features
        ``Q x D``, ``pids``, ``captions``, ``image_ids``, in loader order);
        for image ReID sets ``reid``: ``feats`` (``N x D``), ``paths``,
        ``subsets`` and int64 ``pid``, ``camid``, ``clothes_id``,
        ``tracklet_id`` (-1 where absent), in loader order.

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
    reid: List[dict] = []
    model.eval()
    with torch.no_grad():
        for batch in progress(loader, desc='encoding the test set'):
            for s in model.test_step(batch):
                meta = s.metainfo
                if 'subset' in meta and 'img_feat' in s:
                    reid.append(
                        dict(
                            feat=s.img_feat.float().cpu().reshape(-1),
                            path=meta.get('img_path'),
                            subset=str(meta['subset']),
                            **{
                                k: int(meta.get(k, -1))
                                for k in REID_LABELS
                            }))
                    continue
                if meta.get('has_image') and 'img_feat' in s:
                    gallery.setdefault(
                        int(meta['image_id']),
                        (s.img_feat.float().cpu(), int(
                            meta['pid']), meta['img_path']))
                if meta.get('has_text') and 'text_feat' in s:
                    queries.append(
                        (s.text_feat.float().cpu(), int(meta['pid']),
                         meta['caption'], int(meta['image_id'])))
    if reid:
        return dict(
            reid=dict(
                feats=torch.stack([r['feat'] for r in reid]),
                paths=[r['path'] for r in reid],
                subsets=[r['subset'] for r in reid],
                **{
                    k: torch.tensor([r[k] for r in reid])
                    for k in REID_LABELS
                }))
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


def save_drawn(drawn: List[tuple], args: argparse.Namespace) -> List[str]:
    """Write ``(query index, image)`` rows: one PNG per query, or all in
    ``retrieval_sheet.png`` with ``--sheet``; returns the files."""
    os.makedirs(args.out_dir, exist_ok=True)
    if args.sheet:
        return [
            save_png(
                stack_rows([image for _, image in drawn]),
                osp.join(args.out_dir, 'retrieval_sheet.png'))
        ]
    return [
        save_png(image, osp.join(args.out_dir, f'query_{q:05d}.png'))
        for q, image in drawn
    ]


def reid_setting(cfg, name: Optional[str]) -> dict:
    """The ``ReIDMetric`` setting ``name`` of a config's test evaluator
    (its first when None), with every default filled in."""
    from mmreid_clip.evaluation import ReIDMetric
    evaluators = cfg.get('test_evaluator')
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    metric = next((e for e in evaluators or []
                   if e.get('type') in ('ReIDMetric',
                                        'mmreid_clip.ReIDMetric')),
                  None)
    settings = ReIDMetric.resolve_settings(
        metric.get('settings', 'ltcc') if metric else 'ltcc')
    if name is None:
        return settings[0]
    for setting in settings:
        if setting['name'] == name:
            return setting
    raise ValueError(f'--setting {name!r} is not a setting of the config\'s '
                     'ReIDMetric; choose from '
                     f'{[s["name"] for s in settings]}')


def draw_reid(data: dict, setting: dict, args: argparse.Namespace,
              layout) -> dict:
    """Rank and draw the queries of one ReID setting (see the module doc).

    Returns:
        dict: ``files``, ``summary`` and ``setting``.
    """
    from mmreid_clip.evaluation import reid_junk_fn
    subsets = data['subsets']
    keep = torch.ones(len(subsets), dtype=torch.bool)
    if setting['cameras'] is not None:
        keep &= torch.isin(data['camid'], torch.tensor(setting['cameras']))
    q_idx = torch.tensor([
        i for i, s in enumerate(subsets)
        if s == setting['query'] and keep[i]
    ], dtype=torch.long)
    g_idx = torch.tensor([
        i for i, s in enumerate(subsets)
        if s == setting['gallery'] and keep[i]
    ], dtype=torch.long)
    if not len(q_idx) or not len(g_idx):
        raise ValueError(f'setting {setting["name"]!r}: {len(q_idx)} '
                         f'queries ({setting["query"]!r}) and {len(g_idx)} '
                         f'gallery items ({setting["gallery"]!r}); subsets '
                         f'found: {sorted(set(subsets))}')
    feats = torch.nn.functional.normalize(data['feats'], dim=1)
    cam = data[setting['camera_key']]
    mode = setting['mode']
    lab = {k: (data[k][q_idx], data[k][g_idx]) for k in ('pid', 'clothes_id')}
    junk_fn = reid_junk_fn(mode, *lab['pid'], cam[q_idx], cam[g_idx],
                           *(lab['clothes_id'] if mode != 'general' else ()))
    ranks = rank_queries(
        feats[q_idx], feats[g_idx], *lab['pid'], junk_fn=junk_fn)
    chosen = select_queries(ranks.ap, ranks.valid, args.queries, args.worst)
    drawn, summary = [], []
    gallery = feats[g_idx]
    for q in chosen:
        # one row of scores: junk out of the list, as in the metric
        scores = gallery @ feats[q_idx[q]]
        scores[junk_fn(slice(q, q + 1))[0]] = float('-inf')
        k = min(args.topk, int(torch.isfinite(scores).sum()))
        top_scores, top = torch.topk(scores, k)
        gi, qi = g_idx[top], int(q_idx[q])
        pid = int(data['pid'][qi])
        matches = (data['pid'][gi] == pid).tolist()
        ap = float(ranks.ap[q])
        caption = (f'{setting["name"]} query {q} (id {pid}, cam '
                   f'{int(cam[qi])}, clothes {int(data["clothes_id"][qi])}, '
                   f'{mode}; AP {100 * ap:.1f}%)')
        labels = [
            f'id {int(data["pid"][g])} c{int(cam[g])} '
            f'cl{int(data["clothes_id"][g])}' for g in gi.tolist()
        ]
        image = render_ranked_list([data['paths'][g] for g in gi.tolist()],
                                   top_scores.tolist(),
                                   matches,
                                   caption=caption,
                                   query_image=data['paths'][qi],
                                   labels=labels,
                                   query_label='query',
                                   layout=layout)
        summary.append(
            dict(
                query=q,
                query_path=data['paths'][qi],
                pid=pid,
                ap=ap,
                first_match_rank=int(ranks.first_rank[q]),
                topk_paths=[data['paths'][g] for g in gi.tolist()],
                topk_scores=top_scores.tolist(),
                topk_matches=matches))
        drawn.append((q, image))
    return dict(
        files=save_drawn(drawn, args),
        summary=summary,
        setting=setting['name'])


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the tool; return ``{'files': [...], 'summary': [...]}``."""
    args = parse_args(argv)
    model = load_model(args)
    data = collect_test_features(model, args.batch_size, args.num_workers)
    if 'reid' in data:
        out = draw_reid(data['reid'], reid_setting(model.cfg, args.setting),
                        args, make_layout(args))
        with open(osp.join(args.out_dir, 'summary.json'), 'w') as f:
            json.dump(out['summary'], f, indent=2)
        print(f'{len(out["summary"])} queries of setting {out["setting"]!r} '
              f'drawn into {args.out_dir}')
        return out
    if args.setting is not None:
        raise ValueError('--setting is for image ReID test sets; this one is '
                         'text-image')
    gal, qry = data['gallery'], data['queries']
    ranks = rank_queries(qry['feats'], gal['feats'], qry['pids'], gal['pids'])
    chosen = select_queries(ranks.ap, ranks.valid, args.queries, args.worst)
    scores, indices = chunked_topk(qry['feats'][chosen], gal['feats'],
                                   args.topk)
    layout = make_layout(args)
    path_of_image = dict(zip(gal['image_ids'], gal['paths']))
    drawn, summary = [], []
    for row, q in enumerate(chosen):
        pid = int(qry['pids'][q])
        top = indices[row].tolist()
        matches = [int(gal['pids'][g]) == pid for g in top]
        ap = float(ranks.ap[q])
        caption = (f'query {q} (id {pid}, AP {100 * ap:.1f}%): '
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
        drawn.append((q, image))
    files = save_drawn(drawn, args)
    with open(osp.join(args.out_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print(f'{len(chosen)} queries drawn into {args.out_dir} '
          f'({", ".join(osp.basename(p) for p in files[:5])}'
          f'{", ..." if len(files) > 5 else ""})')
    return dict(files=files, summary=summary)


if __name__ == '__main__':
    main()
