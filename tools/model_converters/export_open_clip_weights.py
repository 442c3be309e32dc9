"""Export the two CLIP towers of an MMEngine checkpoint as open_clip weights.

    python tools/model_converters/export_open_clip_weights.py CHECKPOINT OUT
        [--arch clip-tiny] [--img-size H W] [--no-verify]

``CHECKPOINT`` is what ``tools/train.py`` saved for a model whose image and
text encoders are :class:`OpenCLIPVisionTransformer` and
:class:`OpenCLIPTextTransformer` (``image_encoder.visual.*``,
``text_encoder.{token_embedding,positional_embedding,transformer,ln_final,
text_projection}``), e.g. one trained with
``configs/baselines/clip-pretrain_synthpedes-tiny.py``.
``OUT`` is a plain open_clip ``CLIP`` state dict (``visual.*``, the inlined
text keys and ``logit_scale``) that any config loads with
``pretrained=OUT``. The logit scale is the one an ``InfoNCELoss`` of the
checkpoint learnt, else CLIP's initial log(1/0.07).

The towers must keep their projections (``with_proj=True``): a file without
``visual.proj``/``text_projection`` would not fit open_clip's ``CLIP``.

Unless ``--no-verify``, the file is read back with the project's loader
(:func:`build_open_clip`, strict) at the checkpoint's input size and every
tensor compared with the checkpoint's, so a file that would not load, or
would load differently, is never left behind silently: the file is written
and verified under a temporary name, then renamed, so a failed export
neither leaves a file nor removes an existing one. Arch and input size are
taken from the config stored in the checkpoint when not given; that config
is Python source and is parsed as data, never executed
(``mmreid_clip.utils.checkpoint_check.parse_config_text``).
"""
import argparse
import math
import os
import os.path as osp
import sys
from typing import Dict, Optional, Sequence, Tuple

import torch

IMAGE_PREFIX = 'image_encoder.visual.'
TEXT_PREFIX = 'text_encoder.'
# The text parts open_clip's CLIP keeps inline (not under ``text.``).
TEXT_KEYS = ('token_embedding.', 'positional_embedding', 'transformer.',
             'ln_final.', 'text_projection')
DEFAULT_LOGIT_SCALE = math.log(1 / 0.07)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export the CLIP towers of an MMEngine checkpoint as an '
        'open_clip state dict')
    parser.add_argument('checkpoint', help='MMEngine checkpoint (.pth)')
    parser.add_argument('out', help='output open_clip state dict (.pth)')
    parser.add_argument(
        '--arch',
        help='open_clip arch of the towers (default: the image encoder '
        'arch of the config saved in the checkpoint)')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input size the towers were trained at, used to verify the '
        'file (default: from the config saved in the checkpoint)')
    parser.add_argument(
        '--no-verify',
        action='store_true',
        help='skip reading the file back with build_open_clip')
    return parser.parse_args(argv)


