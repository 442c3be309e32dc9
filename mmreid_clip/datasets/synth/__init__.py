"""SynthPedes: procedurally rendered pedestrians with generated captions,
written in the CUHK-PEDES format (see :func:`generate_synth_pedes`)."""
from .captions import describe, generate_captions, tokenize
from .pedestrian import (Identity, View, attribute_space_size, render_view,
                         sample_identity, sample_view, visible_identity)
from .synth_pedes import (DEFAULT_IMAGES_PER_ID, GENERATOR_VERSION, SOURCES,
                          generate_synth_pedes, split_ranges)

__all__ = [
    'GENERATOR_VERSION', 'DEFAULT_IMAGES_PER_ID', 'SOURCES', 'Identity',
    'View', 'attribute_space_size', 'describe', 'generate_captions',
    'generate_synth_pedes', 'render_view', 'sample_identity', 'sample_view',
    'split_ranges', 'tokenize', 'visible_identity'
]
