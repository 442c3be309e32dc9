from .collate import text_image_collate
from .cuhk_pedes import CUHKPEDES
from .icfg_pedes import ICFGPEDES
from .rstpreid import RSTPReid
from .samplers import *  # noqa: F401,F403
from .text_image_dataset import AnnotationError, TextImageDataset
from .tokenizers import (BaseCaptionTokenizer, BertWordPieceTokenizer,
                         OpenCLIPTokenizer, encode_with_specials)
from .transforms import *  # noqa: F401,F403

__all__ = [
    'AnnotationError', 'BaseCaptionTokenizer', 'BertWordPieceTokenizer',
    'CUHKPEDES', 'ICFGPEDES',
    'OpenCLIPTokenizer', 'RSTPReid', 'TextImageDataset',
    'encode_with_specials', 'text_image_collate'
]
