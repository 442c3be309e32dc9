"""Convert an official IRRA checkpoint to the CLIP text-image baseline.

    python tools/model_converters/irra_to_mmreid.py IN OUT
        [--img-size H W] [--force]

``IN`` is the ``best.pth`` of IRRA's released "Model & log" archives
(github.com/anosorae/IRRA, CUHK-PEDES / ICFG-PEDES / RSTPReid), written by
its ``Checkpointer``: ``{'model': state_dict, 'optimizer': ...,
'scheduler': ..., 'epoch': ...}``, where the model is ``model/build.py``'s
``IRRA``: ``base_model.*`` (a CLIP, partly fp16), the ID ``classifier`` and,
with MLM, ``cross_attn``, ``cross_modal_transformer``, ``ln_pre_t``,
``ln_pre_i``, ``ln_post`` and ``mlm_head``. A bare state dict is accepted
too.

``OUT`` is an MMEngine checkpoint for :class:`CLIPTextImageReID` (the
configs in ``configs/baselines/``): the two CLIP towers, which are all IRRA
uses at inference (image CLS and text EOT features, cosine similarity),
plus the ID classifier as ``id_head.fc``. The MLM branch is training-only
and has no counterpart in the baseline: it is dropped, and the dropped keys
are printed. Weights are cast to fp32.

The image size (``--img-size``, IRRA's 384x128 by default) is checked
against the positional embedding; IRRA's overlapping-patch option
(``stride_size`` below 16) is refused, since the baseline's ViT has none.
The command prints the ``--cfg-options`` for ``tools/test.py``, and those
that build the model without the CLIP archive (``pretrained=None``).
"""
import argparse
import sys
from typing import Dict, Optional, Sequence

import torch

from mmreid_clip.utils.checkpoint_convert import (Conversion, ConversionError,
                                                  KeyMapper,
                                                  check_output, count_blocks,
                                                  describe_keys,
                                                  format_cfg_options,
                                                  load_official_checkpoint,
                                                  shape_of,
                                                  strip_module_prefix,
                                                  save_conversion, tensor_dict)

OFFICIAL_CODE = 'https://github.com/anosorae/IRRA'
DEFAULT_IMG_SIZE = (384, 128)
# the baseline configs' arch ('ViT-B-16'), in OpenAI's layout
VIT_B16 = dict(
    width=768,
    layers=12,
    patch=16,
    embed_dim=512,
    text_width=512,
    text_layers=12,
    context=77,
    vocab_size=49408)
# training identities -> the zoo's baseline config of that dataset
CONFIG_BY_CLASSES = {
    11003: 'configs/baselines/clip-baseline_vit-b16_cuhk-pedes.py',
    3102: 'configs/baselines/clip-baseline_vit-b16_icfg-pedes.py',
    3701: 'configs/baselines/clip-baseline_vit-b16_rstpreid.py',
}
# IRRA's training-only modules (model/build.py, 'mlm' in loss_names)
DROPPABLE = ('cross_attn.', 'cross_modal_transformer.', 'ln_pre_t.',
             'ln_pre_i.', 'ln_post.', 'mlm_head.')
_TEXT = ('token_embedding.', 'positional_embedding', 'transformer.',
         'ln_final.', 'text_projection')
REQUIRED = ('base_model.visual.conv1.weight', 'base_model.visual.proj',
            'base_model.visual.positional_embedding',
            'base_model.token_embedding.weight',
            'base_model.positional_embedding', 'base_model.text_projection')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an official IRRA checkpoint to an mmreid_clip '
        'CLIPTextImageReID checkpoint')
    parser.add_argument('checkpoint', help='official checkpoint (best.pth)')
    parser.add_argument('out', help='converted MMEngine checkpoint (.pth)')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        default=DEFAULT_IMG_SIZE,
        help='training input size (IRRA --img_size); default 384 128')
    parser.add_argument(
        '--force', action='store_true', help='replace an existing OUT')
    return parser.parse_args(argv)


