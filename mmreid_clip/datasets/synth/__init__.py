"""Synthetic datasets: SynthPedes, procedurally rendered pedestrians with
generated captions in the CUHK-PEDES format (see
:func:`generate_synth_pedes`), and SynthCC, a cloth-changing ReID dataset in
the LTCC layout with exact parsing masks (see :func:`generate_synth_cc`)."""
from .captions import describe, generate_captions, tokenize
from .pedestrian import (Identity, View, attribute_space_size, render_view,
                         sample_identity, sample_view, visible_identity)
from .synth_cc import GENERATOR_VERSION as SYNTH_CC_VERSION
from .synth_cc import SIZES as SYNTH_CC_SIZES
from .synth_cc import (CCIdentity, CCRender, Outfit, dataset_digest,
                       generate_synth_cc, render_cc_view, sample_cc_identity)
from .synth_pedes import (DEFAULT_IMAGES_PER_ID, GENERATOR_VERSION, SOURCES,
                          generate_synth_pedes, split_ranges)

__all__ = [
    'GENERATOR_VERSION', 'DEFAULT_IMAGES_PER_ID', 'SOURCES', 'Identity',
    'View', 'attribute_space_size', 'describe', 'generate_captions',
    'generate_synth_pedes', 'render_view', 'sample_identity', 'sample_view',
    'split_ranges', 'tokenize', 'visible_identity', 'SYNTH_CC_VERSION',
    'SYNTH_CC_SIZES', 'CCIdentity', 'CCRender', 'Outfit', 'dataset_digest',
    'generate_synth_cc', 'render_cc_view', 'sample_cc_identity'
]
