from .bert_text import BERT_ARCHS, BERT_BASE, BERT_TINY, BertTextEncoder
from .clip_archs import TINY_ARCHS, get_arch_config
from .clip_weights import load_weights_file
from .openclip_factory import build_open_clip
from .openclip_reid_vision import OpenCLIPReIDVisionTransformer
from .openclip_text import OpenCLIPTextTransformer
from .openclip_vision import OpenCLIPVisionTransformer
from .pos_embed import resize_vision_pos_embed

__all__ = [
    'BertTextEncoder', 'BERT_ARCHS', 'BERT_BASE', 'BERT_TINY',
    'OpenCLIPVisionTransformer', 'OpenCLIPReIDVisionTransformer',
    'OpenCLIPTextTransformer', 'TINY_ARCHS',
    'build_open_clip', 'get_arch_config', 'load_weights_file',
    'resize_vision_pos_embed'
]
