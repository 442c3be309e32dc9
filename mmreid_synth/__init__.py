"""Synthetic person datasets for mmreid_clip, generated procedurally.

* SynthPedes (:func:`generate_synth_pedes`): rendered pedestrians with
  generated captions, in the CUHK-PEDES format.
* SynthCC (:func:`generate_synth_cc`): a cloth-changing ReID dataset in the
  LTCC layout, with exact LIP parsing masks.
* SynthPedes v2 (:func:`generate_synth_pedes_v2`, :mod:`.synth_pedes_v2`):
  families of near-duplicate identities told apart by the local details
  their captions name (:mod:`.pedes_v2_people`, :mod:`.pedes_v2_render`,
  :mod:`.pedes_v2_captions`), in the CUHK-PEDES format.
* SynthCC v2 (:func:`generate_synth_cc_v2`, :mod:`.synth_cc_v2`, drawn by
  :mod:`.renderer_v2`): a cloth-changing benchmark in the LTCC layout with
  detector-like framing, backgrounds shared by all cameras, identity cues
  that survive a change of clothes and a real clothes shortcut.

Modules: :mod:`.pedestrian` and :mod:`.synth_cc` sample the people (and
SynthCC's outfits, cameras and frames), :mod:`.renderer` draws both,
:mod:`.captions` describes SynthPedes' people, :mod:`.writer` writes both
datasets (manifest, README, digests) and :mod:`.seeding` keys every random
stream. Outputs are versioned (:data:`GENERATOR_VERSION`,
:data:`SYNTH_CC_VERSION`): a seed's output changes only with a new version.
"""
from .captions import describe, generate_captions, tokenize
from .pedestrian import (Identity, View, attribute_space_size,
                         sample_identity, sample_view, visible_identity)
from .renderer import CCRender, render_cc_view, render_view
from .synth_cc import GENERATOR_VERSION as SYNTH_CC_VERSION
from .synth_cc import SIZES as SYNTH_CC_SIZES
from .synth_cc import (CCIdentity, Outfit, dataset_digest, generate_synth_cc,
                       sample_cc_identity)
from .synth_cc_v2 import GENERATOR_VERSION as SYNTH_CC_V2_VERSION
from .synth_cc_v2 import SIZES as SYNTH_CC_V2_SIZES
from .synth_cc_v2 import generate_synth_cc_v2
from .synth_pedes import (DEFAULT_IMAGES_PER_ID, GENERATOR_VERSION, SOURCES,
                          generate_synth_pedes, split_ranges)
from .synth_pedes_v2 import GENERATOR_VERSION_V2 as SYNTH_PEDES_V2_VERSION
from .synth_pedes_v2 import PRESETS_V2 as SYNTH_PEDES_V2_PRESETS
from .synth_pedes_v2 import generate_synth_pedes_v2

__all__ = [
    'GENERATOR_VERSION', 'DEFAULT_IMAGES_PER_ID', 'SOURCES', 'Identity',
    'View', 'attribute_space_size', 'describe', 'generate_captions',
    'generate_synth_pedes', 'render_view', 'sample_identity', 'sample_view',
    'split_ranges', 'tokenize', 'visible_identity', 'SYNTH_CC_VERSION',
    'SYNTH_CC_SIZES', 'CCIdentity', 'CCRender', 'Outfit', 'dataset_digest',
    'generate_synth_cc', 'render_cc_view', 'sample_cc_identity',
    'SYNTH_PEDES_V2_VERSION', 'SYNTH_PEDES_V2_PRESETS',
    'generate_synth_pedes_v2', 'SYNTH_CC_V2_VERSION', 'SYNTH_CC_V2_SIZES',
    'generate_synth_cc_v2'
]
