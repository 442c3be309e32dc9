"""Build open_clip CLIP models and load their weights, offline first.

Everything the two CLIP towers share lives here:

* :data:`TINY_ARCHS`, small architectures for tests and the CPU demo;
* :func:`build_open_clip`, which builds an open_clip ``CLIP`` (or
  ``CustomTextCLIP``) for one of those, an open_clip model name or a config
  dict, and loads weights from a local file (OpenAI TorchScript archive,
  open_clip state dict, ``.safetensors``) or, with network access, an
  open_clip pretrained tag;
* :func:`resize_vision_pos_embed`, the positional-embedding resize for
  non-square ReID inputs;
* :func:`run_transformer`, which runs an open_clip ``Transformer`` and can
  return the head-averaged attention map of its last block.

Why not ``open_clip.create_model`` directly: it random-initialises with only
a logged warning when the weights are missing, cannot read OpenAI's
TorchScript archive with ``weights_only=True`` (torch >= 2.6), resizes the
positional embedding only from square grids with bicubic interpolation, and
downloads without a timeout. The towers need each of those to behave
differently (``docs/design.md``).
"""
import copy
import logging
import math
import os
import os.path as osp
import socket
import threading
from typing import Any, Dict, Optional, Sequence, Tuple, Union
from urllib.parse import urlparse

import open_clip
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from open_clip import pretrained as oc_pretrained
from open_clip.transformer import QuickGELU

# one rule for 'is this pretrained value a file?' across the towers
from mmreid_clip.utils.pretrained import WEIGHT_SUFFIXES, looks_like_path

__all__ = [
    'TINY_ARCHS', 'WEIGHT_SUFFIXES', 'build_open_clip', 'get_arch_config',
    'load_weights_file', 'resize_vision_pos_embed', 'run_transformer',
    'forward_block_with_attn', 'supports_attn_output', 'uses_quick_gelu',
    'freeze'
]

# Named architectures small enough to train and test on a CPU. Both keep
# open_clip's BPE vocabulary (49408) and 77-token context so the tokenizer
# bundled with open_clip works unchanged; vision heads are
# width // head_width as in open_clip's configs.
TINY_ARCHS: Dict[str, dict] = {
    # ~9.1M parameters, most of them the 49408x128 token embedding.
    'clip-tiny':
    dict(
        embed_dim=256,
        vision_cfg=dict(
            image_size=224, layers=4, width=192, head_width=64, patch_size=16),
        text_cfg=dict(
            context_length=77, vocab_size=49408, width=128, heads=2,
            layers=4)),
    # clip-tiny with 8-pixel patches: the synthetic v2 benchmarks' 128x64
    # images then have 16x8 tokens, so their identity cues (head, hair,
    # shoes, local details) span whole patches. The stand-in pretrained
    # CLIP (tools/misc/build_synth_clip.py) is this architecture.
    'clip-tiny-p8':
    dict(
        embed_dim=256,
        vision_cfg=dict(
            image_size=(128, 64), layers=4, width=192, head_width=64,
            patch_size=8),
        text_cfg=dict(
            context_length=77, vocab_size=49408, width=128, heads=2,
            layers=4)),
    # ~1.7M parameters, for unit tests: builds and runs in milliseconds.
    # The three widths differ so a projection applied to the wrong tensor
    # fails loudly instead of silently broadcasting.
    'clip-micro':
    dict(
        embed_dim=48,
        vision_cfg=dict(
            image_size=32, layers=2, width=64, head_width=32, patch_size=8),
        text_cfg=dict(
            context_length=77, vocab_size=49408, width=32, heads=2, layers=2)),
}

INTERPOLATIONS = ('bicubic', 'bilinear')
# Where the zoo's configs and README expect user-supplied CLIP weights.
CHECKPOINT_DIR = 'checkpoints/clip'
# Entries of OpenAI's state dicts that are hyper-parameters, not weights.
_OPENAI_EXTRA_KEYS = ('input_resolution', 'context_length', 'vocab_size')
# Inlined text-tower keys of open_clip's CLIP (the OpenAI layout) that
# CustomTextCLIP keeps under ``text.``.
_TEXT_KEYS = ('text_projection', 'positional_embedding', 'token_embedding',
              'transformer', 'ln_final')
_PROBE_TIMEOUT_S = 3.0


def _log(msg: str, level: int = logging.INFO) -> None:
    print_log(msg, logger='current', level=level)


