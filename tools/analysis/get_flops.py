"""FLOPs and parameters of a model, per part (encoders, neck, heads).

    python tools/analysis/get_flops.py CONFIG [--caption TEXT]
        [--cfg-options key=value ...] [--json FILE]

Runs the inference path the tools use (the config's test pipeline and
tokenizer, the data preprocessor, the model's ``predict``) on one image
and on one caption under PyTorch's ``FlopCounterMode``, and reports, for
each top-level part of the model (``image_encoder``, ``text_encoder``,
``neck``, ...), the FLOPs it spends per image and per caption and its
parameters (all, and trainable). FLOPs count a multiply-add as 2 (PyTorch's
convention; fvcore / mmengine's analysis count it as 1). Only operations
with a FLOP formula are counted (matrix products, convolutions, attention);
element-wise work is not.

The model is built without its pretrained files (their values do not
change the count). Text-image models need the tokenizer (the CLIP BPE is
built in; a WordPiece ``vocab.txt`` must be there); image-only models are
measured on the image alone.
"""
import argparse
import json
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config, DictAction

DEFAULT_CAPTION = ('A young man wearing a blue jacket, black trousers and '
                   'white shoes, carrying a red backpack.')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='FLOPs and parameters per model part')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--caption', default=DEFAULT_CAPTION, help='caption to encode')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, key=value')
    parser.add_argument('--json', help='also write the numbers here')
    return parser.parse_args(argv)


def build_model(cfg: Config):
    """The model of ``cfg`` on the CPU, built from its architectures alone
    (weights do not change the count)."""
    from mmreid_clip.apis import init_model
    from mmreid_clip.utils.pretrained import without_weights
    cfg = Config(cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg))
    cfg.model = without_weights(cfg.model)
    return init_model(cfg)


def _dicts(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _dicts(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _dicts(value)


def _flops_by_part(model, run) -> Dict[str, int]:
    """FLOPs of ``run()`` per top-level child of ``model`` (and 'total')."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False, depth=None)
    # nn.MultiheadAttention's inference fast path is one fused op without a
    # FLOP formula: count the projections and the attention it replaces
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with counter, torch.no_grad():
            run()
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    root = type(model).__name__
    out: Dict[str, int] = OrderedDict()
    for name, ops in counter.get_flop_counts().items():
        parts = name.split('.')
        if len(parts) == 2 and parts[0] == root:
            out[parts[1]] = int(sum(ops.values()))
    total = int(counter.get_total_flops())
    own = total - sum(out.values())
    if own > 0:
        out['(model\'s own code)'] = own
    out['total'] = total
    return out


def measure(model, caption: str) -> Dict:
    """Per part: FLOPs per image, per caption, parameters."""
    from mmreid_clip.apis import encode_images, encode_texts
    from mmreid_clip.apis.inference import eval_dataset_cfg
    rng = np.random.RandomState(0)
    image = rng.randint(0, 256, size=(256, 128, 3), dtype=np.uint8)
    note = None
    ds = eval_dataset_cfg(model.cfg)
    missing = [
        n['vocab_file'] for n in _dicts(ds.get('text_pipeline') or [])
        if isinstance(n.get('vocab_file'), str)
        and not osp.exists(n['vocab_file'])
    ]
    if missing:
        ds['text_pipeline'] = []
        note = (f'caption not measured: the tokenizer vocabulary '
                f'{missing[0]!r} is not there')
    result = dict(image=_flops_by_part(
        model, lambda: encode_images(model, [image], batch_size=1)))
    has_text = bool(ds.get('text_pipeline'))
    if has_text:
        try:
            result['caption'] = _flops_by_part(
                model, lambda: encode_texts(model, [caption], batch_size=1))
        except (OSError, ValueError, KeyError) as err:
            note = f'caption not measured: {err}'
    params = OrderedDict()
    for name, child in model.named_children():
        if name == 'data_preprocessor':
            continue
        tensors = list(child.parameters())
        if not tensors:
            continue
        params[name] = (sum(p.numel() for p in tensors),
                        sum(p.numel() for p in tensors if p.requires_grad))
    return dict(flops=result, params=params, note=note)


def table(numbers: Dict) -> str:
    flops, params = numbers['flops'], numbers['params']
    parts = list(params)
    for kind in flops.values():
        parts += [p for p in kind if p not in parts and p != 'total']
    head = f'{"part":<22}{"GFLOPs/image":>14}{"GFLOPs/caption":>16}' \
           f'{"params (M)":>12}{"trainable (M)":>15}'
    lines = [head, '-' * len(head)]

    def g(kind, part):
        value = flops.get(kind, {}).get(part)
        return f'{value / 1e9:.3f}' if value else '-'

    for part in parts:
        total, train = params.get(part, (0, 0))
        lines.append(f'{part:<22}{g("image", part):>14}'
                     f'{g("caption", part):>16}{total / 1e6:>12.2f}'
                     f'{train / 1e6:>15.2f}')
    total = sum(v[0] for v in params.values())
    train = sum(v[1] for v in params.values())
    lines.append('-' * len(head))
    lines.append(f'{"total":<22}{g("image", "total"):>14}'
                 f'{g("caption", "total"):>16}{total / 1e6:>12.2f}'
                 f'{train / 1e6:>15.2f}')
    if numbers.get('note'):
        lines.append(numbers['note'])
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    from mmreid_clip.utils import register_all_modules
    register_all_modules(init_scope=False)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        model = build_model(cfg)
    except KeyError as err:
        sys.exit(f'error: {err}')
    numbers = measure(model, args.caption)
    print(f'{osp.basename(args.config)} ({type(model).__name__}); FLOPs '
          'count a multiply-add as 2; one input, inference path\n')
    print(table(numbers))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(numbers, f, indent=2)
    return numbers


if __name__ == '__main__':
    main()
