from .cloth_changing import (LTCC, PRCC, ClothChangingDataset, DeepChange,
                             VCClothes)
from .text_image_collate import text_image_collate
from .cuhk_pedes import CUHKPEDES
from .icfg_pedes import ICFGPEDES
from .reid import (MSMT17, CountMismatchError, DukeMTMCReID, Market1501,
                   OccludedDuke, StandardReIDDataset)
from .reid_collate import reid_collate
from .rstpreid import RSTPReid
from .samplers import *  # noqa: F401,F403
from .text_image_dataset import (AnnotationError, BadImageError,
                                 TextImageDataset)
from .tokenizers import (BaseCaptionTokenizer, BertWordPieceTokenizer,
                         OpenCLIPTokenizer, encode_with_specials)
from .transforms import *  # noqa: F401,F403

__all__ = [
    'AnnotationError', 'BadImageError', 'BaseCaptionTokenizer',
    'BertWordPieceTokenizer',
    'CUHKPEDES', 'ClothChangingDataset', 'DeepChange', 'ICFGPEDES', 'LTCC',
    'OpenCLIPTokenizer', 'PRCC', 'RSTPReid', 'TextImageDataset', 'VCClothes',
    'CountMismatchError', 'DukeMTMCReID', 'MSMT17', 'Market1501',
    'OccludedDuke', 'StandardReIDDataset',
    'encode_with_specials', 'reid_collate', 'text_image_collate'
]