def official_state_dict(obj, source: str) -> Dict[str, torch.Tensor]:
    """The model tensors of an IRRA checkpoint, or a clear error."""
    if isinstance(obj, dict) and 'model' in obj:
        obj = obj['model']
    elif isinstance(obj, dict) and tensor_dict(obj.get('state_dict')):
        if any(k.startswith('image_encoder.') for k in obj['state_dict']):
            raise ConversionError(
                f'{source} is already an mmreid_clip checkpoint; nothing '
                'to convert')
    if not tensor_dict(obj):
        kind = (f'a dict with keys {describe_keys(map(str, obj))}'
                if isinstance(obj, dict) else type(obj).__name__)
        raise ConversionError(
            f'{source} holds {kind}, not what IRRA\'s Checkpointer saves '
            "({'model': state_dict with base_model.*, ...})")
    state_dict = strip_module_prefix(obj)
    if any(k.startswith('base_model.visual.layer1.') for k in state_dict):
        raise ConversionError(
            f'{source} has a ResNet image tower (base_model.visual.layer*); '
            'the baseline is built on CLIP ViTs only')
    missing = [k for k in REQUIRED if k not in state_dict]
    if missing:
        raise ConversionError(
            f'{source} is not an IRRA checkpoint: missing '
            f'{describe_keys(missing)} (it has {describe_keys(state_dict)})')
    return state_dict


def rename(key: str) -> Optional[str]:
    """Official key -> project key (None: not part of the baseline)."""
    if key.startswith('base_model.visual.'):
        return 'image_encoder.visual.' + key[len('base_model.visual.'):]
    if key.startswith('base_model.'):
        rest = key[len('base_model.'):]
        return 'text_encoder.' + rest if rest.startswith(_TEXT) else None
    if key in ('classifier.weight', 'classifier.bias'):
        return 'id_head.fc.' + key.split('.')[-1]
    return None


