from .compile import compile_submodules
from .freeze import freeze
from .reid_data_preprocessor import ReIDDataPreprocessor
from .text_image_data_preprocessor import TextImageDataPreprocessor
from .token_selection import (TokenGroups, TokenSelector, compute_num_selected,
                              select_tokens)
from .vocab import text_vocab_size

__all__ = [
    'ReIDDataPreprocessor', 'TextImageDataPreprocessor', 'TokenGroups',
    'TokenSelector', 'compile_submodules', 'compute_num_selected', 'freeze',
    'select_tokens', 'text_vocab_size'
]
