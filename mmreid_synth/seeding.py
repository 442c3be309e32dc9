"""Seeded random streams of the synthetic-data generators.

Every random draw of SynthPedes and SynthCC comes from a generator keyed by
``(seed, stream tag, ...)``, so a person, a view or an image depends on its
own key only: any subset of a dataset regenerates identically, and changing
one kind of draw (say the number of captions) leaves the others untouched.
The tags of both generators live here, in one table, so that no two
streams can collide.
"""
import numpy as np

__all__ = [
    'make_rng', 'STREAM_IDENTITY', 'STREAM_VIEW', 'STREAM_RENDER',
    'STREAM_CAPTION', 'CC_STREAM_IDENTITY', 'CC_STREAM_OUTFIT',
    'CC_STREAM_ASSIGN', 'CC_STREAM_CAMERA', 'CC_STREAM_FRAME',
    'CC_STREAM_RENDER', 'CC2_STREAM_IDENTITY', 'CC2_STREAM_OUTFIT',
    'CC2_STREAM_PLAN', 'CC2_STREAM_CAMERA', 'CC2_STREAM_FRAME',
    'CC2_STREAM_RENDER', 'CC2_STREAM_SCENE', 'PEDES2_STREAM_LAYOUT',
    'PEDES2_STREAM_FAMILY', 'PEDES2_STREAM_DETAILS', 'PEDES2_STREAM_VIEW',
    'PEDES2_STREAM_RENDER', 'PEDES2_STREAM_CAPTION'
]

_SALT = 0x5E1D

# SynthPedes
STREAM_IDENTITY = 1
STREAM_VIEW = 2
STREAM_RENDER = 3
STREAM_CAPTION = 4

# SynthCC (a range of its own, so that the two generators never share a
# stream even when run with the same seed)
CC_STREAM_IDENTITY = 101
CC_STREAM_OUTFIT = 102
CC_STREAM_ASSIGN = 103
CC_STREAM_CAMERA = 104
CC_STREAM_FRAME = 105
CC_STREAM_RENDER = 106

# SynthCC v2 (synth_cc_v2.py): a range of its own as well
CC2_STREAM_IDENTITY = 121
CC2_STREAM_OUTFIT = 122
CC2_STREAM_PLAN = 123
CC2_STREAM_CAMERA = 124
CC2_STREAM_FRAME = 125
CC2_STREAM_RENDER = 126
CC2_STREAM_SCENE = 127

# SynthPedes v2 (synth_pedes_v2.py and its pedes_v2_* modules): 201-299
PEDES2_STREAM_LAYOUT = 201
PEDES2_STREAM_FAMILY = 202
PEDES2_STREAM_DETAILS = 203
PEDES2_STREAM_VIEW = 204
PEDES2_STREAM_RENDER = 205
PEDES2_STREAM_CAPTION = 206


def make_rng(seed: int, *keys: int) -> np.random.Generator:
    """A random generator determined by ``seed`` and integer ``keys`` only.

    Args:
        seed (int): Dataset seed.
        *keys (int): Further entropy, e.g. a stream tag, the person id and
            the view index.

    Returns:
        np.random.Generator: A PCG64 generator seeded through
        ``numpy.random.SeedSequence`` (which mixes all the keys, so
        neighbouring ids get unrelated streams).
    """
    return np.random.default_rng([_SALT, int(seed), *map(int, keys)])
