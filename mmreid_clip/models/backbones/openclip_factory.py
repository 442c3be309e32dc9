"""Build an open_clip CLIP model in fp32 and load its weights, offline first.

:func:`build_open_clip` builds an open_clip ``CLIP`` (or ``CustomTextCLIP``)
for an architecture (:mod:`.clip_archs`: a tiny arch, an open_clip model
name or a config dict) and loads weights from a local file
(:mod:`.clip_weights`) or, with network access, an open_clip pretrained tag
(:mod:`.openclip_tags`).

Why not ``open_clip.create_model`` directly: it random-initialises with only
a logged warning when the weights are missing, cannot read OpenAI's
TorchScript archive with ``weights_only=True`` (torch >= 2.6), resizes the
positional embedding only from square grids with bicubic interpolation, and
downloads without a timeout. The towers need each of those to behave
differently (``docs/design.md``).
"""
import logging
import os.path as osp
from typing import Optional, Sequence, Tuple, Union

import open_clip
import torch
import torch.nn as nn
from mmengine.logging import print_log
from open_clip.transformer import QuickGELU

# one rule for 'is this pretrained value a file?' across the towers
from mmreid_clip.utils.pretrained import looks_like_path
from .clip_archs import get_arch_config
from .clip_weights import TOWERS, load_state_dict_into, load_weights_file, \
    text_pos_key
from .openclip_tags import CHECKPOINT_DIR, resolve_tag
from .pos_embed import INTERPOLATIONS

__all__ = ['build_open_clip', 'set_patch_stride', 'uses_quick_gelu']


def _log(msg: str, level: int = logging.INFO) -> None:
    print_log(msg, logger='current', level=level)