def _to_plain(obj: Any) -> Any:
    """Deep-copy mmengine ``ConfigDict``/lists into plain dicts/lists."""
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_plain(v) for v in obj]
    return copy.deepcopy(obj)


def _pair(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    size = tuple(int(s) for s in size)
    if len(size) != 2:
        raise ValueError(f'{name} must be an int or (H, W), got {size}')
    return size


def get_arch_config(arch: Union[str, dict]) -> Tuple[Optional[str], dict]:
    """Resolve ``arch`` to a config of open_clip's ``CLIP`` constructor.

    Args:
        arch: One of :data:`TINY_ARCHS`, an open_clip model name (see
            ``open_clip.list_models()``, e.g. ``'ViT-B-16'``), a
            ``'local-dir:<folder>'`` holding an ``open_clip_config.json``, or
            a dict of ``CLIP`` keyword arguments (``embed_dim``,
            ``vision_cfg``, ``text_cfg``, optionally ``quick_gelu`` and
            ``custom_text``).

    Returns:
        ``(name, config)``: ``name`` is the open_clip model name pretrained
        tags are looked up under (None for tiny archs and dicts), ``config``
        a fresh plain dict the caller may modify.

    Raises:
        ValueError: unknown name, ``hf-hub:`` names, or an incomplete dict.
    """
    if isinstance(arch, dict):
        cfg, name = _to_plain(arch), None
    elif not isinstance(arch, str):
        raise TypeError(f'arch must be a str or dict, got {type(arch)}')
    elif arch in TINY_ARCHS:
        cfg, name = _to_plain(TINY_ARCHS[arch]), None
    elif arch.startswith('hf-hub:'):
        # open_clip would fetch the config from the hub at build time.
        raise ValueError(
            f'arch {arch!r}: hf-hub architectures need the network; download '
            'the repository and pass arch="local-dir:<folder>" instead')
    else:
        # open_clip accepts 'ViT-B/16' for 'ViT-B-16'; paths keep slashes
        name = arch if arch.startswith('local-dir:') else arch.replace(
            '/', '-')
        cfg = open_clip.get_model_config(name)
        if cfg is None:
            raise ValueError(
                f'unknown arch {arch!r}: use one of {sorted(TINY_ARCHS)}, an '
                'open_clip model name (open_clip.list_models()) or a dict '
                'of open_clip CLIP arguments')
        cfg = _to_plain(cfg)
    missing = [
        k for k in ('embed_dim', 'vision_cfg', 'text_cfg') if k not in cfg
    ]
    if missing:
        raise ValueError(f'arch config lacks {missing}: {cfg}')
    return name, cfg


def resize_vision_pos_embed(pos_embed: torch.Tensor,
                            new_grid: Tuple[int, int],
                            old_grid: Optional[Tuple[int, int]] = None,
                            interpolation: str = 'bicubic',
                            num_prefix_tokens: int = 1,
                            compute_dtype: torch.dtype = torch.float32
                            ) -> torch.Tensor:
    """Interpolate a ViT positional embedding to another patch grid.

    The prefix (class) token rows are kept as they are; the patch rows are
    viewed as an ``old_grid`` image and resized to ``new_grid``, which may be
    non-square (ReID inputs such as 384x128).

    ``'bicubic'`` uses antialiasing as open_clip's own resize does when
    ``force_image_size`` is set; ``'bilinear'`` does not, as CLIP-ReID's
    ``resize_pos_embed`` (``F.interpolate(..., mode='bilinear')``). Each
    choice therefore reproduces its reference exactly.

    Args:
        pos_embed: ``(num_prefix_tokens + Ho*Wo) x W``.
        new_grid: ``(Hn, Wn)`` patches.
        old_grid: ``(Ho, Wo)``; inferred for square grids when None.
        interpolation: ``'bicubic'`` or ``'bilinear'``.
        num_prefix_tokens: Rows before the patch rows.
        compute_dtype: dtype the interpolation runs in. float32 by default
            (exact for fp16 weights); float16 rounds as CLIP-ReID does,
            which interpolates OpenAI's fp16 archive tensor as it is.

    Returns:
        ``(num_prefix_tokens + Hn*Wn) x W``, same dtype as ``pos_embed``.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f'interpolation must be one of {INTERPOLATIONS}, '
                         f'got {interpolation!r}')
    prefix, patches = (pos_embed[:num_prefix_tokens],
                       pos_embed[num_prefix_tokens:])
    num_old = patches.shape[0]
    if old_grid is None:
        side = round(num_old**0.5)
        if side * side != num_old:
            raise ValueError(
                f'cannot infer the patch grid of a positional embedding with '
                f'{num_old} patch rows (not a square); pass old_grid')
        old_grid = (side, side)
    if old_grid[0] * old_grid[1] != num_old:
        raise ValueError(f'old_grid {old_grid} does not match {num_old} '
                         'patch rows')
    new_grid = tuple(new_grid)
    if tuple(old_grid) == new_grid:
        return pos_embed
    width = pos_embed.shape[1]
    grid = patches.to(compute_dtype).reshape(1, *old_grid,
                                             width).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid,
        size=new_grid,
        mode=interpolation,
        align_corners=False,
        antialias=interpolation == 'bicubic')
    patches = grid.permute(0, 2, 3, 1).reshape(-1, width).to(pos_embed.dtype)
    return torch.cat([prefix, patches], dim=0)


def load_weights_file(path: str) -> Tuple[Dict[str, torch.Tensor], bool]:
    """Read a CLIP weights file into a state dict, without running its code.

    Supported: OpenAI's TorchScript archive (``ViT-B-16.pt``), a
    ``torch.save``-d state dict (``.pt/.pth/.bin``, possibly nested under
    ``'state_dict'``), and ``.safetensors``. Every format goes through the
    project's one safe path (:mod:`mmreid_clip.safe_load`): state dicts
    through the allow-list ``torch.load``, TorchScript archives through a
    reader that rebuilds their tensors from the archive's data records
    without running the archive (``torch.jit.load`` would run its scripted
    ``__setstate__`` methods; ``docs/reliability.md``, "Safe loading").

    Args:
        path: The file.

    Returns:
        ``(state_dict, openai)``: float tensors by name, and whether the
        file carries OpenAI's own weights (a TorchScript archive or a state
        dict with OpenAI's ``input_resolution``/``context_length``/
        ``vocab_size`` entries), which were trained with QuickGELU.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: the file is not one of the formats above.
        UnsafeCheckpointError: the file holds pickled objects other than
            weights, or a TorchScript archive needs its code to be run.
    """
    from mmreid_clip.safe_load import (UnsafeCheckpointError,
                                       is_torchscript_archive,
                                       safe_torch_load, torchscript_state_dict)
    if osp.isdir(path):
        raise ValueError(f'CLIP weights {path!r} is a folder; pass the file')
    if not osp.isfile(path):
        raise FileNotFoundError(f'CLIP weights file not found: {path!r}')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        try:
            state_dict = load_file(path, device='cpu')
        except Exception as e:  # SafetensorError, OSError
            raise ValueError(f'{path!r} is not a readable .safetensors '
                             f'file: {e}') from e
    elif is_torchscript_archive(path):
        state_dict, _ = torchscript_state_dict(path)
        # The OpenAI archive keeps these as buffers; scripted open_clip
        # models also export their non-persistent causal mask.
        for key in _OPENAI_EXTRA_KEYS:
            state_dict.pop(key, None)
        state_dict = {
            k: v
            for k, v in state_dict.items() if not k.endswith('attn_mask')
        }
        return state_dict, True
    else:
        try:
            ckpt = safe_torch_load(path, map_location='cpu')
        except UnsafeCheckpointError:
            raise
        except Exception as e:  # a corrupt or foreign file
            raise ValueError(
                f'{path!r} is not a plain CLIP state dict, an OpenAI '
                f'TorchScript archive or a .safetensors file: {e}') from e
        if isinstance(ckpt, dict) and isinstance(ckpt.get('state_dict'), dict):
            ckpt = ckpt['state_dict']
        if not isinstance(ckpt, dict) or not all(
                isinstance(v, torch.Tensor) for v in ckpt.values()):
            raise ValueError(f'{path!r} does not hold a state dict of '
                             'tensors (nor one under "state_dict")')
        state_dict = dict(ckpt)
    if state_dict and all(k.startswith('module.') for k in state_dict):
        # saved from a DataParallel / DDP-wrapped model
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    openai = any(k in state_dict for k in _OPENAI_EXTRA_KEYS)
    for key in _OPENAI_EXTRA_KEYS:
        state_dict.pop(key, None)
    return state_dict, openai


def _offline() -> bool:
    # The variables huggingface_hub honours; read at call time because
    # huggingface_hub itself only reads them at import.
    return any(
        os.environ.get(k, '').upper() in ('1', 'ON', 'YES', 'TRUE')
        for k in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE'))


def _reachable(host: str,
               port: int = 443,
               timeout: float = _PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout``.

    Runs in a daemon thread because name resolution ignores socket
    timeouts and can block far longer on a machine without network.
    """
    result = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    return bool(result and result[0])


