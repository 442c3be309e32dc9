"""Drawing helpers for ranked retrieval results (PIL only)."""
from .ranked_list import (BACKGROUND_COLOR, MATCH_COLOR, MISMATCH_COLOR,
                          NEUTRAL_COLOR, QUERY_COLOR, ImageLike,
                          RankedListGeometry, RankedListLayout,
                          render_ranked_list, save_png, stack_rows, to_pil)
from .text import TextRenderer

__all__ = [
    'BACKGROUND_COLOR', 'MATCH_COLOR', 'MISMATCH_COLOR', 'NEUTRAL_COLOR',
    'QUERY_COLOR', 'ImageLike', 'RankedListGeometry', 'RankedListLayout',
    'TextRenderer', 'render_ranked_list', 'save_png', 'stack_rows', 'to_pil'
]
