"""Convert an official CLIP-ReID checkpoint to this project's ``CLIPReID``.

    python tools/model_converters/clip_reid_to_mmreid.py IN OUT
        [--img-size H W] [--stride S] [--sie-coef C]
        [--clip-weights ViT-B-16.pt] [--force]

``IN`` is what the official CLIP-ReID training (github.com/Syliz517/CLIP-ReID,
``train_clipreid.py``) saves and its README links, e.g.
``ViT-B-16_60.pth``: the ``state_dict()`` of ``make_model_clipreid.
build_transformer`` with ``image_encoder.*`` (CLIP's visual tower),
``text_encoder.*`` (the text transformer, no token embedding),
``prompt_learner.*`` (the identity prompts and the embedded template),
``classifier(_proj)``, ``bottleneck(_proj)`` and, with SIE, ``cv_embed``.
``OUT`` is an MMEngine checkpoint for :class:`CLIPReID` that
``tools/test.py <config> OUT`` evaluates.

Read from the checkpoint and reported: the ViT-B/16 towers (other widths
print the ``arch`` they need), the number of identities, SIE (camera count)
and the patch stride (OLP), which is found from the positional embedding
and ``--img-size`` (the training input, 256x128 in every released run).
The SIE factor is not stored: ``--sie-coef`` defaults to 1.0, the value of
the README's SIE+OLP command. Refused with a message: the CNN (RN50)
variants (the project's CLIP-ReID is the ViT one) and the "ViT-baseline"
checkpoints (``train.py``: no prompts, no text tower). The vehicle models
(VeRi, VehicleID) are not supported either (no configs here): their prompt
reads "... vehicle.", which only ``--clip-weights`` can tell apart from
"... person." (the conversion then stops).

The official model keeps no token embedding: only the embedded prompt
template (``token_prefix``/``token_suffix``). Without ``--clip-weights`` the
rows of the template's tokens are rebuilt from those buffers and the others
are zero, which leaves image features and the identity prompts exact
(``tools/test.py`` needs nothing else); with ``--clip-weights`` (OpenAI's
``ViT-B-16.pt``, read by the project's safe loader) the full table is
copied after checking that it agrees with the template buffers.

The command prints the ``--cfg-options`` for ``tools/test.py`` and those
that build the model without the CLIP archive (``pretrained=None``), for
when only the converted checkpoint is at hand.
"""
import argparse
import sys
from typing import Dict, List, Optional, Sequence, Tuple

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

OFFICIAL_CODE = 'https://github.com/Syliz517/CLIP-ReID'
# CLIP-ReID's person prompt (make_model_clipreid.PromptLearner); the four
# X are replaced by the learnt identity vectors
TEMPLATE = 'A photo of a X X X X person.'
NUM_CTX = 4
DEFAULT_IMG_SIZE = (256, 128)
# open_clip's 'ViT-B-16' (OpenAI's layout): the arch of the zoo's configs
VIT_B16 = dict(
    width=768,
    layers=12,
    patch=16,
    embed_dim=512,
    text_width=512,
    text_layers=12,
    context=77)
# training identities of the datasets the CLIP-ReID README releases models
# for -> the zoo's configs (configs/clip_reid/)
CONFIG_BY_CLASSES = {
    751: ('market1501', ),
    1041: ('msmt17', ),
    702: ('dukemtmc', 'occluded-duke'),
}
REQUIRED = ('image_encoder.conv1.weight', 'image_encoder.proj',
            'image_encoder.positional_embedding', 'classifier.weight',
            'classifier_proj.weight', 'prompt_learner.cls_ctx',
            'prompt_learner.token_prefix', 'prompt_learner.token_suffix',
            'text_encoder.positional_embedding',
            'text_encoder.text_projection')