def _download_host(tag_cfg: dict) -> Tuple[str, int]:
    if tag_cfg.get('hf_hub') and oc_pretrained.has_hf_hub():
        url = os.environ.get('HF_ENDPOINT', 'https://huggingface.co')
    else:
        url = tag_cfg.get('url', '')
    parsed = urlparse(url)
    return parsed.hostname or '', parsed.port or 443


def _tag_instructions(name: str, tag: str, tag_cfg: dict) -> str:
    """How to get the weights of a tag by hand, and where to put them."""
    sources = []
    if tag_cfg.get('url'):
        sources.append(tag_cfg['url'])
        suggested = f'{CHECKPOINT_DIR}/{osp.basename(tag_cfg["url"])}'
    if tag_cfg.get('hf_hub'):
        repo = tag_cfg['hf_hub'].rstrip('/')
        sources.append(f'https://huggingface.co/{repo} '
                       '(open_clip_model.safetensors or '
                       'open_clip_pytorch_model.bin)')
    if not tag_cfg.get('url'):
        suggested = f'{CHECKPOINT_DIR}/{name}_{tag}.safetensors'
    hint = ('download the weights yourself (' + ' or '.join(sources) +
            f'), put the file at {suggested} and set '
            f'pretrained={suggested!r}')
    if tag_cfg.get('quick_gelu'):
        hint += ' (these are OpenAI weights: keep quick_gelu=None or True)'
    return hint


