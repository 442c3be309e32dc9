"""Convert an official CFine checkpoint to this project's ``CFine``.

    python tools/model_converters/cfine_to_mmreid.py IN OUT
        [--config CFG] [--bert-heads N] [--mgf-heads N] [--force]

``IN`` is what CFine's ``train.py`` (github.com/shuanglinyan/CFine)
saves as ``best_model.pth.tar``: ``{'network': state_dict, 'optimizer':
..., 'W': the CMPC classifier, 'epoch': ...}``, the network wrapped in
``DataParallel`` (``module.`` prefixes): ``image_model.clip_model.*`` (the
CLIP ViT without projection), ``language_model.textExtractor.*`` (BERT),
``block.layers.0.*`` (the MGF cross-attention block) and the BN necks
``bottleneck_image`` / ``bottleneck_text``. A bare state dict is accepted
too.

``OUT`` is an MMEngine checkpoint for :class:`CFine` (the configs in
``configs/cfine/``): ``image_encoder.visual.*``, ``text_encoder.bert.*``,
``neck.mgf_block.*``, ``neck.bn_img.*`` / ``neck.bn_txt.*`` and ``W`` as the
``cmpc_W`` of the config's ``CMPCLoss`` (``losses.1`` in the zoo's configs;
``--config`` reads its position from another config). BERT's pooler is
dropped: CFine never uses it and the project's encoder has none.

Head counts are not stored in the weights: BERT's defaults to
``hidden_size // 64`` (12 for bert-base) and the MGF block's to the 12 the
official ``Model`` hard-codes. The command prints the ``--cfg-options`` for
``tools/test.py`` and those that build the model without the CLIP and BERT
weights (``pretrained=None``); the tokenizer's ``vocab.txt`` is still
needed.
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

OFFICIAL_CODE = 'https://github.com/shuanglinyan/CFine'
IMAGE = 'image_model.clip_model.'
TEXT = 'language_model.textExtractor.'
BLOCK = 'block.layers.0.'
# official ResidualCrossAttentionBlock -> the project's MGF block
_BLOCK_NAMES = (
    ('ln_0.', 'ln_0.'),
    ('self_attn.', 'self_attn.'),
    ('ln_1.', 'ln_1.'),
    ('attn.', 'cross_attn.'),
    ('ln_2.', 'ln_2.'),
    ('mlp.c_fc.', 'mlp.0.'),
    ('mlp.c_proj.', 'mlp.2.'),
)
DROPPABLE = (TEXT + 'pooler.', )
DEFAULT_CMPC_INDEX = 1  # losses=[CMPMLoss, CMPCLoss, DiversityLoss]
DEFAULT_IMG_SIZE = (224, 224)
MGF_HEADS = 12  # models/model.py: ResidualAttention(d_model=768, n_head=12)
# training identities -> the zoo's config of that dataset
CONFIG_BY_CLASSES = {
    11003: 'configs/cfine/cfine_vit-b16-bert_cuhk-pedes.py',
    3102: 'configs/cfine/cfine_vit-b16-bert_icfg-pedes.py',
    3701: 'configs/cfine/cfine_vit-b16-bert_rstpreid.py',
}
REQUIRED = (IMAGE + 'conv1.weight', IMAGE + 'positional_embedding',
            TEXT + 'embeddings.word_embeddings.weight',
            TEXT + 'embeddings.position_embeddings.weight',
            BLOCK + 'attn.in_proj_weight', 'bottleneck_image.weight',
            'bottleneck_text.weight')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an official CFine checkpoint to an mmreid_clip '
        'CFine checkpoint')
    parser.add_argument('checkpoint', help='official best_model.pth.tar')
    parser.add_argument('out', help='converted MMEngine checkpoint (.pth)')
    parser.add_argument(
        '--config',
        help='config the checkpoint is for: W goes to its CMPCLoss entry '
        f'(default: losses.{DEFAULT_CMPC_INDEX}, as in configs/cfine/)')
    parser.add_argument(
        '--bert-heads',
        type=int,
        help='attention heads of the BERT (default hidden_size // 64)')
    parser.add_argument(
        '--mgf-heads',
        type=int,
        default=MGF_HEADS,
        help=f'heads of the MGF block (default {MGF_HEADS}, the official '
        'value)')
    parser.add_argument(
        '--force', action='store_true', help='replace an existing OUT')
    return parser.parse_args(argv)


def cmpc_index(config: Optional[str]) -> Optional[int]:
    """Position of ``CMPCLoss`` in ``model.losses`` of ``config``.

    None when the config has no CMPC loss (``W`` is then dropped).
    """
    if config is None:
        return DEFAULT_CMPC_INDEX
    from mmengine.config import Config
    losses = Config.fromfile(config).model.get('losses', [])
    found = [i for i, c in enumerate(losses) if c.get('type') == 'CMPCLoss']
    return found[0] if found else None


def official_parts(obj, source: str):
    """``(network state dict, W or None)`` of a CFine checkpoint."""
    weight = None
    if isinstance(obj, dict) and 'network' in obj:
        weight = obj.get('W')
        obj = obj['network']
    elif isinstance(obj, dict) and tensor_dict(obj.get('state_dict')):
        if any(k.startswith('image_encoder.') for k in obj['state_dict']):
            raise ConversionError(
                f'{source} is already an mmreid_clip checkpoint; nothing '
                'to convert')
    if not tensor_dict(obj):
        kind = (f'a dict with keys {describe_keys(map(str, obj))}'
                if isinstance(obj, dict) else type(obj).__name__)
        raise ConversionError(
            f'{source} holds {kind}, not what CFine\'s train.py saves '
            "({'network': state_dict, 'W': ..., ...})")
    state_dict = strip_module_prefix(obj)
    if not any(k.startswith(IMAGE) for k in state_dict) and any(
            k.startswith('image_model.') for k in state_dict):
        raise ConversionError(
            f'{source} has a non-CLIP image model (image_model.*, e.g. '
            '--img_model vit); only CFine-CLIP is supported')
    missing = [k for k in REQUIRED if k not in state_dict]
    if missing:
        raise ConversionError(
            f'{source} is not a CFine checkpoint: missing '
            f'{describe_keys(missing)} (it has {describe_keys(state_dict)})')
    if weight is not None and not isinstance(weight, torch.Tensor):
        raise ConversionError(f'{source}: W is a {type(weight).__name__}, '
                              'not a tensor')
    return state_dict, weight


def rename(key: str) -> Optional[str]:
    """Official key -> project key (None: not part of the model)."""
    if key.startswith(IMAGE):
        return 'image_encoder.visual.' + key[len(IMAGE):]
    if key.startswith(TEXT):
        rest = key[len(TEXT):]
        return None if rest.startswith('pooler.') else (
            'text_encoder.bert.' + rest)
    if key.startswith(BLOCK):
        rest = key[len(BLOCK):]
        for old, new in _BLOCK_NAMES:
            if rest.startswith(old):
                return 'neck.mgf_block.' + new + rest[len(old):]
        return None
    if key.startswith('bottleneck_image.'):
        return 'neck.bn_img.' + key[len('bottleneck_image.'):]
    if key.startswith('bottleneck_text.'):
        return 'neck.bn_txt.' + key[len('bottleneck_text.'):]
    return None


def convert(obj,
            source: str = 'checkpoint',
            cmpc: Optional[int] = DEFAULT_CMPC_INDEX,
            bert_heads: Optional[int] = None,
            mgf_heads: int = MGF_HEADS) -> Conversion:
    """Convert a CFine checkpoint to a ``CFine`` state dict.

    Args:
        obj: The loaded official checkpoint.
        source: How to name it in messages.
        cmpc: Index of ``CMPCLoss`` in the config's ``model.losses``; None
            drops ``W``.
        bert_heads: BERT attention heads (default ``hidden // 64``).
        mgf_heads: Heads of the MGF block.

    Returns:
        Conversion: The weights, the dropped keys and what to tell the
        user.

    Raises:
        ConversionError: not a CFine-CLIP checkpoint or unknown keys.
    """
    sd, weight = official_parts(obj, source)
    width, _, patch, _ = shape_of(sd, IMAGE + 'conv1.weight', source)
    n_pos = shape_of(sd, IMAGE + 'positional_embedding', source)[0]
    side = round((n_pos - 1)**0.5)
    if side * side != n_pos - 1:
        raise ConversionError(f'{source}: {n_pos - 1} patch positions are '
                              'not a square grid, as CFine\'s ViT builds')
    img_size = (side * patch, side * patch)
    vocab, hidden = shape_of(sd, TEXT + 'embeddings.word_embeddings.weight',
                             source)
    bert = dict(
        hidden_size=hidden,
        num_hidden_layers=count_blocks(sd, TEXT, 'encoder.layer'),
        num_attention_heads=bert_heads or max(hidden // 64, 1),
        intermediate_size=shape_of(
            sd, TEXT + 'encoder.layer.0.intermediate.dense.weight',
            source)[0],
        max_position_embeddings=shape_of(
            sd, TEXT + 'embeddings.position_embeddings.weight', source)[0])
    feature = shape_of(sd, 'bottleneck_image.weight', source)[0]
    info = dict(
        width=width,
        layers=count_blocks(sd, IMAGE),
        patch=patch,
        img_size=list(img_size),
        bert=dict(bert, vocab_size=vocab),
        feature_size=feature,
        mgf_heads=mgf_heads)
    mapper = KeyMapper(rename, droppable=lambda k: k.startswith(DROPPABLE))
    state_dict, dropped = mapper(sd, source)

    options: Dict[str, object] = {}
    notes = []
    if weight is None:
        info['num_classes'] = None
        notes.append('no W (CMPC classifier) in the checkpoint: use a config '
                     'without CMPCLoss')
    else:
        rows, num_classes = weight.shape
        info['num_classes'] = num_classes
        if cmpc is None:
            dropped.append('W')
            notes.append('the config has no CMPCLoss: W (the CMPC '
                         'classifier, training only) is dropped')
        else:
            state_dict[f'losses.{cmpc}.cmpc_W'] = weight.detach().float(
            ).clone().contiguous()
            options[f'model.losses.{cmpc}.num_classes'] = num_classes
            options[f'model.losses.{cmpc}.in_channels'] = rows
    if img_size != DEFAULT_IMG_SIZE:
        options['model.image_encoder.img_size'] = img_size
        notes.append(f'trained at {img_size[0]}x{img_size[1]}: the test '
                     'pipeline of the config must resize to that size too')
    if feature != 768 or mgf_heads != MGF_HEADS:
        options['model.neck.embed_dims'] = feature
        options['model.neck.num_heads'] = mgf_heads
    vit_b16 = width == 768 and patch == 16 and info['layers'] == 12
    arch = None
    if not vit_b16:
        # the image encoder keeps open_clip's visual tower only; the text
        # part of the arch is built and discarded, so it is kept minimal
        arch = dict(
            embed_dim=width,
            vision_cfg=dict(
                image_size=img_size[0],
                layers=info['layers'],
                width=width,
                head_width=64,
                patch_size=patch),
            text_cfg=dict(
                context_length=2, vocab_size=2, width=64, heads=1,
                layers=1))
    from mmreid_clip.models.backbones.bert_text import BERT_BASE
    no_archive: Dict[str, object] = {
        'model.image_encoder.pretrained': None,
        # OpenAI's CLIP runs QuickGELU; without the file the builder
        # cannot tell
        'model.image_encoder.quick_gelu': True,
        'model.text_encoder.pretrained': None,
    }
    if bert == BERT_BASE:
        no_archive['model.text_encoder.config'] = 'bert-base'
        notes.append(f'without the BERT folder keep the tokenizer\'s '
                     f'vocab.txt ({vocab} tokens) as text_encoder.vocab_file')
    else:
        # a dict cannot go through --cfg-options: printed for the config
        no_archive['model.text_encoder.config'] = dict(bert,
                                                       vocab_size=vocab)
    configs = []
    if (vit_b16 and bert == BERT_BASE
            and info['num_classes'] in CONFIG_BY_CLASSES):
        configs = [CONFIG_BY_CLASSES[info['num_classes']]]
    return Conversion(state_dict, options, no_archive, arch, info, configs,
                      notes, dropped)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    check_output(args.out, args.checkpoint, args.force)
    ckpt = load_official_checkpoint(args.checkpoint)
    conv = convert(
        ckpt,
        source=args.checkpoint,
        cmpc=cmpc_index(args.config),
        bert_heads=args.bert_heads,
        mgf_heads=args.mgf_heads)
    save_conversion(conv, ckpt, args.checkpoint, args.out, args.force,
                    'tools/model_converters/cfine_to_mmreid.py',
                    OFFICIAL_CODE)
    info = conv.info
    print(f'CFine checkpoint {args.checkpoint}: {info["layers"]}x'
          f'{info["width"]} CLIP ViT at {info["img_size"][0]}x'
          f'{info["img_size"][1]}, {info["bert"]["num_hidden_layers"]}x'
          f'{info["bert"]["hidden_size"]} BERT, '
          f'{info["num_classes"] or "no"} CMPC classes')
    if conv.dropped:
        print(f'dropped {len(conv.dropped)} tensors CFine\'s inference does '
              f'not use: {", ".join(conv.dropped)}')
    for note in conv.notes:
        print(f'note: {note}')
    if conv.arch is not None:
        print('The image tower is not ViT-B/16: set image_encoder.arch of '
              f'the config to {conv.arch}')
    config = conv.configs[0] if conv.configs else (args.config or '<config>')
    print('\nEvaluate it:\n  python tools/test.py '
          f'{config} {args.out}' + (
              ' \\\n    --cfg-options ' + format_cfg_options(conv.options)
              if conv.options else ''))
    simple = {
        k: v
        for k, v in conv.no_archive_options.items()
        if not isinstance(v, dict)
    }
    print('Without the CLIP and BERT weights (only the converted '
          'checkpoint), add:\n    ' + format_cfg_options(simple))
    for key, value in conv.no_archive_options.items():
        if isinstance(value, dict):
            print(f'  and set {key} = {value} in the config')


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (ValueError, OSError) as err:  # ConversionError is a ValueError
        sys.exit(f'error: {err}')