_FIXED = {
    'classifier.weight': 'head.classifiers.0.weight',
    'classifier_proj.weight': 'head.classifiers.1.weight',
    'prompt_learner.cls_ctx': 'id_prompt.ctx',
    'cv_embed': 'image_encoder.sie_embed',
}
_PREFIXES = (
    ('image_encoder.', 'image_encoder.visual.'),
    ('text_encoder.', 'text_encoder.'),
    ('bottleneck_proj.', 'head.bns.1.'),
    ('bottleneck.', 'head.bns.0.'),
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an official CLIP-ReID checkpoint to an '
        'mmreid_clip CLIPReID checkpoint')
    parser.add_argument('checkpoint', help='official checkpoint (.pth)')
    parser.add_argument('out', help='converted MMEngine checkpoint (.pth)')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        default=DEFAULT_IMG_SIZE,
        help='training input size (INPUT.SIZE_TRAIN), used to find the '
        'patch stride; default 256 128')
    parser.add_argument(
        '--stride',
        type=int,
        help='patch stride (MODEL.STRIDE_SIZE) when the positional '
        'embedding fits several; checked against it otherwise')
    parser.add_argument(
        '--sie-coef',
        type=float,
        default=1.0,
        help='SIE factor the model was trained with (MODEL.SIE_COE; not '
        'stored in the checkpoint); default 1.0 as in the README\'s '
        'SIE+OLP command')
    parser.add_argument(
        '--clip-weights',
        help='OpenAI CLIP weights the model was trained from (ViT-B-16.pt): '
        'copies the full token embedding instead of only the rows of the '
        'prompt template')
    parser.add_argument(
        '--force', action='store_true', help='replace an existing OUT')
    return parser.parse_args(argv)


def official_state_dict(obj, source: str) -> Dict[str, torch.Tensor]:
    """The tensors of an official CLIP-ReID checkpoint, or a clear error.

    Raises:
        ConversionError: the object is not CLIP-ReID's ``state_dict()``,
            is the RN50 variant, or lacks tensors the conversion needs.
    """
    if isinstance(obj, dict) and tensor_dict(obj.get('state_dict')):
        inner = obj['state_dict']
        if any(k.startswith('image_encoder.visual.') for k in inner):
            raise ConversionError(
                f'{source} is already an mmreid_clip checkpoint '
                '(image_encoder.visual.*); nothing to convert')
        obj = inner
    if not tensor_dict(obj):
        kind = (f'a dict with keys {describe_keys(map(str, obj))}'
                if isinstance(obj, dict) else type(obj).__name__)
        raise ConversionError(
            f'{source} holds {kind}, not the state dict CLIP-ReID\'s '
            'train_clipreid.py saves (image_encoder.*, text_encoder.*, '
            'prompt_learner.*, classifier*, bottleneck*)')
    state_dict = strip_module_prefix(obj)
    if any(k.startswith(('image_encoder.layer1.', 'image_encoder.attnpool.'))
           for k in state_dict):
        raise ConversionError(
            f'{source} is the CNN (RN50) variant of CLIP-ReID '
            '(image_encoder.layer*/attnpool); only the ViT-B/16 variant is '
            'supported: the project\'s CLIPReID has a ViT image encoder')
    missing = [k for k in REQUIRED if k not in state_dict]
    if ('image_encoder.conv1.weight' in state_dict
            and 'classifier.weight' in state_dict
            and not any(k.startswith(('prompt_learner.', 'text_encoder.'))
                        for k in state_dict)):
        raise ConversionError(
            f'{source} is CLIP-ReID\'s ViT baseline (train.py, '
            'make_model.py: no identity prompts, no text tower); the '
            'converter takes CLIP-ReID checkpoints (train_clipreid.py)')
    if missing:
        raise ConversionError(
            f'{source} is not a CLIP-ReID ViT checkpoint: missing '
            f'{describe_keys(missing)} (it has '
            f'{describe_keys(state_dict)})')
    return state_dict


def rename(key: str) -> Optional[str]:
    """Official key -> project key (None: not a model tensor here)."""
    if key in _FIXED:
        return _FIXED[key]
    for old, new in _PREFIXES:
        if key.startswith(old):
            return new + key[len(old):]
    return None