def _resolve_tag(name: Optional[str], arch: Any, tag: str) -> Tuple[str, dict]:
    """Download the weights of an open_clip pretrained tag, or fail fast."""
    if name is None:
        raise ValueError(
            f'pretrained={tag!r} is neither an existing file nor usable as an '
            f'open_clip tag with arch={arch!r}: tags need an open_clip model '
            'name such as "ViT-B-16"')
    tag_cfg = oc_pretrained.get_pretrained_cfg(name, tag)
    if not tag_cfg:
        known = oc_pretrained.list_pretrained_tags_by_model(name)
        raise ValueError(
            f'pretrained={tag!r} is neither an existing file nor a '
            f'pretrained tag of open_clip model {name!r} (tags: {known})')
    hint = _tag_instructions(name, tag, tag_cfg)
    if _offline():
        raise RuntimeError(
            f'cannot download the {name!r} weights for tag {tag!r}: '
            f'HF_HUB_OFFLINE is set (no network). To use them, {hint}.')
    host, port = _download_host(tag_cfg)
    if not host or not _reachable(host, port):
        raise RuntimeError(
            f'cannot download the {name!r} weights for tag {tag!r}: no '
            f'network ({host or "no download source"} is unreachable). To '
            f'use them, {hint}.')
    try:
        path = oc_pretrained.download_pretrained(tag_cfg)
    except Exception as e:  # network errors of urllib and huggingface_hub
        raise RuntimeError(
            f'downloading the {name!r} weights for tag {tag!r} failed '
            f'({e}). To use them, {hint}.') from e
    if not path or not osp.isfile(path):
        raise RuntimeError(f'open_clip returned no file for tag {tag!r}. '
                           f'To use the weights, {hint}.')
    return path, tag_cfg


def _to_model_layout(state_dict: Dict[str, torch.Tensor],
                     model: nn.Module) -> Dict[str, torch.Tensor]:
    """Move text keys between the inlined and ``text.`` layouts."""
    custom_text = hasattr(model, 'text')
    if custom_text and 'positional_embedding' in state_dict:
        state_dict = open_clip.model.convert_to_custom_text_state_dict(
            state_dict)
    elif not custom_text and 'text.positional_embedding' in state_dict:

        def inlined(key: str) -> str:
            short = key[len('text.'):]
            is_text = key.startswith('text.') and short.startswith(_TEXT_KEYS)
            return short if is_text else key

        state_dict = {inlined(k): v for k, v in state_dict.items()}
    return state_dict


def _text_pos_key(state_dict: Dict[str, torch.Tensor]) -> Optional[str]:
    for key in ('positional_embedding', 'text.positional_embedding'):
        if key in state_dict:
            return key
    return None


