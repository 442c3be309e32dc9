"""Captions of SynthPedes v2, and a reader that parses them back.

Wording comes from v1 (:mod:`.captions`: the same phrases, synonyms and
colour words) with what v2 adds: a band across the chest, a watch, eight
sentence templates instead of six, and the worn and carried items in a
random order. The difference from v1 that matters: every *varying* detail
of the person's family (:attr:`~.pedes_v2_people.Person.varying`) that the
image shows is always named, and never dropped to shorten a caption, so the
caption of each member says what tells it apart from its near-duplicates.
Shared details and minor parts are kept or left out as in v1.

:func:`read_caption` parses a caption into the attribute vocabulary of
:func:`~.pedes_v2_people.image_facts`: the probe's oracle matchers and the
tests read captions with it. Colour words stand right before their noun
(with at most a few :data:`MODIFIERS_V2` between), as in v1.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .captions import (COLOUR_WORDS, FEMALE_WORDS, HAIR_COLOUR_WORDS,
                       LOWER_NOUNS, MALE_WORDS, MODIFIERS, SHOE_NOUNS,
                       UPPER_NOUNS, _article, _Describer, _join, tokenize)
from .pedes_v2_people import (Person, band_visible, visible_details,
                              watch_visible)
from .pedestrian import View, visible_identity
from .seeding import PEDES2_STREAM_CAPTION, make_rng

__all__ = [
    'MIN_WORDS_V2', 'MAX_WORDS_V2', 'NUM_TEMPLATES_V2', 'MODIFIERS_V2',
    'DETAIL_NOUNS', 'describe_v2', 'generate_captions_v2', 'read_caption',
    'forced_parts'
]

MIN_WORDS_V2 = 15
MAX_WORDS_V2 = 52
NUM_TEMPLATES_V2 = 8
#: Words that may stand between a colour and its noun (v1's and v2's).
MODIFIERS_V2 = frozenset(MODIFIERS | {'wide', 'chest'})
#: Head nouns of the detail slots -> (slot, kind); kind None: the slot has
#: one kind (its value is the colour), or it is read from the context.
DETAIL_NOUNS: Dict[str, tuple] = {
    'handbag': ('bag', 'handbag'),
    'purse': ('bag', 'handbag'),
    'bag': ('bag', None),  # shoulder / messenger bag, bag over a shoulder
    'cap': ('headwear', 'cap'),
    'hat': ('headwear', 'hat'),
    'logo': ('mark', 'logo'),
    'print': ('mark', 'logo'),
    'stripe': ('mark', 'band'),
    'band': ('mark', 'band'),
    'scarf': ('scarf', None),
    'watch': ('watch', None),
    'wristwatch': ('watch', None),
    'backpack': ('backpack', None),
    'rucksack': ('backpack', None),
    **{
        n: ('shoes', k)
        for k, ns in SHOE_NOUNS.items()
        for n in ns
    },
}
#: Part of the caption that names each detail slot.
_SLOT_PART = dict(
    bag='bag',
    shoes='shoes',
    headwear='headwear',
    mark='upper',
    eyewear='glasses',
    scarf='scarf',
    watch='watch',
    hair='hair')
#: Probability of keeping an optional part (shared details and minor
#: parts; the varying details are always kept).
_KEEP_P_V2 = dict(
    shoes=0.6,
    hair=0.75,
    backpack=0.85,
    bag=0.8,
    headwear=0.85,
    glasses=0.7,
    scarf=0.75,
    watch=0.6,
    view=0.45,
    build=0.5)
#: Order of dropping optional parts from a caption that is too long.
_DROP_ORDER_V2 = ('build', 'view', 'glasses', 'watch', 'shoes', 'scarf',
                  'hair', 'bag', 'headwear', 'backpack')


class _DescriberV2(_Describer):
    """v1's phrases for one caption, plus the band and the watch."""

    def __init__(self, person: Person, view: View,
                 rng: np.random.Generator) -> None:
        self.person = person
        super().__init__(visible_identity(person.base, view), view, rng)

    def _upper(self) -> str:
        phrase = super()._upper()
        band = self.person.band
        if band is None or not band_visible(self.person, self.view):
            return phrase
        c = self.colour(band)
        tail = self.pick(
            (f'a {c} stripe across the chest', f'a wide {c} band across '
             'the chest', f'a {c} chest stripe', f'a {c} band around the '
             'chest'))
        return f'{phrase} with {tail}'

    def _watch(self) -> Optional[str]:
        colour = self.person.watch
        if colour is None or not watch_visible(self.view):
            return None
        c = self.colour(colour)
        return _article(
            self.pick((f'{c} watch', f'{c} wristwatch',
                       f'{c} watch on {self.his} wrist')))

    def _sample(self) -> None:
        super()._sample()
        watch = self._watch()
        if watch is not None:
            self.parts['watch'] = watch


