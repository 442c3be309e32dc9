"""Drawing helpers for ranked retrieval results (PIL only)."""
from .ranked_list import (BACKGROUND_COLOR, MATCH_COLOR, MISMATCH_COLOR,
                          NEUTRAL_COLOR, QUERY_COLOR, ImageLike,
                          RankedListGeometry, RankedListLayout, fit_middle,
                          render_ranked_list, save_png, score_decimals,
                          stack_rows, to_pil)
from .text import TextRenderer

__all__ = [
    'BACKGROUND_COLOR', 'MATCH_COLOR', 'MISMATCH_COLOR', 'NEUTRAL_COLOR',
    'QUERY_COLOR', 'ImageLike', 'RankedListGeometry', 'RankedListLayout',
    'TextRenderer', 'fit_middle', 'render_ranked_list', 'save_png',
    'score_decimals', 'stack_rows', 'to_pil'
]
