"""Compatibility module: the open_clip builder's names, now split by job.

Kept so that configs, tools and external code importing
``mmreid_clip.models.backbones.openclip_builder`` keep working. Each name
lives in the module of its one job:

* :mod:`.clip_archs`: the tiny architectures (open_clip model-config JSON
  in ``model_configs/``) and :func:`get_arch_config`;
* :mod:`.clip_weights`: reading weight files, fitting state dicts;
* :mod:`.hub_probe`: offline switches and network probing (CLIP and BERT);
* :mod:`.openclip_tags`: open_clip pretrained tags;
* :mod:`.pos_embed`: positional-embedding resampling;
* :mod:`.openclip_factory`: :func:`build_open_clip`;
* :mod:`.openclip_attention`: the attention-returning forward;
* :mod:`mmreid_clip.models.utils.freeze`: :func:`freeze`.
"""
from mmreid_clip.models.utils.freeze import freeze
from mmreid_clip.utils.pretrained import WEIGHT_SUFFIXES
from .clip_archs import TINY_ARCHS, get_arch_config
from .clip_weights import TOWERS, load_weights_file
from .hub_probe import PROBE_TIMEOUT_S as _PROBE_TIMEOUT_S  # noqa: F401
from .hub_probe import host_reachable as _reachable  # noqa: F401
from .hub_probe import hub_offline as _offline  # noqa: F401
from .openclip_attention import (forward_block_with_attn, run_transformer,
                                 supports_attn_output)
from .openclip_factory import (build_open_clip, set_patch_stride,
                               uses_quick_gelu)
from .openclip_tags import CHECKPOINT_DIR
from .pos_embed import INTERPOLATIONS, resize_vision_pos_embed

__all__ = [
    'TINY_ARCHS', 'WEIGHT_SUFFIXES', 'build_open_clip', 'get_arch_config',
    'load_weights_file', 'resize_vision_pos_embed', 'run_transformer',
    'forward_block_with_attn', 'supports_attn_output', 'uses_quick_gelu',
    'freeze', 'CHECKPOINT_DIR', 'INTERPOLATIONS', 'TOWERS',
    'set_patch_stride'
]
