from .openclip_builder import (TINY_ARCHS, build_open_clip, get_arch_config,
                               load_weights_file, resize_vision_pos_embed)
from .openclip_text import OpenCLIPTextTransformer
from .openclip_vision import OpenCLIPVisionTransformer

__all__ = [
    'OpenCLIPVisionTransformer', 'OpenCLIPTextTransformer', 'TINY_ARCHS',
    'build_open_clip', 'get_arch_config', 'load_weights_file',
    'resize_vision_pos_embed'
]
