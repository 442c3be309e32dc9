from .data_preprocessor import TextImageDataPreprocessor
from .token_selection import (TokenGroups, TokenSelector, compute_num_selected,
                              select_tokens)

__all__ = [
    'TextImageDataPreprocessor', 'TokenGroups', 'TokenSelector',
    'compute_num_selected', 'select_tokens'
]