def _pair(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    size = tuple(int(s) for s in size)
    if len(size) != 2:
        raise ValueError(f'{name} must be an int or (H, W), got {size}')
    return size


def set_patch_stride(visual: nn.Module, stride: int) -> None:
    """Give an open_clip ViT's patch embedding another stride.

    The patch grid becomes ``((H - P) // stride + 1, (W - P) // stride + 1)``
    for patch size ``P`` and ``visual.grid_size`` is updated; the positional
    embedding gets a freshly initialised table of the new length (open_clip's
    init scale), which loading weights then replaces by the trained one
    resized to the new grid (:func:`~.clip_weights.load_state_dict_into`).

    Args:
        visual: An open_clip ``VisionTransformer``.
        stride: New stride, ``1 <= stride <= P``.
    """
    patch = tuple(visual.conv1.kernel_size)
    if isinstance(stride, bool) or int(stride) != stride or not (
            1 <= stride <= min(patch)):
        raise ValueError(f'patch stride must be an integer in [1, '
                         f'{min(patch)}] (the patch size), got {stride!r}')
    h, w = visual.image_size
    grid = ((h - patch[0]) // stride + 1, (w - patch[1]) // stride + 1)
    visual.conv1.stride = (int(stride), int(stride))
    visual.grid_size = grid
    width = visual.positional_embedding.shape[1]
    visual.positional_embedding = nn.Parameter(
        width**-0.5 * torch.randn(grid[0] * grid[1] + 1, width))


def uses_quick_gelu(model: nn.Module) -> bool:
    """Whether every transformer MLP of ``model`` uses ``QuickGELU``."""
    acts = [
        m.mlp.gelu for m in model.modules() if hasattr(m, 'mlp')
        and isinstance(m.mlp, nn.Sequential) and hasattr(m.mlp, 'gelu')
    ]
    return bool(acts) and all(isinstance(a, QuickGELU) for a in acts)


def _instantiate(cfg: dict) -> nn.Module:
    cfg = dict(cfg)
    custom_text = cfg.pop('custom_text', False)
    if 'multimodal_cfg' in cfg:
        raise NotImplementedError('CoCa architectures are not supported')
    if cfg['text_cfg'].get('hf_model_name'):
        raise NotImplementedError(
            'open_clip architectures with a Hugging Face text tower are not '
            'supported: building them needs the hub')
    model_cls = open_clip.CustomTextCLIP if custom_text else open_clip.CLIP
    return model_cls(**cfg)


def build_open_clip(arch: Union[str, dict],
                    pretrained: Optional[str] = None,
                    img_size: Union[int, Sequence[int], None] = None,
                    quick_gelu: Optional[bool] = None,
                    interpolation: str = 'bicubic',
                    context_length: Optional[int] = None,
                    tower: Optional[str] = None,
                    patch_stride: Optional[int] = None,
                    resize_in_file_dtype: bool = False) -> nn.Module:
    """Build an open_clip CLIP model in fp32 on the CPU and load its weights.

    Weight sources (``pretrained``):

    * ``None``: random initialisation (logged).
    * A path to OpenAI's TorchScript archive (e.g. ``ViT-B-16.pt``), an
      open_clip state dict (``.pt/.pth/.bin``, optionally under
      ``'state_dict'``) or a ``.safetensors`` file. Missing, unexpected or
      mis-shaped keys are an error; the visual positional embedding is
      interpolated to ``img_size`` with ``interpolation``.
    * An open_clip pretrained tag (``'openai'``, ``'laion2b_s34b_b88k'``):
      downloaded through open_clip only when the network is reachable and
      ``HF_HUB_OFFLINE`` is not set; otherwise an error says where to put a
      manually downloaded file.

    ``pretrained`` is never silently ignored: every failure raises.

    Args:
        arch: Architecture, see :func:`get_arch_config`.
        pretrained: Weights, see above.
        img_size: Input ``(H, W)`` (or an int for square); None keeps the
            arch's. Must be divisible by the patch size.
        quick_gelu: Activation of the MLPs. None picks what the weights
            need: QuickGELU for OpenAI weights (TorchScript archive, state
            dicts with OpenAI's metadata, tags trained with it), otherwise
            the arch config's ``quick_gelu`` (default GELU). False with
            OpenAI weights is an error.
        interpolation: ``'bicubic'`` or ``'bilinear'``, see
            :func:`resize_vision_pos_embed`.
        context_length: Text positions to keep; None keeps the arch's. With
            weights it may only shrink the trained context (the first
            positions are kept).
        patch_stride: Stride of the patch embedding; None keeps the patch
            size. A smaller stride overlaps the patches (CLIP-ReID's "OLP",
            arXiv 2211.13977 §4.1: stride 12 gives ViT-B/16 a 21x10 grid at
            256x128). The grid is set before the weights are loaded, so the
            trained positional embedding is resized once, straight to the
            overlapping grid, as CLIP-ReID does.
        resize_in_file_dtype: Interpolate the visual positional embedding
            in the dtype it is stored in (fp16 for OpenAI's archive), as
            CLIP-ReID does, instead of float32 (default, the exact
            interpolation). The two differ by one fp16 rounding step
            (up to ~2e-4 of the largest entry at 14x14 -> 21x10).
        tower: ``'visual'`` or ``'text'`` when the caller keeps only that
            tower: only its keys are loaded (and checked), so a file whose
            other tower has another shape (e.g. a visual positional
            embedding for another image size) loads into the text tower
            with the plain arch name. None loads the whole model.

    Returns:
        An open_clip ``CLIP`` (``CustomTextCLIP`` for ``custom_text``
        archs) in fp32, in train mode.

    Raises:
        FileNotFoundError: ``pretrained`` looks like a path that does not
            exist.
        RuntimeError: a tag cannot be downloaded, or weights do not fit.
        ValueError: invalid arguments or an unknown tag.
    """
    name, cfg = get_arch_config(arch)
    if tower not in TOWERS:
        raise ValueError(f'tower must be one of {TOWERS}, got {tower!r}')
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f'interpolation must be one of {INTERPOLATIONS}, '
                         f'got {interpolation!r}')

    # Resolve and read the weights before building anything, so a wrong
    # path fails in milliseconds even for large archs.
    state_dict, openai_weights, tag_cfg, source = None, False, {}, None
    if pretrained is not None:
        if not isinstance(pretrained, str) or not pretrained:
            raise ValueError(f'pretrained must be a non-empty str or None, '
                             f'got {pretrained!r}')
        path = osp.expanduser(pretrained)
        if not osp.exists(path):
            if looks_like_path(pretrained):
                raise FileNotFoundError(
                    f'CLIP weights file not found: {pretrained!r}. Download '
                    'the weights (e.g. OpenAI\'s ViT-B-16.pt, or an '
                    'open_clip_pytorch_model.bin / open_clip_model.'
                    'safetensors from the Hugging Face hub), put them at '
                    f'that path (the configs expect {CHECKPOINT_DIR}/'
                    '<arch>.pt) or set pretrained= to where they are; see '
                    'README.md, "CLIP weights".')
            path, tag_cfg = resolve_tag(name, arch, pretrained)
        state_dict, openai_weights = load_weights_file(path)
        source = repr(pretrained)

    needs_quick_gelu = openai_weights or bool(tag_cfg.get('quick_gelu'))
    if quick_gelu is None:
        quick_gelu = needs_quick_gelu or bool(cfg.get('quick_gelu', False))
        if state_dict is not None and not quick_gelu and not tag_cfg:
            _log(
                f'{source}: a state dict does not record its activation; '
                'using GELU as the arch config says. Set quick_gelu=True '
                'if these are OpenAI-trained weights.', logging.WARNING)
    elif not quick_gelu and needs_quick_gelu:
        raise ValueError(
            f'{source} holds OpenAI weights, which were trained with '
            'QuickGELU; quick_gelu=False would silently degrade them')
    cfg['quick_gelu'] = bool(quick_gelu)

    if img_size is not None:
        img_size = _pair(img_size, 'img_size')
        patch = _pair(cfg['vision_cfg'].get('patch_size', 16), 'patch_size')
        if img_size[0] % patch[0] or img_size[1] % patch[1]:
            raise ValueError(f'img_size {img_size} is not divisible by the '
                             f'patch size {patch}')
        cfg['vision_cfg']['image_size'] = img_size

    arch_ctx = cfg['text_cfg'].get('context_length', 77)
    if context_length is not None:
        if context_length < 1:
            raise ValueError(f'context_length must be >= 1, got '
                             f'{context_length}')
        pos_key = text_pos_key(state_dict or {})
        trained = state_dict[pos_key].shape[0] if pos_key else arch_ctx
        if context_length > trained:
            raise ValueError(
                f'context_length={context_length} exceeds the '
                f'{trained} positions the text weights were trained with')
        cfg['text_cfg']['context_length'] = context_length

    model = _instantiate(cfg)
    if patch_stride is not None:
        set_patch_stride(model.visual, patch_stride)
    if state_dict is None:
        _log(f'open_clip arch {arch if name is None else name!r}: no '
             'pretrained weights given, random initialisation')
    else:
        load_state_dict_into(model, state_dict, interpolation, source,
                             tower, resize_in_file_dtype)
        _log(f'Loaded CLIP weights {source} into arch '
             f'{arch if name is None else name!r} (quick_gelu='
             f'{bool(quick_gelu)})')
    if quick_gelu and not uses_quick_gelu(model):
        # open_clip versions differ on whether quick_gelu reaches every
        # block (open_clip issue #771); never run OpenAI weights on GELU.
        raise RuntimeError('QuickGELU was requested but the built model '
                           'uses another MLP activation')
    return model
