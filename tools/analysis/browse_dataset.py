"""Look at dataset samples as the model gets them, after the pipeline.

    python tools/analysis/browse_dataset.py CONFIG
        [--phase {train,val,test,stage1}] [--data-root DIR]
        [--show-number 12 | --indices I [I ...]] [--original] [--cols 4]
        [--output-dir DIR] [--cfg-options key=value ...]

Builds the dataset of ``<phase>_dataloader`` (``stage1`` is CLIP-ReID /
CCAF's feature-cache loader) and runs each item through its pipeline up to
the packing transform, so every view is drawn as the model will see it
(augmentations included, one random draw per item): the image, the
human-parsing mask over it (CC datasets with masks), the shielding and
clothes-only views (CCAF), with the caption (text-image datasets) and the
identity / clothes / camera below. ``--original`` adds the image file as it
is on disk first. Writes one sheet, ``<output-dir>/<config>_<phase>.png``
(default output dir ``work_dirs/browse_dataset``).
"""
import argparse
import copy
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import Config, DictAction
from PIL import Image

from mmreid_clip.utils.data_root import apply_data_root_args
from mmreid_clip.visualization import TextRenderer, save_png, to_pil

PHASES = ('train', 'val', 'test', 'stage1')
#: Views drawn, in order: (results key, title).
VIEWS = (('img', 'image'), ('gt_seg_map', 'parsing mask'),
         ('shield_img', 'shielding view'), ('clothes_img', 'clothes view'))
#: LIP's 20 labels (SCHP's ``lip`` set), for the mask legend.
LIP_LABELS = ('background', 'hat', 'hair', 'glove', 'sunglasses',
              'upper-clothes', 'dress', 'coat', 'socks', 'pants', 'jumpsuits',
              'scarf', 'skirt', 'face', 'left-arm', 'right-arm', 'left-leg',
              'right-leg', 'left-shoe', 'right-shoe')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Draw dataset samples after the pipeline')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--phase',
        choices=PHASES,
        default='train',
        help='which dataloader\'s dataset (default: train)')
    parser.add_argument(
        '--data-root',
        help='dataset folder (or its parent) for every loader')
    pick = parser.add_mutually_exclusive_group()
    pick.add_argument(
        '--show-number',
        type=int,
        default=12,
        help='samples drawn, spread evenly over the dataset (default 12)')
    pick.add_argument(
        '--indices', type=int, nargs='+', help='these items (0-based)')
    parser.add_argument(
        '--original',
        action='store_true',
        help='also draw the image file before the pipeline')
    parser.add_argument('--cols', type=int, default=4, help='samples per row')
    parser.add_argument(
        '--tile-height', type=int, default=192, help='view height in pixels')
    parser.add_argument(
        '--output-dir',
        default='work_dirs/browse_dataset',
        help='where the sheet goes')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, key=value')
    return parser.parse_args(argv)


def build_dataset(cfg: Config, phase: str):
    from mmengine.registry import DefaultScope

    from mmreid_clip.registry import DATASETS
    key = f'{phase}_dataloader'
    loader = cfg.get(key)
    if not loader or not loader.get('dataset'):
        have = [k for k in cfg.keys() if k.endswith('_dataloader')]
        sys.exit(f'error: the config has no {key}.dataset (loaders: '
                 f'{", ".join(have) or "none"})')
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmreid_clip')):
        dataset = DATASETS.build(copy.deepcopy(loader.dataset))
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    return dataset


def _inner(dataset):
    while not hasattr(dataset, 'pipeline') and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    return dataset


def run_pipeline(dataset, idx: int) -> Optional[Dict]:
    """The item's results dict after every transform before packing."""
    ds = _inner(dataset)
    results = copy.deepcopy(ds.get_data_info(idx))
    if 'img_path' in results:
        for transform in getattr(ds.pipeline, 'transforms', []):
            if type(transform).__name__.startswith('Pack'):
                break
            results = transform(results)
            if results is None:
                return None
    return results