def forced_parts(person: Person, view: View) -> List[str]:
    """The caption parts that name the family's varying details visible
    in ``view`` (always kept)."""
    shown = visible_details(person, view)
    return [_SLOT_PART[s] for s in person.varying if s in shown]


def _compose_v2(template: int, d: _DescriberV2, keep: Dict[str, bool],
                order: Sequence[int]) -> str:
    """Assemble a caption from the kept parts with one of eight
    templates; ``order`` shuffles the worn and carried items."""
    p = {k: v for k, v in d.parts.items() if keep.get(k, True)}
    subj = d.parts['subject_long'] if keep['build'] else d.parts['subject']
    He = d.he.capitalize()
    His = d.his.capitalize()
    clothes = [p['upper']] + [p[k] for k in ('lower', 'shoes') if k in p]
    worn_keys = [('headwear', 'glasses', 'scarf', 'watch')[i] for i in order
                 if i < 4]
    worn = [p[k] for k in worn_keys if k in p]
    carried = [p[k] for k in ('backpack', 'bag') if k in p]
    if order[0] % 2:
        carried = carried[::-1]
    hair = p.get('hair')
    view = keep['view']
    wear, carry = d.wear, d.carry
    sentences: List[str] = []

    if template == 0:
        sentences.append(f'{_article(subj)} {wear} {_join(clothes)}')
        if hair and worn:
            sentences.append(f'{He} has {hair} and wears {_join(worn)}')
        elif hair:
            sentences.append(f'{He} has {hair}')
        elif worn:
            sentences.append(f'{He} is wearing {_join(worn)}')
        if carried:
            sentences.append(f'{He} {carry} {_join(carried)}')
        if view:
            sentences.append(f'{He} {d.view_vp}')
    elif template == 1:
        opener = _article(subj) + (f' with {hair}' if hair else '')
        sentences.append(
            f'{opener} {d.view_vp if view else "is walking down the street"}')
        tail = f', and {carry} {_join(carried)}' if carried else ''
        sentences.append(f'{He} {wear} {_join(clothes + worn)}{tail}')
    elif template == 2:
        where = f' {d.view_part}' if view else ''
        sentences.append(f'{_article(subj)} wearing {_join(clothes)}{where}')
        has = ([hair] if hair else []) + carried
        if has and worn:
            sentences.append(
                f'{He} has {_join(has)}, and is wearing {_join(worn)}')
        elif has:
            sentences.append(f'{He} has {_join(has)}')
        elif worn:
            sentences.append(f'{He} is also wearing {_join(worn)}')
    elif template == 3:
        verb = d.view_vp if view else d.walk
        sentences.append(f'Wearing {_join(clothes)}, the {subj} {verb}')
        if hair:
            sentences.append(f'{He} has {hair}')
        if worn or carried:
            bits = []
            if worn:
                bits.append(f'wears {_join(worn)}')
            if carried:
                bits.append(f'{carry} {_join(carried)}')
            also = ' and '.join(bits)
            also = (f'is also {also[3:]}'
                    if also.startswith('is ') else f'also {also}')
            sentences.append(f'{He} {also}')
    elif template == 4:
        if hair:
            sentences.append(f'The {subj} has {hair}')
            sentences.append(f'{He} is dressed in {_join(clothes + worn)}')
        else:
            sentences.append(
                f'The {subj} is dressed in {_join(clothes + worn)}')
        if carried:
            sentences.append(f'{He} {carry} {_join(carried)}')
        if view:
            sentences.append(f'{He} {d.view_vp}')
    elif template == 5:
        verb = d.view_vp if view else 'is walking'
        sentences.append(f'This {subj} {verb}')
        sentences.append(f'{He} {wear} {_join(clothes)}' +
                         (f' as well as {_join(worn)}' if worn else ''))
        has = ([hair] if hair else []) + carried
        if has:
            sentences.append(f'{He} has {_join(has)}')
    elif template == 6:
        # A woman in X and Y is walking ... She wears W. She carries C.
        verb = d.view_vp if view else d.walk
        sentences.append(f'{_article(subj)} in {_join(clothes)} {verb}')
        if worn:
            sentences.append(f'{He} wears {_join(worn)}')
        if hair and carried:
            sentences.append(f'{He} has {hair} and {carry} '
                             f'{_join(carried)}')
        elif hair:
            sentences.append(f'{He} has {hair}')
        elif carried:
            sentences.append(f'{He} {carry} {_join(carried)}')
    else:
        # There is a man with H wearing X. His accessories are W and C.
        with_hair = f' with {hair}' if hair else ''
        sentences.append(f'There is {_article(subj)}{with_hair} wearing '
                         f'{_join(clothes)}')
        items = worn + carried
        if len(items) > 1:
            sentences.append(f'{His} accessories are {_join(items)}')
        elif items:
            sentences.append(f'{He} also has {items[0]}')
        if view:
            sentences.append(f'{He} {d.view_vp}')
    return ' '.join(s[0].upper() + s[1:] + '.' for s in sentences)