def find_strides(num_patches: int, img_size: Tuple[int, int],
                 patch: int) -> List[int]:
    """Strides whose patch grid on ``img_size`` has ``num_patches`` cells
    (CLIP-ReID: ``(size - patch) // stride + 1`` per side)."""
    h, w = img_size
    return [
        s for s in range(patch, 0, -1)
        if ((h - patch) // s + 1) * ((w - patch) // s + 1) == num_patches
    ]


def template_ids(context_length: int) -> Tuple[torch.Tensor, int]:
    """Token ids of the prompt template, as CLIP's tokenizer writes them,
    and the id of its placeholder word."""
    from mmreid_clip.datasets.tokenizers import OpenCLIPTokenizer
    tokenizer = OpenCLIPTokenizer(context_length=context_length)
    (placeholder, ) = tokenizer.encode('X')
    return tokenizer(TEMPLATE)[0], placeholder


def rebuild_token_embedding(prefix: torch.Tensor, suffix: torch.Tensor,
                            context: int, vocab_size: int, source: str
                            ) -> Tuple[torch.Tensor, Dict[int, torch.Tensor]]:
    """The token-embedding rows the embedded template reveals.

    ``token_prefix``/``token_suffix`` are ``token_embedding(template)``
    around the learnt positions, so position ``i`` holds the row of token
    ``template[i]``. Tokens that occur twice must have equal rows, which
    also checks that the buffers belong to this template.

    Returns:
        ``(weight, rows)``: a ``vocab_size x width`` table, zero outside the
        template's tokens, and those rows by token id.

    Raises:
        ConversionError: the buffers do not fit the template.
    """
    ids, x_id = template_ids(context)
    n_pre, n_suf = prefix.shape[-2], suffix.shape[-2]
    placeholders = ids[n_pre:n_pre + NUM_CTX].tolist()
    if (n_pre + NUM_CTX + n_suf != context
            or placeholders != [x_id] * NUM_CTX):
        raise ConversionError(
            f'{source}: token_prefix ({n_pre} positions) and token_suffix '
            f'({n_suf}) do not fit the template {TEMPLATE!r} in a '
            f'{context}-token context')
    positions = list(range(n_pre)) + list(
        range(n_pre + NUM_CTX, context))
    embedded = torch.cat([prefix.reshape(n_pre, -1),
                          suffix.reshape(n_suf, -1)]).float()
    rows: Dict[int, torch.Tensor] = {}
    for pos, row in zip(positions, embedded):
        token = int(ids[pos])
        if token in rows and not torch.equal(rows[token], row):
            raise ConversionError(
                f'{source}: the prompt buffers hold two different '
                f'embeddings for token {token}; they are not the embedded '
                f'template {TEMPLATE!r} (another prompt or dataset?)')
        rows[token] = row
    weight = torch.zeros(vocab_size, embedded.shape[1])
    for token, row in rows.items():
        weight[token] = row
    return weight, rows


def archive_token_embedding(path: str, rows: Dict[int, torch.Tensor],
                            source: str) -> torch.Tensor:
    """OpenAI's token embedding, checked against the template rows."""
    from mmreid_clip.models.backbones.clip_weights import load_weights_file
    weights, _ = load_weights_file(path)
    table = weights.get('token_embedding.weight')
    if table is None:
        raise ConversionError(f'{path!r} has no token_embedding.weight; '
                              'pass OpenAI\'s CLIP weights (ViT-B-16.pt)')
    table = table.float()
    for token, row in rows.items():
        if row.shape != table[token].shape or not torch.equal(
                table[token], row):
            raise ConversionError(
                f'{source} was not trained from {path!r}: the embedding of '
                f'template token {token} differs')
    return table.clone()


def _arch(info: dict) -> Optional[dict]:
    """None for ViT-B/16 (the configs' arch), else the open_clip arch dict
    of the towers the checkpoint holds."""
    if all(info[k] == v for k, v in VIT_B16.items()):
        return None
    # OpenAI's CLIP uses 64-wide heads in both towers and an MLP ratio of 4
    return dict(
        embed_dim=info['embed_dim'],
        vision_cfg=dict(
            image_size=tuple(info['img_size']),
            layers=info['layers'],
            width=info['width'],
            head_width=64,
            patch_size=info['patch']),
        text_cfg=dict(
            context_length=info['context'],
            vocab_size=info['vocab_size'],
            width=info['text_width'],
            heads=max(info['text_width'] // 64, 1),
            layers=info['text_layers']))


def convert(obj,
            source: str = 'checkpoint',
            img_size: Sequence[int] = DEFAULT_IMG_SIZE,
            stride: Optional[int] = None,
            sie_coef: float = 1.0,
            clip_weights: Optional[str] = None) -> Conversion:
    """Convert what CLIP-ReID's training saved to a ``CLIPReID`` state dict.

    Args:
        obj: The loaded official checkpoint.
        source: How to name it in messages.
        img_size: Training input ``(H, W)``.
        stride: Patch stride; None finds it from the positional embedding.
        sie_coef: SIE factor of the training run (not in the checkpoint).
        clip_weights: OpenAI weights file for the full token embedding.

    Returns:
        Conversion: The weights and what to tell the user.

    Raises:
        ConversionError: not a CLIP-ReID ViT checkpoint, unknown keys, a
            stride that does not fit, or CLIP weights that do not match.
    """
    sd = official_state_dict(obj, source)
    img_size = tuple(int(s) for s in img_size)
    width, _, patch, _ = shape_of(sd, 'image_encoder.conv1.weight', source)
    n_pos = shape_of(sd, 'image_encoder.positional_embedding', source)[0]
    context, text_width = shape_of(sd, 'text_encoder.positional_embedding',
                                   source)
    num_classes = shape_of(sd, 'classifier.weight', source)[0]
    for key in ('classifier_proj.weight', 'prompt_learner.cls_ctx'):
        if shape_of(sd, key, source)[0] != num_classes:
            raise ConversionError(
                f'{source}: {key} has {shape_of(sd, key, source)[0]} rows '
                f'but classifier.weight {num_classes}')

    strides = find_strides(n_pos - 1, img_size, patch)
    if stride is not None:
        if stride not in strides:
            raise ConversionError(
                f'{source}: the positional embedding has {n_pos - 1} patch '
                f'positions, which stride {stride} does not give at '
                f'{img_size[0]}x{img_size[1]} (strides that do: '
                f'{strides or "none"}); check --img-size')
    elif len(strides) == 1:
        stride = strides[0]
    else:
        raise ConversionError(
            f'{source}: the positional embedding has {n_pos - 1} patch '
            f'positions; at {img_size[0]}x{img_size[1]} with {patch}-pixel '
            'patches ' + (f'strides {strides} all give that: pass --stride'
                          if strides else 'no stride gives that: pass the '
                          'training input size with --img-size'))

    prefix = sd.pop('prompt_learner.token_prefix')
    suffix = sd.pop('prompt_learner.token_suffix')
    from mmreid_clip.datasets.tokenizers import OpenCLIPTokenizer
    vocab_size = OpenCLIPTokenizer(context_length=context).vocab_size
    token_table, rows = rebuild_token_embedding(prefix, suffix, context,
                                                vocab_size, source)
    notes = []
    if clip_weights is not None:
        token_table = archive_token_embedding(clip_weights, rows, source)
        vocab_size = token_table.shape[0]
    else:
        notes.append(
            f'text_encoder.token_embedding: {len(rows)} of {vocab_size} '
            'rows rebuilt from the prompt template the official checkpoint '
            'stores, the others zero. Image features and identity prompts '
            'are exact; to encode other text pass --clip-weights.')

    mapper = KeyMapper(rename, droppable=lambda key: False)
    state_dict, _ = mapper(sd, source)
    state_dict['text_encoder.token_embedding.weight'] = token_table

    sie = sd.get('cv_embed')
    sie_cameras = 0 if sie is None else int(sie.shape[0])
    info = dict(
        width=width,
        layers=count_blocks(sd, 'image_encoder.'),
        patch=patch,
        embed_dim=shape_of(sd, 'image_encoder.proj', source)[1],
        text_width=text_width,
        text_layers=count_blocks(sd, 'text_encoder.'),
        context=context,
        vocab_size=vocab_size,
        img_size=list(img_size),
        stride=stride,
        num_classes=num_classes,
        sie_cameras=sie_cameras)
    arch = _arch(info)
    options: Dict[str, object] = {'model.num_classes': num_classes}
    if arch is not None:
        # the configs' BNNeck widths are ViT-B/16's (768, 512)
        options['model.head.in_channels'] = (width, info['embed_dim'])
    if img_size != DEFAULT_IMG_SIZE:
        options['model.image_encoder.img_size'] = img_size
        notes.append(f'trained at {img_size[0]}x{img_size[1]}: the test '
                     'pipeline of the config must resize to that size too')
    options['model.image_encoder.stride'] = (None
                                             if stride == patch else stride)
    options['model.image_encoder.sie_cameras'] = sie_cameras
    if sie_cameras:
        options['model.image_encoder.sie_coef'] = sie_coef
        info['sie_coef'] = sie_coef
        notes.append(
            f'SIE: {sie_cameras} camera embeddings (MODEL.SIE_CAMERA), '
            f'factor {sie_coef} (--sie-coef; the checkpoint does not store '
            'it). A run with MODEL.SIE_VIEW alone indexes them by view, '
            'which this model does not do.')
    no_archive = {
        'model.image_encoder.pretrained': None,
        'model.text_encoder.pretrained': None,
        # without a weights file the builder cannot tell that these are
        # OpenAI towers, which run QuickGELU
        'model.image_encoder.quick_gelu': True,
        'model.text_encoder.quick_gelu': True,
    }
    configs = []
    plain = stride == patch and not sie_cameras
    olp_sie = stride == 12 and sie_cameras
    if arch is None and (plain or olp_sie):
        suffix_name = '' if plain else '_sie-olp'
        configs = [
            f'configs/clip_reid/clip-reid_vit-b16_{name}{suffix_name}.py'
            for name in CONFIG_BY_CLASSES.get(num_classes, ())
        ]
    return Conversion(state_dict, options, no_archive, arch, info, configs,
                      notes)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    check_output(args.out, args.checkpoint, args.force)
    ckpt = load_official_checkpoint(args.checkpoint)
    conv = convert(
        ckpt,
        source=args.checkpoint,
        img_size=args.img_size,
        stride=args.stride,
        sie_coef=args.sie_coef,
        clip_weights=args.clip_weights)
    save_conversion(conv, ckpt, args.checkpoint, args.out, args.force,
                    'tools/model_converters/clip_reid_to_mmreid.py',
                    OFFICIAL_CODE)
    info = conv.info
    print(f'CLIP-ReID ViT checkpoint {args.checkpoint}: '
          f'{info["layers"]}x{info["width"]} image tower, patch '
          f'{info["patch"]}, stride {info["stride"]} at '
          f'{info["img_size"][0]}x{info["img_size"][1]}, '
          f'{info["num_classes"]} identities, SIE '
          + (f'{info["sie_cameras"]} cameras' if info['sie_cameras'] else
             'off'))
    for note in conv.notes:
        print(f'note: {note}')
    if conv.arch is not None:
        print('The towers are not ViT-B/16: set image_encoder.arch and '
              f'text_encoder.arch of the config to {conv.arch}')
    config = conv.configs[0] if len(conv.configs) == 1 else '<config>'
    if len(conv.configs) > 1:
        print('configs for this number of identities: ' +
              ', '.join(conv.configs))
    elif not conv.configs:
        print('use a CLIP-ReID config of the dataset (configs/clip_reid/) '
              'as <config>')
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
