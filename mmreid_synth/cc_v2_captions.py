"""Captions for SynthCC v2 images, for contrastive (CLIP-style) pretraining.

SynthCC v2 (:mod:`.synth_cc_v2`) is an image-only ReID benchmark; its
attributes file records, per identity, the clothes-independent cues (skin,
hair, face feature, build, legs, shoes) and, per outfit, the garments as
palette indices. The pretraining corpus of the stand-in CLIP
(:mod:`.clip_corpus`) describes each image with two captions made from
those attributes, so the image tower learns from text that names both the
clothes and the body, as web captions of people do.

Colour words: garments use the palette's own names (:data:`GARMENT_NAMES`,
one per entry of ``GARMENT_COLOURS``, read from the outfit's ``look``
indices, so they are exact); skin, hair and shoe colours are jittered RGB
and take the nearest named tone. A face feature is named only when the
face can be seen (not from behind).
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .captions import _article, _join
from .synth_cc_v2 import GARMENT_COLOURS

__all__ = ['GARMENT_NAMES', 'describe_cc_v2', 'cc_v2_captions']

#: Names of ``GARMENT_COLOURS``, in its order.
GARMENT_NAMES: Tuple[str, ...] = ('black', 'white', 'grey', 'red', 'pink',
                                  'orange', 'yellow', 'brown', 'green',
                                  'teal', 'blue', 'navy', 'purple', 'beige')
assert len(GARMENT_NAMES) == len(GARMENT_COLOURS)

_SKIN_NAMES: Dict[str, Tuple[int, int, int]] = {
    'very light': (250, 222, 198),
    'light': (236, 196, 162),
    'medium': (212, 164, 124),
    'tan': (176, 122, 84),
    'brown': (132, 88, 58),
    'dark': (96, 64, 44),
}
_HAIR_NAMES: Dict[str, Tuple[int, int, int]] = {
    'black': (20, 18, 18),
    'dark brown': (70, 44, 28),
    'brown': (128, 84, 46),
    'blonde': (220, 186, 116),
    'grey': (176, 176, 170),
    'auburn': (160, 62, 28),
    'dark blue': (60, 60, 110),
}
_SHOE_NAMES: Dict[str, Tuple[int, int, int]] = {
    'black': (24, 24, 26),
    'white': (236, 236, 232),
    'brown': (112, 70, 38),
    'grey': (128, 128, 132),
    'red': (190, 36, 40),
    'blue': (40, 80, 190),
    'beige': (212, 192, 150),
    'green': (40, 130, 60),
}
_SUBJECTS = ('a person', 'a pedestrian', 'someone', 'a walker')
_SLEEVE_WORDS = {'none': 'sleeveless', 'short': 'short-sleeved',
                 'long': 'long-sleeved'}
_PATTERN_WORDS = {'stripes': 'striped', 'band': 'banded',
                  'two-tone': 'two-tone', 'checks': 'checked'}
_FACE_WORDS = {'beard': 'a beard', 'moustache': 'a moustache',
               'mark': 'a mark on the face'}


def _nearest(rgb: Sequence[float], names: Dict[str, tuple]) -> str:
    """The name whose reference RGB is closest to ``rgb``."""
    ref = np.asarray(list(names.values()), dtype=np.float64)
    dist = ((ref - np.asarray(rgb, dtype=np.float64))**2).sum(axis=1)
    return list(names)[int(dist.argmin())]


def _hair(identity: dict) -> str:
    style = identity['hair_style']
    colour = _nearest(identity['hair_colour'], _HAIR_NAMES)
    if style == 'bald':
        return 'a bald head'
    if style in ('ponytail', 'bun'):
        return f'{colour} hair in a {style}'
    if style == 'buzz':
        return f'buzz-cut {colour} hair'
    length = 'medium-length' if style == 'medium' else style
    return f'{length} {colour} hair'


def describe_cc_v2(identity: dict, outfit: dict, direction: str) -> dict:
    """The phrases a caption of one image may use.

    Args:
        identity (dict): The identity's entry of the attributes file.
        outfit (dict): The outfit's entry of the attributes file.
        direction (str): The view (``'front'``, ``'back'``, ...).

    Returns:
        dict: ``hair``, ``skin``, ``face`` (or None), ``body`` (or None),
        ``top``, ``coat`` (or None), ``lower``, ``shoes``, ``hat`` (or
        None).
    """
    main, second, lower = (int(i) for i in outfit['look'])
    sleeves = _SLEEVE_WORDS[outfit['sleeves']]
    pattern = outfit['pattern']
    has_coat = outfit.get('coat_colour') is not None
    # With a coat, look[0] is the coat's colour and look[1] the pattern's
    # or the top's under an open coat (SynthCC v2's OutfitV2.look).
    if has_coat:
        coat = f'{GARMENT_NAMES[main]} coat'
        if outfit.get('coat_open') and second >= 0:
            coat = f'an open {coat} over a {GARMENT_NAMES[second]} top'
        else:
            coat = f'a closed {coat}'
        top = None
    else:
        coat = None
        colour = GARMENT_NAMES[main]
        if pattern != 'plain' and second >= 0:
            top = (f'{_PATTERN_WORDS[pattern]} {colour} and '
                   f'{GARMENT_NAMES[second]} {sleeves} top')
        else:
            top = f'{colour} {sleeves} top'
    build = float(identity['build'])
    body = ('a broad build' if build > 1.1 else
            'a slim build' if build < 0.92 else None)
    if body is None and float(identity['leg']) > 0.525:
        body = 'long legs'
    hat = None
    if outfit.get('hat'):
        hat_colour = _nearest(outfit['hat_colour'],
                              dict(zip(GARMENT_NAMES, GARMENT_COLOURS)))
        hat = f'{hat_colour} {outfit["hat"]}'
    face = None
    if direction != 'back' and identity['face'] in _FACE_WORDS:
        face = _FACE_WORDS[identity['face']]
    return dict(
        hair=_hair(identity),
        skin=f'{_nearest(identity["skin"], _SKIN_NAMES)} skin',
        face=face,
        body=body,
        top=top,
        coat=coat,
        lower=f'{GARMENT_NAMES[lower]} {outfit["lower"]}',
        shoes=(f'{_nearest(identity["shoe_colour"], _SHOE_NAMES)} '
               f'{identity["shoes"]}'),
        hat=hat)


def _caption(p: dict, rng: np.random.Generator) -> str:
    """One caption from the phrases, in one of four sentence shapes."""
    clothes = [p['coat'] if p['coat'] else _article(p['top'])]
    lower = p['lower']
    clothes.append(lower if lower.endswith(('trousers', 'shorts')) else
                   _article(lower))
    clothes.append(p['shoes'])
    if p['hat']:
        clothes.insert(0, _article(p['hat']))
    order = rng.permutation(len(clothes) - 1)  # the shoes stay last
    clothes = [clothes[i] for i in order] + [clothes[-1]]
    body = [p['hair'], p['skin']] + [x for x in (p['face'], p['body']) if x]
    body = [body[i] for i in rng.permutation(len(body))]
    subject = _SUBJECTS[int(rng.integers(len(_SUBJECTS)))]
    shape = int(rng.integers(4))
    if shape == 0:
        text = (f'{subject} with {_join(body)}, wearing {_join(clothes)}.')
    elif shape == 1:
        text = (f'{subject} wearing {_join(clothes)}. the person has '
                f'{_join(body)}.')
    elif shape == 2:
        text = (f'this person has {_join(body)} and is dressed in '
                f'{_join(clothes)}.')
    else:
        text = (f'{subject} in {_join(clothes)}, with {_join(body)}.')
    return text[0].upper() + text[1:]


def cc_v2_captions(identity: dict, outfit: dict, direction: str,
                   num: int, rng: np.random.Generator) -> List[str]:
    """``num`` captions of one SynthCC v2 image (distinct where possible).

    Args:
        identity (dict): The identity's entry of the attributes file.
        outfit (dict): The outfit's entry of the attributes file.
        direction (str): The image's view.
        num (int): Captions to make.
        rng (np.random.Generator): Draws the wording.

    Returns:
        list[str]: The captions.
    """
    phrases = describe_cc_v2(identity, outfit, direction)
    captions: List[str] = []
    for _ in range(8 * num):
        text = _caption(phrases, rng)
        if text not in captions:
            captions.append(text)
        if len(captions) == num:
            break
    while len(captions) < num:  # too few shapes for a very plain person
        captions.append(captions[-1])
    return captions