def describe_v2(person: Person, view: View, template: int,
                rng: np.random.Generator) -> str:
    """One caption of ``person`` as seen in ``view``.

    Args:
        person (Person): The person.
        view (View): The view the caption describes.
        template (int): Sentence template, ``0 .. NUM_TEMPLATES_V2 - 1``.
        rng (np.random.Generator): Source of the wording choices.

    Returns:
        str: The caption: every visible varying detail named; between
        :data:`MIN_WORDS_V2` and :data:`MAX_WORDS_V2` words unless the
        forced parts alone are longer or the person shows too little.
    """
    d = _DescriberV2(person, view, rng)
    keep = {k: bool(rng.random() < pk) for k, pk in _KEEP_P_V2.items()}
    forced = set(forced_parts(person, view))
    for part in forced:
        keep[part] = True
    order = [int(i) for i in rng.permutation(4)]
    caption = _compose_v2(template, d, keep, order)
    n = len(tokenize(caption))
    drop = [k for k in _DROP_ORDER_V2 if k not in forced]
    for key in drop:
        if n <= MAX_WORDS_V2:
            break
        if keep.get(key, False):
            keep[key] = False
            caption = _compose_v2(template, d, keep, order)
            n = len(tokenize(caption))
    for key in reversed(drop):
        if n >= MIN_WORDS_V2:
            break
        if not keep.get(key, True):
            keep[key] = True
            caption = _compose_v2(template, d, keep, order)
            n = len(tokenize(caption))
    return caption


def generate_captions_v2(person: Person, view: View, num: int,
                         seed: int) -> List[str]:
    """``num`` different captions of one image (different templates while
    there are templates left); the wording depends on ``(seed, pid, view
    index)`` only."""
    rng = make_rng(seed, PEDES2_STREAM_CAPTION, person.pid, view.index)
    order = [int(t) for t in rng.permutation(NUM_TEMPLATES_V2)]
    captions: List[str] = []
    for k in range(num):
        template = order[k % NUM_TEMPLATES_V2]
        caption = describe_v2(person, view, template, rng)
        for _ in range(20):
            if caption not in captions:
                break
            caption = describe_v2(person, view, template, rng)
        captions.append(caption)
    return captions


# ---------------------------------------------------------------------------
# reading captions back

_COLOUR = {w: c for c, forms in COLOUR_WORDS.items() for w in forms}
_HAIR_COLOUR = {w: c for c, forms in HAIR_COLOUR_WORDS.items() for w in forms}
_MULTI = sorted((w for w in list(_COLOUR) + list(_HAIR_COLOUR) if ' ' in w),
                key=len,
                reverse=True)
