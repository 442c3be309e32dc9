from .bert_text import BERT_ARCHS, BERT_BASE, BERT_TINY, BertTextEncoder
from .openclip_builder import (TINY_ARCHS, build_open_clip, get_arch_config,
                               load_weights_file, resize_vision_pos_embed)
from .openclip_reid_vision import OpenCLIPReIDVisionTransformer
from .openclip_text import OpenCLIPTextTransformer
from .openclip_vision import OpenCLIPVisionTransformer

__all__ = [
    'BertTextEncoder', 'BERT_ARCHS', 'BERT_BASE', 'BERT_TINY',
    'OpenCLIPVisionTransformer', 'OpenCLIPReIDVisionTransformer',
    'OpenCLIPTextTransformer', 'TINY_ARCHS',
    'build_open_clip', 'get_arch_config', 'load_weights_file',
    'resize_vision_pos_embed'
]