def convert(obj,
            source: str = 'checkpoint',
            img_size: Sequence[int] = DEFAULT_IMG_SIZE) -> Conversion:
    """Convert an IRRA checkpoint to a ``CLIPTextImageReID`` state dict.

    Args:
        obj: The loaded official checkpoint.
        source: How to name it in messages.
        img_size: Training input ``(H, W)``.

    Returns:
        Conversion: The weights, the dropped IRRA keys and what to tell
        the user.

    Raises:
        ConversionError: not an IRRA ViT checkpoint, unknown keys, or a
            positional embedding that does not fit ``img_size``.
    """
    sd = official_state_dict(obj, source)
    img_size = tuple(int(s) for s in img_size)
    width, _, patch, _ = shape_of(sd, 'base_model.visual.conv1.weight',
                                  source)
    n_pos = shape_of(sd, 'base_model.visual.positional_embedding', source)[0]
    grid = (img_size[0] // patch, img_size[1] // patch)
    if (img_size[0] % patch or img_size[1] % patch
            or grid[0] * grid[1] + 1 != n_pos):
        raise ConversionError(
            f'{source}: the positional embedding has {n_pos - 1} patch '
            f'positions, not the {grid[0]}x{grid[1]} grid of '
            f'{patch}-pixel patches at {img_size[0]}x{img_size[1]}; pass the '
            'training size with --img-size (overlapping patches, IRRA\'s '
            'stride_size < patch, are not supported)')
    vocab_size, text_width = shape_of(sd, 'base_model.token_embedding.weight',
                                      source)
    info = dict(
        width=width,
        layers=count_blocks(sd, 'base_model.visual.'),
        patch=patch,
        embed_dim=shape_of(sd, 'base_model.visual.proj', source)[1],
        text_width=text_width,
        text_layers=count_blocks(sd, 'base_model.'),
        context=shape_of(sd, 'base_model.positional_embedding', source)[0],
        vocab_size=vocab_size,
        img_size=list(img_size))
    mapper = KeyMapper(rename, droppable=lambda k: k.startswith(DROPPABLE))
    state_dict, dropped = mapper(sd, source)

    options: Dict[str, object] = {}
    notes = []
    if 'id_head.fc.weight' in state_dict:
        num_classes = state_dict['id_head.fc.weight'].shape[0]
        info['num_classes'] = num_classes
        options['model.id_head.num_classes'] = num_classes
        options['model.id_head.in_channels'] = info['embed_dim']
    else:
        info['num_classes'] = None
        # trained without the ID loss: the baseline's head would stay empty
        options['model.id_head'] = None
        notes.append('no ID classifier in the checkpoint (trained without '
                     "'id' in --loss_names): model.id_head=None")
    if img_size != DEFAULT_IMG_SIZE:
        options['model.image_encoder.img_size'] = img_size
        notes.append(f'trained at {img_size[0]}x{img_size[1]}: the test '
                     'pipeline of the config must resize to that size too')
    if info['context'] != VIT_B16['context']:
        options['model.text_encoder.context_length'] = info['context']
    no_archive = {
        'model.image_encoder.pretrained': None,
        'model.text_encoder.pretrained': None,
        # without a weights file the builder cannot tell that these are
        # OpenAI towers, which run QuickGELU
        'model.image_encoder.quick_gelu': True,
        'model.text_encoder.quick_gelu': True,
    }
    arch = None
    if any(info[k] != v for k, v in VIT_B16.items()):
        # OpenAI's CLIP: 64-wide heads in both towers, MLP ratio 4
        arch = dict(
            embed_dim=info['embed_dim'],
            vision_cfg=dict(
                image_size=img_size,
                layers=info['layers'],
                width=width,
                head_width=64,
                patch_size=patch),
            text_cfg=dict(
                context_length=info['context'],
                vocab_size=vocab_size,
                width=text_width,
                heads=max(text_width // 64, 1),
                layers=info['text_layers']))
    configs = []
    if arch is None and info['num_classes'] in CONFIG_BY_CLASSES:
        configs = [CONFIG_BY_CLASSES[info['num_classes']]]
    return Conversion(state_dict, options, no_archive, arch, info, configs,
                      notes, dropped)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    check_output(args.out, args.checkpoint, args.force)
    ckpt = load_official_checkpoint(args.checkpoint)
    conv = convert(ckpt, source=args.checkpoint, img_size=args.img_size)
    save_conversion(conv, ckpt, args.checkpoint, args.out, args.force,
                    'tools/model_converters/irra_to_mmreid.py',
                    OFFICIAL_CODE)
    info = conv.info
    print(f'IRRA checkpoint {args.checkpoint}: {info["layers"]}x'
          f'{info["width"]} image tower at {info["img_size"][0]}x'
          f'{info["img_size"][1]}, {info["text_layers"]}x'
          f'{info["text_width"]} text tower, '
          f'{info["num_classes"] or "no"} ID classes')
    if conv.dropped:
        print(f'dropped {len(conv.dropped)} tensors of IRRA\'s training-only '
              f'MLM branch: {", ".join(conv.dropped)}')
    for note in conv.notes:
        print(f'note: {note}')
    if conv.arch is not None:
        print('The towers are not ViT-B/16: set image_encoder.arch and '
              f'text_encoder.arch of the config to {conv.arch}')
    config = conv.configs[0] if conv.configs else '<config>'
    print('\nEvaluate it:\n  python tools/test.py '
          f'{config} {args.out} \\\n    --cfg-options '
          f'{format_cfg_options(conv.options)}')
    print('Without the CLIP weights file (only the converted checkpoint), '
          'add:\n    ' + format_cfg_options(conv.no_archive_options))


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (ValueError, OSError) as err:  # ConversionError is a ValueError
        sys.exit(f'error: {err}')