_UPPER = {n for ns in UPPER_NOUNS.values() for n in ns}
_LOWER = {n: k for k, ns in LOWER_NOUNS.items() for n in ns}
_PATTERN_NOUNS = ('stripes', 'dots', 'pattern')
_MALE, _FEMALE = set(MALE_WORDS), set(FEMALE_WORDS)


def _tokens(caption: str) -> List[str]:
    """Tokens with multi-word colours ("navy blue") merged into one."""
    toks, out, i = tokenize(caption), [], 0
    while i < len(toks):
        pair = ' '.join(toks[i:i + 2])
        if pair in _MULTI:
            out.append(pair)
            i += 2
        else:
            out.append(toks[i])
            i += 1
    return out


def _hair_style(toks: List[str], start: int, end: int) -> Optional[str]:
    """The style named around a hair mention (colours ``toks[start:end]``
    before ``hair`` / ``ponytail`` at ``end``)."""
    if toks[end] == 'ponytail':
        return 'ponytail'
    after = toks[end + 1:end + 7]
    if 'ponytail' in after or after[:2] in (['pulled', 'back'
                                             ], ['tied', 'back']):
        return 'ponytail'
    if 'bun' in after:
        return 'bun'
    before = toks[start - 1] if start else ''
    if before == 'short':
        return 'buzz' if start > 1 and toks[start - 2] == 'very' else 'short'
    return {
        'long': 'long',
        'medium-length': 'medium',
        'shoulder-length': 'medium'
    }.get(before)


def read_caption(caption: str) -> Dict[str, Any]:
    """What a caption says, in the vocabulary of
    :func:`~.pedes_v2_people.image_facts`.

    Returns:
        dict: Any of ``gender``; ``upper`` (sorted colours of the top:
        main, pattern, the top under an open jacket); ``lower`` ``(kind,
        colour)``; ``hair_colour``; ``hair`` (style); ``backpack`` (colour,
        or ``'yes'`` when named without one); ``bag``, ``shoes``,
        ``headwear``, ``mark`` ``(kind, colour)``; ``eyewear``; ``scarf``,
        ``watch`` (colours). Keys the caption does not speak of are left
        out.
    """
    toks = _tokens(caption)
    out: Dict[str, Any] = {}
    words = set(toks)
    if words & _MALE and not words & _FEMALE:
        out['gender'] = 'male'
    elif words & _FEMALE and not words & _MALE:
        out['gender'] = 'female'
    if 'sunglasses' in words:
        out['eyewear'] = 'sunglasses'
    elif words & {'glasses', 'eyeglasses'}:
        out['eyewear'] = 'glasses'
    if words & {'bald', 'shaved'}:
        out['hair'] = 'bald'
    if words & {'backpack', 'rucksack'}:
        out['backpack'] = 'yes'
    upper: set = set()
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok not in _COLOUR and tok not in _HAIR_COLOUR:
            i += 1
            continue
        colours, mods, j = [tok], [], i + 1
        while j < len(toks) and (toks[j] in _COLOUR or toks[j] in _HAIR_COLOUR
                                 or toks[j] in MODIFIERS_V2):
            (mods if toks[j] in MODIFIERS_V2 else colours).append(toks[j])
            j += 1
        if j >= len(toks):
            break
        noun = toks[j]
        first = colours[0]
        if noun in ('hair', 'ponytail'):
            out['hair_colour'] = _HAIR_COLOUR.get(first)
            style = _hair_style(toks, i, j)
            if style:
                out['hair'] = style
        elif noun in _UPPER or noun in _PATTERN_NOUNS or noun == 'dress':
            upper.update(_COLOUR[c] for c in colours if c in _COLOUR)
        elif noun in _LOWER:
            out['lower'] = (_LOWER[noun], _COLOUR.get(first))
        elif noun in DETAIL_NOUNS:
            slot, kind = DETAIL_NOUNS[noun]
            colour = _COLOUR.get(first)
            if slot == 'bag' and kind is None:
                kind = 'shoulder bag'  # shoulder / messenger / over ...
            if slot in ('scarf', 'watch', 'backpack'):
                out[slot] = colour
            else:
                out[slot] = (kind, colour)
        i = j + 1
    if upper:
        out['upper'] = sorted(upper)
    return out