def _rgb(img: np.ndarray) -> np.ndarray:
    """A pipeline view (BGR, uint8 or float on 0-255) as RGB uint8."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img[..., ::-1]


def _palette(n: int = 256) -> np.ndarray:
    rng = np.random.RandomState(7)
    pal = rng.randint(40, 255, size=(n, 3)).astype(np.uint8)
    pal[0] = 0
    return pal


def _mask_overlay(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    colour = _palette()[np.asarray(mask, dtype=np.int64) % 256]
    base = _rgb(img).astype(np.float32)
    fg = (np.asarray(mask) > 0)[..., None]
    out = np.where(fg, 0.45 * base + 0.55 * colour, 0.6 * base)
    return out.astype(np.uint8)


def sample_views(results: Dict, original: bool) -> List:
    """``[(title, RGB array)]`` of one item."""
    views = []
    if original and results.get('img_path'):
        views.append(('file', np.asarray(to_pil(results['img_path']))))
    for key, title in VIEWS:
        value = results.get(key)
        if value is None:
            continue
        if key == 'gt_seg_map':
            if results.get('img') is None:
                continue
            img = results['img']
            if img.shape[:2] != value.shape[:2]:
                continue
            views.append((title, _mask_overlay(img, value)))
        else:
            views.append((title, _rgb(value)))
    return views


def describe(results: Dict, idx: int) -> str:
    parts = [f'#{idx}']
    for key, name in (('pid', 'pid'), ('clothes_id', 'clothes'),
                      ('camid', 'cam')):
        if results.get(key) is not None:
            parts.append(f'{name} {results[key]}')
    text = ' '.join(parts)
    if results.get('img_path'):
        text += f'\n{osp.basename(results["img_path"])}'
    if results.get('caption'):
        text += f'\n"{results["caption"]}"'
    labels = results.get('gt_seg_map')
    if labels is not None:
        present = [
            LIP_LABELS[v] if v < len(LIP_LABELS) else str(v)
            for v in np.unique(labels) if v > 0
        ]
        text += '\nmask: ' + ', '.join(present)
    return text


def render_sample(views: List, text: str, tile_h: int,
                  font: TextRenderer) -> Image.Image:
    gap, pad = 4, 6
    tiles = []
    for title, arr in views:
        img = Image.fromarray(arr)
        w = max(1, round(img.width * tile_h / img.height))
        tiles.append((title, img.resize((w, tile_h), Image.BILINEAR)))
    width = max(
        sum(t.width for _, t in tiles) + gap * (len(tiles) - 1) + 2 * pad,
        160)
    lines = font.wrap(text, width - 2 * pad, max_lines=8)
    head = font.line_height
    height = pad + head + tile_h + pad + len(lines) * font.line_height + pad
    canvas = Image.new('RGB', (width, height), (255, 255, 255))
    x = pad
    for title, tile in tiles:
        font.draw(canvas, (x, pad), title, fill=(90, 90, 90))
        canvas.paste(tile, (x, pad + head))
        x += tile.width + gap
    y = pad + head + tile_h + pad
    for line in lines:
        font.draw(canvas, (pad, y), line, fill=(20, 20, 20))
        y += font.line_height
    return canvas


def make_sheet(panels: List[Image.Image], cols: int) -> Image.Image:
    cols = max(1, min(cols, len(panels)))
    rows = [panels[i:i + cols] for i in range(0, len(panels), cols)]
    gap = 8
    cell_w = max(p.width for p in panels)
    heights = [max(p.height for p in row) for row in rows]
    sheet = Image.new(
        'RGB', (cols * cell_w + (cols + 1) * gap,
                sum(heights) + (len(rows) + 1) * gap), (235, 235, 235))
    y = gap
    for row, h in zip(rows, heights):
        x = gap
        for panel in row:
            sheet.paste(panel, (x, y))
            x += cell_w + gap
        y += h + gap
    return sheet


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    from mmreid_clip.utils import register_all_modules
    register_all_modules(init_scope=False)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    for note in apply_data_root_args(cfg, args.data_root, args.cfg_options):
        print(f'--data-root: {note}')
    dataset = build_dataset(cfg, args.phase)
    n = len(dataset)
    if n == 0:
        sys.exit(f'error: the {args.phase} dataset is empty')
    if args.indices:
        bad = [i for i in args.indices if not 0 <= i < n]
        if bad:
            sys.exit(f'error: --indices {bad} outside 0..{n - 1}')
        indices = list(args.indices)
    else:
        k = max(1, min(args.show_number, n))
        indices = sorted({int(i) for i in np.linspace(0, n - 1, k)})
    font = TextRenderer(12)
    panels = []
    for idx in indices:
        results = run_pipeline(dataset, idx)
        if results is None:
            print(f'item {idx}: dropped by the pipeline')
            continue
        views = sample_views(results, args.original)
        text = describe(results, idx)
        if not views:
            views = [('(no image)', np.full((64, 32, 3), 235, np.uint8))]
        panels.append(render_sample(views, text, args.tile_height, font))
    if not panels:
        sys.exit('error: every item was dropped by the pipeline')
    name = osp.splitext(osp.basename(args.config))[0]
    os.makedirs(args.output_dir, exist_ok=True)
    out = save_png(
        make_sheet(panels, args.cols),
        osp.join(args.output_dir, f'{name}_{args.phase}.png'))
    print(f'{len(panels)} of {n} {args.phase} samples drawn to {out}')
    return dict(out=out, indices=indices, size=n)


if __name__ == '__main__':
    main()
