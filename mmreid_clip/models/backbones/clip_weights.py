"""CLIP weight files: reading them, and fitting a state dict to a model.

* :func:`load_weights_file` reads OpenAI's TorchScript archive, an open_clip
  state dict or a ``.safetensors`` file through the project's one safe path
  (:mod:`mmreid_clip.safe_load`);
* :func:`load_state_dict_into` moves text keys between open_clip's two
  layouts, keeps only one tower's keys when asked, shortens the text
  context, resizes the visual positional embedding to the model's patch
  grid (:mod:`.pos_embed`) and loads strictly, naming every key that does
  not fit.
"""
import math
import os.path as osp
from typing import Dict, Optional, Tuple

import open_clip
import torch
import torch.nn as nn
from mmengine.logging import print_log

from .pos_embed import resize_vision_pos_embed

__all__ = [
    'TOWERS', 'load_weights_file', 'load_state_dict_into', 'text_pos_key'
]

# Entries of OpenAI's state dicts that are hyper-parameters, not weights.
_OPENAI_EXTRA_KEYS = ('input_resolution', 'context_length', 'vocab_size')
# Inlined text-tower keys of open_clip's CLIP (the OpenAI layout) that
# CustomTextCLIP keeps under ``text.``.
_TEXT_KEYS = ('text_projection', 'positional_embedding', 'token_embedding',
              'transformer', 'ln_final')


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


def text_pos_key(state_dict: Dict[str, torch.Tensor]) -> Optional[str]:
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


def load_state_dict_into(model: nn.Module,
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

    pos_key = text_pos_key(state_dict)
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
            print_log(
                f'Resized the visual positional embedding of {source} from '
                f'the {old_grid[0]}x{old_grid[1]} to the {new_grid[0]}x'
                f'{new_grid[1]} patch grid ({interpolation})',
                logger='current')

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