def convert_state_dict(state_dict: Dict[str, torch.Tensor],
                       source: str = 'checkpoint') -> Dict[str, torch.Tensor]:
    """Map a text-image model's tower weights to open_clip ``CLIP`` keys.

    Args:
        state_dict: The model state dict of the MMEngine checkpoint.
        source: Name used in error messages.

    Returns:
        An open_clip state dict: ``visual.*``, the inlined text keys and
        ``logit_scale`` (a 0-d tensor, as open_clip's ``CLIP`` holds it).

    Raises:
        KeyError: a tower, or a tower's projection, is missing.
    """
    out = {}
    for key, value in state_dict.items():
        if key.startswith(IMAGE_PREFIX):
            out['visual.' + key[len(IMAGE_PREFIX):]] = value
        elif key.startswith(TEXT_PREFIX):
            short = key[len(TEXT_PREFIX):]
            if short.startswith(TEXT_KEYS):
                out[short] = value
    for required in ('visual.proj', 'visual.conv1.weight', 'text_projection',
                     'token_embedding.weight'):
        if required not in out:
            raise KeyError(
                f'{source}: no {required!r} after conversion; the checkpoint '
                f'must hold {IMAGE_PREFIX}* and {TEXT_PREFIX}* weights of '
                'OpenCLIPVisionTransformer/OpenCLIPTextTransformer towers '
                'with with_proj=True')
    scales = [
        v for k, v in state_dict.items()
        if k.startswith('losses.') and k.endswith('.log_scale')
    ]
    scale = scales[0].reshape(
        ()) if len(scales) == 1 else torch.tensor(DEFAULT_LOGIT_SCALE)
    out['logit_scale'] = scale.detach().float().clone()
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def _config_defaults(ckpt: dict) -> Tuple[Optional[str], Optional[tuple]]:
    """Arch and img_size of the image encoder in the saved config.

    The config text is parsed as data (``parse_config_text``), never
    executed: a checkpoint whose config carries code cannot run it here.
    """
    from mmreid_clip.utils.checkpoint_check import saved_config
    model = saved_config(ckpt).get('model')
    enc = model.get('image_encoder') if isinstance(model, dict) else None
    if not isinstance(enc, dict):
        return None, None
    arch, size = enc.get('arch'), enc.get('img_size')
    arch = arch if isinstance(arch, (str, dict)) else None
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    size = tuple(size) if isinstance(size, (list, tuple)) and all(
        isinstance(v, int) for v in size) else None
    return arch, size


def verify(path: str, weights: Dict[str, torch.Tensor], arch: str,
           img_size: Optional[Sequence[int]]) -> None:
    """Load ``path`` as ``pretrained=`` does and compare every tensor.

    Raises:
        RuntimeError: a tensor differs, or the file does not fit ``arch``.
    """
    from mmreid_clip.models.backbones.openclip_factory import build_open_clip
    model = build_open_clip(arch, path, img_size=img_size)
    loaded = model.state_dict()
    for key, value in weights.items():
        if not torch.equal(loaded[key].reshape(value.shape), value):
            raise RuntimeError(f'{path}: {key!r} reads back differently')


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    from mmreid_clip.safe_load import safe_torch_load
    from mmreid_clip.utils.atomic_io import atomic_replace, temporary_path
    if osp.exists(args.out) and osp.samefile(args.out, args.checkpoint):
        raise ValueError(f'the output {args.out!r} is the input checkpoint; '
                         'write the exported file elsewhere')
    ckpt = safe_torch_load(args.checkpoint, map_location='cpu')
    state_dict = ckpt.get('state_dict', ckpt) if isinstance(ckpt,
                                                            dict) else None
    if not isinstance(state_dict, dict):
        raise ValueError(f'{args.checkpoint}: no state dict in the file')
    weights = convert_state_dict(state_dict, args.checkpoint)
    arch, img_size = args.arch, tuple(args.img_size or ()) or None
    if not args.no_verify and (arch is None or img_size is None):
        saved_arch, saved_size = _config_defaults(ckpt)
        arch = arch or saved_arch
        img_size = img_size or saved_size
        if arch is None:
            raise ValueError(f'{args.checkpoint} stores no config naming '
                             'the arch; pass --arch (or --no-verify)')
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    # written and verified under a temporary name, then renamed: a failed
    # export never leaves a bad file, nor removes an existing one
    tmp = temporary_path(args.out)
    try:
        torch.save(weights, tmp)
        if not args.no_verify:
            verify(tmp, weights, arch, img_size)
        atomic_replace(tmp, args.out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    n_params = sum(v.numel() for v in weights.values())
    print(f'wrote {len(weights)} tensors ({n_params / 1e6:.2f}M values) to '
          f'{args.out}')
    if not args.no_verify:
        print(f'verified: {args.out} loads into arch {arch!r} at img_size '
              f'{img_size} and equals the checkpoint\'s towers')


if __name__ == '__main__':
    sys.exit(main())