def _checkpoint_grid(num_patches: int, model_grid: Tuple[int, int],
                     source: str) -> Tuple[int, int]:
    """The patch grid a checkpoint's positional embedding was trained on.

    State dicts do not record it. CLIP is pretrained on square images, so a
    square number of patches is read as a square grid, even when the model's
    non-square grid has as many patches (4x4 vs. 8x2): comparing counts
    alone would load a 4x4 embedding into an 8x2 grid without resizing.
    Other counts must equal the model's, i.e. weights trained on this grid.
    """
    side = math.isqrt(num_patches)
    if side * side == num_patches:
        return side, side
    if num_patches == model_grid[0] * model_grid[1]:
        return model_grid
    raise RuntimeError(
        f'{source}: the visual positional embedding has {num_patches} '
        f'patch positions, neither a square grid nor the model\'s '
        f'{model_grid[0]}x{model_grid[1]}; cannot tell how to resize it')


#: Towers ``build_open_clip`` can load alone (None: the whole model).
TOWERS = (None, 'visual', 'text')


def _in_tower(key: str, tower: Optional[str]) -> bool:
    """Whether a CLIP state-dict key belongs to ``tower`` (None: all)."""
    if tower is None:
        return True
    return key.startswith('visual.') == (tower == 'visual')


def _load_state_dict(model: nn.Module,
                     state_dict: Dict[str, torch.Tensor],
                     interpolation: str,
                     source: str,
                     tower: Optional[str] = None,
                     resize_in_file_dtype: bool = False) -> None:
    """Fit a state dict to ``model`` (layout, grids) and load it strictly
    (every key of ``tower``, or of the whole model for None)."""
    vis_key = 'visual.positional_embedding'
    resize_dtype = torch.float32
    if resize_in_file_dtype and vis_key in state_dict:
        resize_dtype = state_dict[vis_key].dtype
    # fp32 first (OpenAI's archive is mostly fp16), so interpolating the
    # positional embedding does not round through half precision (unless
    # resize_in_file_dtype asks for the file's precision)
    state_dict = {
        k: v.float() if v.is_floating_point() else v
        for k, v in state_dict.items()
    }
    state_dict = _to_model_layout(state_dict, model)
    # A tower built alone keeps only its own keys: the other tower is
    # discarded, so its shapes (image size, context length) cannot matter.
    state_dict = {k: v for k, v in state_dict.items() if _in_tower(k, tower)}
    expected = {
        k: v
        for k, v in model.state_dict().items() if _in_tower(k, tower)
    }

    scale = state_dict.get('logit_scale')
    if scale is not None and 'logit_scale' in expected:
        # scalar vs. 1-element logit_scale differ between open_clip configs
        state_dict['logit_scale'] = scale.reshape(
            expected['logit_scale'].shape)

    pos_key = _text_pos_key(state_dict)
    if pos_key in expected:
        n_model = expected[pos_key].shape[0]
        if state_dict[pos_key].shape[0] > n_model:
            # a shorter context keeps the first positions (as a shorter
            # input does at run time); longer ones were refused earlier
            state_dict[pos_key] = state_dict[pos_key][:n_model]

    if vis_key in state_dict and vis_key in expected and hasattr(
            model.visual, 'grid_size'):
        old = state_dict[vis_key]
        new_grid = tuple(model.visual.grid_size)
        old_grid = _checkpoint_grid(old.shape[0] - 1, new_grid, source)
        if old_grid != new_grid:
            state_dict[vis_key] = resize_vision_pos_embed(
                old.to(resize_dtype), new_grid, old_grid,
                interpolation=interpolation,
                compute_dtype=resize_dtype).float()
            _log(f'Resized the visual positional embedding of {source} from '
                 f'the {old_grid[0]}x{old_grid[1]} to the {new_grid[0]}x'
                 f'{new_grid[1]} patch grid ({interpolation})')

    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f'{k}: file {tuple(state_dict[k].shape)} vs model '
        f'{tuple(expected[k].shape)}' for k in sorted(expected)
        if k in state_dict and state_dict[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        lines = [
            f'{source} does not fit the chosen arch; is `arch` the '
            'architecture the weights were trained with?'
        ]
        for title, keys in (('missing keys', missing), ('unexpected keys',
                                                        unexpected),
                            ('shape mismatches', mismatched)):
            if keys:
                shown = ', '.join(keys[:8])
                more = f' (+{len(keys) - 8} more)' if len(keys) > 8 else ''
                lines.append(f'  {title} ({len(keys)}): {shown}{more}')
        raise RuntimeError('\n'.join(lines))
    if tower is None:
        model.load_state_dict(state_dict, strict=True)
    else:
        # every key of the tower was checked above; the rest stays random
        model.load_state_dict(state_dict, strict=False)


def set_patch_stride(visual: nn.Module, stride: int) -> None:
    """Give an open_clip ViT's patch embedding another stride.

    The patch grid becomes ``((H - P) // stride + 1, (W - P) // stride + 1)``
    for patch size ``P`` and ``visual.grid_size`` is updated; the positional
    embedding gets a freshly initialised table of the new length (open_clip's
    init scale), which loading weights then replaces by the trained one
    resized to the new grid (:func:`_load_state_dict`).

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
            path, tag_cfg = _resolve_tag(name, arch, pretrained)
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
        pos_key = _text_pos_key(state_dict or {})
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
        _load_state_dict(model, state_dict, interpolation, source, tower,
                         resize_in_file_dtype)
        _log(f'Loaded CLIP weights {source} into arch '
             f'{arch if name is None else name!r} (quick_gelu='
             f'{bool(quick_gelu)})')
    if quick_gelu and not uses_quick_gelu(model):
        # open_clip versions differ on whether quick_gelu reaches every
        # block (open_clip issue #771); never run OpenAI weights on GELU.
        raise RuntimeError('QuickGELU was requested but the built model '
                           'uses another MLP activation')
    return model


def forward_block_with_attn(
    block: nn.Module,
    x: torch.Tensor,
    attn_mask: Optional[torch.Tensor] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run an open_clip ``ResidualAttentionBlock`` and keep its attention.

    open_clip calls ``nn.MultiheadAttention`` with ``need_weights=False``;
    this replays the block's forward with the weights requested.

    Args:
        block: A ``ResidualAttentionBlock`` (self-attention).
        x: Tokens in the layout of the block's attention (``batch_first``
            or not).
        attn_mask: Additive ``L x L`` mask (e.g. causal), or None.

    Returns:
        ``(x, attn)``: the block output, and the attention probabilities
        averaged over heads, ``B x L x L`` (query x key) in either layout.
    """
    y = block.ln_1(x)
    mask = attn_mask.to(y.dtype) if attn_mask is not None else None
    out, attn = block.attn(
        y, y, y, need_weights=True, average_attn_weights=True, attn_mask=mask)
    x = x + block.ls_1(out)
    x = x + block.ls_2(block.mlp(block.ln_2(x)))
    return x, attn


def supports_attn_output(transformer: nn.Module) -> bool:
    """Whether :func:`run_transformer` can return this stack's attention."""
    block = transformer.resblocks[-1]
    return (isinstance(getattr(block, 'attn', None), nn.MultiheadAttention)
            and not hasattr(block, 'ln_1_kv'))


def run_transformer(
    transformer: nn.Module,
    x: torch.Tensor,
    attn_mask: Optional[torch.Tensor] = None,
    return_last_attn: bool = False
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Run an open_clip ``Transformer`` on batch-first tokens.

    Args:
        transformer: open_clip ``Transformer`` (``resblocks``,
            ``batch_first``).
        x: ``B x L x W``.
        attn_mask: Additive ``L x L`` mask passed to every block. It is not
            taken from the module: ``Transformer.forward`` applies no mask
            unless given one, so the caller must pass the causal mask.
        return_last_attn: Also return the head-averaged attention of the
            last block (see :func:`forward_block_with_attn`).

    Returns:
        ``(x, attn)``: ``B x L x W`` and ``B x L x L`` (or None).
    """
    batch_first = getattr(transformer, 'batch_first', True)
    if not batch_first:
        x = x.transpose(0, 1)
    blocks = transformer.resblocks
    n_plain = len(blocks) - 1 if return_last_attn else len(blocks)
    for block in blocks[:n_plain]:
        x = block(x, attn_mask=attn_mask)
    attn = None
    if return_last_attn:
        x, attn = forward_block_with_attn(blocks[-1], x, attn_mask)
    if not batch_first:
        x = x.transpose(0, 1)
    return x, attn


def freeze(module: nn.Module) -> None:
    """Stop gradients to every parameter of ``module``."""
    for param in module.parameters():
        param.requires_grad_(False)
