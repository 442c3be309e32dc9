"""Natural-language descriptions of synthetic pedestrians.

Captions are written from what one image shows (see
:func:`~.pedestrian.visible_identity`): a chest logo or the top under an open
jacket only from the front, glasses not from behind, a backpack's colour not
from the front (only its straps show), shoes not when the crop cuts them.
Each caption picks a sentence template, synonyms, the order of the parts and
which minor attributes to leave out, then is kept between
:data:`MIN_WORDS` and :data:`MAX_WORDS` words by adding or dropping optional
parts. Only true attributes are ever named.

Colour words always stand right before the noun they describe (with at most
a few :data:`MODIFIERS` between, e.g. "a red and white *striped* shirt",
"a *long* beige skirt"), never after a verb ("his shirt is red"): that keeps
the captions machine-checkable with :data:`COLOUR_WORDS` and
:data:`NOUN_SLOTS`, which the tests use to parse the colours back.
"""
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .pedestrian import Identity, View, visible_identity
from .seeding import STREAM_CAPTION, make_rng

__all__ = [
    'MIN_WORDS', 'MAX_WORDS', 'COLOUR_WORDS', 'HAIR_COLOUR_WORDS',
    'UPPER_NOUNS', 'LOWER_NOUNS', 'SHOE_NOUNS', 'NOUN_SLOTS', 'MODIFIERS',
    'MALE_WORDS', 'FEMALE_WORDS', 'tokenize', 'describe', 'generate_captions'
]

MIN_WORDS = 15
MAX_WORDS = 40

#: Surface forms of every garment colour (canonical name -> words).
COLOUR_WORDS: Dict[str, Tuple[str, ...]] = {
    'black': ('black', ),
    'white': ('white', ),
    'grey': ('grey', 'gray'),
    'red': ('red', ),
    'maroon': ('maroon', 'burgundy', 'dark red'),
    'pink': ('pink', ),
    'orange': ('orange', ),
    'yellow': ('yellow', ),
    'beige': ('beige', 'cream'),
    'brown': ('brown', ),
    'green': ('green', ),
    'olive': ('olive', 'olive green'),
    'blue': ('blue', ),
    'navy': ('navy', 'navy blue', 'dark blue'),
    'purple': ('purple', 'violet'),
}
#: Surface forms of hair colours.
HAIR_COLOUR_WORDS: Dict[str, Tuple[str, ...]] = {
    'black': ('black', ),
    'brown': ('brown', ),
    'blonde': ('blonde', 'blond'),
    'grey': ('grey', 'gray', 'silver'),
    'red': ('red', 'auburn', 'ginger'),
}
#: Head nouns of each upper-garment kind (the last word of its phrase).
UPPER_NOUNS: Dict[str, Tuple[str, ...]] = {
    't-shirt': ('t-shirt', 'tee', 'top'),
    'tank top': ('top', ),
    'shirt': ('shirt', 'blouse', 'top'),
    'sweater': ('sweater', 'jumper', 'pullover', 'top'),
    'hoodie': ('hoodie', 'sweatshirt', 'top'),
    'jacket': ('jacket', ),
    'coat': ('coat', 'overcoat'),
    'dress': ('dress', ),
}
LOWER_NOUNS: Dict[str, Tuple[str, ...]] = {
    'trousers': ('trousers', 'pants', 'slacks'),
    'jeans': ('jeans', ),
    'shorts': ('shorts', ),
    'skirt': ('skirt', ),
}
SHOE_NOUNS: Dict[str, Tuple[str, ...]] = {
    'shoes': ('shoes', ),
    'sneakers': ('sneakers', 'trainers'),
    'boots': ('boots', ),
}
#: Every head noun a colour can describe -> the attribute it belongs to.
NOUN_SLOTS: Dict[str, str] = {
    **{
        n: 'upper'
        for ns in UPPER_NOUNS.values()
        for n in ns
    },
    **{
        n: 'lower'
        for ns in LOWER_NOUNS.values()
        for n in ns
    },
    **{
        n: 'shoes'
        for ns in SHOE_NOUNS.values()
        for n in ns
    },
    'hair': 'hair',
    'ponytail': 'hair',
    'backpack': 'backpack',
    'rucksack': 'backpack',
    'handbag': 'bag',
    'purse': 'bag',
    'bag': 'bag',
    'cap': 'headwear',
    'hat': 'headwear',
    'scarf': 'scarf',
    'stripes': 'pattern',
    'dots': 'pattern',
    'logo': 'pattern',
    'print': 'pattern',
    'pattern': 'pattern',
}
#: Words that may stand between a colour and its noun.
MODIFIERS = frozenset([
    'and', 'striped', 'checked', 'checkered', 'plaid', 'polka', 'short',
    'long', 'very', 'short-sleeved', 'long-sleeved', 'sleeveless', 'tank',
    'button-up', 'hooded', 'zip-up', 'denim', 'baseball', 'shoulder',
    'messenger', 'medium-length', 'shoulder-length', 'knee-length', 'wool',
    'leather', 'canvas'
])
MALE_WORDS = ('man', 'guy', 'gentleman', 'male', 'he', 'his', 'him')
FEMALE_WORDS = ('woman', 'lady', 'girl', 'female', 'she', 'her')

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def tokenize(caption: str) -> List[str]:
    """Lower-case word tokens, as in CUHK-PEDES ``processed_tokens``.

    Punctuation is dropped; hyphenated words ("t-shirt") stay one token.

    Args:
        caption (str): A caption.

    Returns:
        list[str]: Its tokens.
    """
    return _TOKEN_RE.findall(caption.lower())


def _article(phrase: str) -> str:
    return ('an ' if phrase[:1] in 'aeiou' else 'a ') + phrase


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return ''.join(items)
    return ', '.join(items[:-1]) + ' and ' + items[-1]


class _Describer:
    """Samples the wording of every visible attribute for one caption."""

    def __init__(self, vis: Identity, view: View,
                 rng: np.random.Generator) -> None:
        self.vis, self.view, self.rng = vis, view, rng
        male = vis.gender == 'male'
        self.he = 'he' if male else 'she'
        self.his = 'his' if male else 'her'
        self.parts: Dict[str, str] = {}
        self._sample()

    def pick(self, options: Sequence[str]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def colour(self, name: str) -> str:
        # the first surface form is the common one: use it most of the time
        forms = COLOUR_WORDS[name]
        return forms[0] if self.rng.random() < 0.7 else self.pick(forms)

    # --- one phrase per attribute -------------------------------------------

    def _subject(self) -> Tuple[str, str]:
        vis = self.vis
        nouns = (('man', 'man', 'man', 'guy', 'gentleman', 'young man',
                  'male pedestrian') if vis.gender == 'male' else
                 ('woman', 'woman', 'woman', 'lady', 'girl', 'young woman',
                  'female pedestrian'))
        noun = self.pick(nouns)
        adjs = []
        if vis.height != 'average' and self.rng.random() < 0.3:
            adjs.append(vis.height)
        if vis.build != 'average' and self.rng.random() < 0.3:
            adjs.append(
                self.pick(('slim', 'thin',
                           'slender') if vis.build == 'slim' else ('heavy-set',
                                                                   'stocky',
                                                                   'broad')))
        return noun, ' '.join(adjs + [noun])

    def _garment_noun(self, kind: str) -> str:
        female = self.vis.gender == 'female'
        options = {
            't-shirt': ('t-shirt', 't-shirt', 'tee', 'top'),
            'tank top': ('tank top', 'sleeveless top'),
            'shirt': (('shirt', 'blouse', 'button-up shirt') if female else
                      ('shirt', 'shirt', 'button-up shirt')),
            'sweater': ('sweater', 'jumper', 'pullover', 'top'),
            'hoodie': ('hoodie', 'hoodie', 'hooded sweatshirt', 'hooded top'),
            'jacket': ('jacket', 'jacket', 'zip-up jacket'),
            'coat': ('coat', 'long coat', 'overcoat'),
            'dress': ('dress', ),
        }[kind]
        return self.pick(options)

    def _upper(self) -> str:
        up = self.vis.upper
        noun = self._garment_noun(up.kind)
        if up.inner_kind is not None and noun == 'zip-up jacket':
            noun = 'jacket'  # an open jacket is not zipped up
        if up.kind in ('shirt', 'dress') and self.rng.random() < 0.35:
            noun = {
                'none': 'sleeveless',
                'short': 'short-sleeved',
                'long': 'long-sleeved'
            }[up.sleeves] + ' ' + noun
        c = self.colour(up.colour)
        pc = self.colour(up.pattern_colour) if up.pattern_colour else None
        form = self.rng.random()
        if up.pattern == 'stripes':
            phrase = (f'{c} and {pc} striped {noun}'
                      if form < 0.5 else f'{c} {noun} with {pc} stripes')
            phrase = _article(phrase)
        elif up.pattern == 'checks':
            adj = self.pick(('checked', 'checkered', 'plaid'))
            phrase = (
                _article(f'{c} and {pc} {adj} {noun}') if form < 0.6 else
                _article(f'{c} {noun} with a {pc} {adj} pattern'))
        elif up.pattern == 'dots':
            dots = self.pick(('dots', 'polka dots'))
            phrase = _article(f'{c} {noun} with {pc} {dots}')
        elif up.pattern == 'logo':
            where = self.pick(('', ' on the front', ' on the chest'))
            mark = self.pick(('logo', 'logo', 'print'))
            phrase = _article(f'{c} {noun} with {_article(pc)} {mark}{where}')
        else:
            phrase = _article(f'{c} {noun}')
        if up.inner_kind is not None:
            inner = _article(f'{self.colour(up.inner_colour)} '
                             f'{self._garment_noun(up.inner_kind)}')
            outer_open = phrase.split(' ', 1)[1]
            if form < 0.4:
                phrase = f'{_article("open " + outer_open)} over {inner}'
            elif form < 0.7:
                phrase = f'{phrase} with {inner} underneath'
            else:
                phrase = f'{inner} under {_article("open " + outer_open)}'
        return phrase

    def _lower(self) -> Optional[str]:
        low = self.vis.lower
        if low is None:
            return None
        c = self.colour(low.colour)
        if low.kind == 'skirt':
            long = 'long ' if self.vis.upper.kind == 'coat' else ''
            return _article(f'{long}{c} skirt')
        noun = {
            'trousers': ('trousers', 'pants', 'pants', 'slacks'),
            'jeans': ('jeans', 'jeans', 'denim jeans'),
            'shorts': ('shorts', )
        }[low.kind]
        phrase = f'{c} {self.pick(noun)}'
        return f'a pair of {phrase}' if self.rng.random() < 0.3 else phrase

    def _shoes(self) -> Optional[str]:
        shoes = self.vis.shoes
        if shoes is None:
            return None
        noun = self.pick({
            'shoes': ('shoes', ),
            'sneakers': ('sneakers', 'trainers'),
            'boots': ('boots', )
        }[shoes.kind])
        phrase = f'{self.colour(shoes.colour)} {noun}'
        return f'a pair of {phrase}' if self.rng.random() < 0.3 else phrase

    def _hair(self) -> Optional[str]:
        vis = self.vis
        style = vis.hair_style
        if style == 'hidden':
            return None
        if style == 'bald':
            return self.pick(('a bald head', 'a shaved head'))
        forms = HAIR_COLOUR_WORDS[vis.hair_colour]
        c = forms[0] if self.rng.random() < 0.7 else self.pick(forms)
        if style == 'ponytail':
            if self.view.direction == 'front':
                return f'{c} hair {self.pick(("pulled back", "tied back"))}'
            return self.pick(
                (f'{c} hair tied in a ponytail', f'{c} hair in a ponytail',
                 _article(f'{c} ponytail')))
        if style == 'bun':
            return self.pick(
                (f'{c} hair in a bun', f'{c} hair tied up in a bun'))
        length = {
            'buzz': ('very short', ),
            'short': ('short', ),
            'medium': (('medium-length',
                        'shoulder-length') if vis.gender == 'female' else
                       ('medium-length', )),
            'long': ('long', ),
        }[style]
        return f'{self.pick(length)} {c} hair'

    def _backpack(self) -> Optional[str]:
        colour = self.vis.backpack
        if colour is None:
            return None
        if self.view.direction == 'front':
            # only the straps show: the colour is not described
            return self.pick(('a backpack', 'a backpack on the shoulders'))
        c = self.colour(colour)
        return _article(
            self.pick((f'{c} backpack', f'{c} rucksack',
                       f'{c} backpack on {self.his} back')))

    def _bag(self) -> Optional[str]:
        bag = self.vis.bag
        if bag is None:
            return None
        c = self.colour(bag.colour)
        if bag.kind == 'handbag':
            return _article(
                self.pick((f'{c} handbag', f'{c} purse',
                           f'{c} handbag in one hand')))
        return _article(
            self.pick(
                (f'{c} shoulder bag', f'{c} bag over {self.his} shoulder',
                 f'{c} messenger bag')))

    def _headwear(self) -> Optional[str]:
        hw = self.vis.headwear
        if hw is None:
            return None
        c = self.colour(hw.colour)
        if hw.kind == 'cap':
            return _article(self.pick((f'{c} cap', f'{c} baseball cap')))
        return _article(f'{c} hat')

    def _glasses(self) -> Optional[str]:
        g = self.vis.glasses
        if g is None:
            return None
        if g == 'sunglasses':
            return self.pick(
                ('sunglasses', 'a pair of sunglasses', 'dark sunglasses'))
        return self.pick(('glasses', 'a pair of glasses', 'eyeglasses'))

    def _scarf(self) -> Optional[str]:
        if self.vis.scarf is None:
            return None
        c = self.colour(self.vis.scarf)
        return _article(
            self.pick((f'{c} scarf', f'{c} scarf around {self.his} neck')))

    def _view(self) -> Tuple[str, str]:
        """(finite verb phrase, participle phrase) for the walking pose."""
        d = self.view.direction
        if d == 'front':
            options = (('is walking towards the camera',
                        'walking towards the camera'), ('is facing the camera',
                                                        'facing the camera'),
                       ('is walking toward the camera',
                        'walking toward the camera'))
        elif d == 'back':
            options = (('is walking away from the camera',
                        'walking away from the camera'),
                       ('is facing away from the camera',
                        'facing away from the camera'), ('is seen from behind',
                                                         'seen from behind'))
        else:
            options = ((f'is walking to the {d}', f'walking to the {d}'),
                       (f'is walking towards the {d}',
                        f'walking towards the {d}'), ('is seen from the side',
                                                      'seen from the side'))
        return options[int(self.rng.integers(len(options)))]

    def _sample(self) -> None:
        subj_short, subj_long = self._subject()
        self.parts = dict(subject=subj_short, subject_long=subj_long)
        for key, fn in (('upper', self._upper), ('lower', self._lower),
                        ('shoes', self._shoes), ('hair', self._hair),
                        ('backpack', self._backpack), ('bag', self._bag),
                        ('headwear', self._headwear),
                        ('glasses', self._glasses), ('scarf', self._scarf)):
            phrase = fn()
            if phrase is not None:
                self.parts[key] = phrase
        self.view_vp, self.view_part = self._view()
        # verbs are drawn once, so re-composing to fix the length keeps them
        self.wear = self.pick(
            ('is wearing', 'wears', 'is dressed in', 'has on'))
        self.carry = self.pick(('is carrying', 'carries', 'has'))
        self.walk = self.pick(
            ('is walking along', 'is walking down the street', 'walks by'))


#: Attributes a caption may leave out, with the probability of keeping
#: each; the upper garment and (when visible) the lower one are always said.
_KEEP_P = dict(
    shoes=0.6,
    hair=0.75,
    backpack=0.85,
    bag=0.8,
    headwear=0.85,
    glasses=0.7,
    scarf=0.75,
    view=0.45,
    build=0.5)
#: Order in which optional parts are dropped from a caption that is too
#: long, and added back (reversed) to one that is too short.
_DROP_ORDER = ('build', 'view', 'glasses', 'shoes', 'scarf', 'hair', 'bag',
               'headwear', 'backpack')


def _compose(template: int, d: _Describer, keep: Dict[str, bool]) -> str:
    """Assemble a caption from the kept parts with one of six templates."""
    p = {k: v for k, v in d.parts.items() if keep.get(k, True)}
    subj = d.parts['subject_long'] if keep['build'] else d.parts['subject']
    He = d.he.capitalize()
    clothes = [p['upper']] + [p[k] for k in ('lower', 'shoes') if k in p]
    worn = [p[k] for k in ('headwear', 'glasses', 'scarf') if k in p]
    carried = [p[k] for k in ('backpack', 'bag') if k in p]
    hair = p.get('hair')
    view = keep['view']
    wear, carry = d.wear, d.carry
    sentences: List[str] = []

    if template == 0:
        # A man is wearing X, Y and Z. He has H and wears W. He carries C.
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
        # A woman with H is walking ... She wears X and carries C.
        opener = _article(subj) + (f' with {hair}' if hair else '')
        sentences.append(
            f'{opener} {d.view_vp if view else "is walking down the street"}')
        tail = f', and {carry} {_join(carried)}' if carried else ''
        sentences.append(f'{He} {wear} {_join(clothes + worn)}{tail}')
    elif template == 2:
        # A man wearing X (walking ...). He has H and C, and is wearing W.
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
        # Wearing X and Y, the woman walks ... She has H. She carries C.
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
            # "She is also carrying", not "She also is carrying"
            also = (f'is also {also[3:]}'
                    if also.startswith('is ') else f'also {also}')
            sentences.append(f'{He} {also}')
    elif template == 4:
        # The man has H. He is dressed in X with Y. He also carries C.
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
    else:
        # This woman ... . Her outfit is X and Y. She has H and carries C.
        verb = d.view_vp if view else 'is walking'
        sentences.append(f'This {subj} {verb}')
        sentences.append(f'{He} {wear} {_join(clothes)}' +
                         (f' as well as {_join(worn)}' if worn else ''))
        has = ([hair] if hair else []) + carried
        if has:
            sentences.append(f'{He} has {_join(has)}')
    return ' '.join(s[0].upper() + s[1:] + '.' for s in sentences)


_NUM_TEMPLATES = 6


def describe(identity: Identity, view: View, template: int,
             rng: np.random.Generator) -> str:
    """One caption of ``identity`` as seen in ``view``.

    Args:
        identity (Identity): The person (all attributes; the invisible ones
            are removed here).
        view (View): The view the caption describes.
        template (int): Sentence template, ``0 .. 5``.
        rng (np.random.Generator): Source of the wording choices.

    Returns:
        str: A caption of :data:`MIN_WORDS` to :data:`MAX_WORDS` words
        (fewer only when the person shows too little to say more).
    """
    vis = visible_identity(identity, view)
    d = _Describer(vis, view, rng)
    keep = {k: bool(rng.random() < pk) for k, pk in _KEEP_P.items()}
    caption = _compose(template, d, keep)
    n = len(tokenize(caption))
    # Too long: drop minor parts first; too short: add them back.
    order = list(_DROP_ORDER)
    while n > MAX_WORDS and order:
        key = order.pop(0)
        if keep.get(key, False):
            keep[key] = False
            caption = _compose(template, d, keep)
            n = len(tokenize(caption))
    order = list(reversed(_DROP_ORDER))
    while n < MIN_WORDS and order:
        key = order.pop(0)
        if not keep.get(key, True):
            keep[key] = True
            caption = _compose(template, d, keep)
            n = len(tokenize(caption))
    return caption


def generate_captions(identity: Identity, view: View, num: int,
                      seed: int) -> List[str]:
    """``num`` different captions of one image.

    Args:
        identity (Identity): The person.
        view (View): The image's view.
        num (int): Number of captions.
        seed (int): Dataset seed; the wording depends on
            ``(seed, pid, view index)`` only.

    Returns:
        list[str]: The captions, each from a different template while there
        are templates left, and never two identical ones.
    """
    rng = make_rng(seed, STREAM_CAPTION, identity.pid, view.index)
    order = [int(t) for t in rng.permutation(_NUM_TEMPLATES)]
    captions: List[str] = []
    for k in range(num):
        template = order[k % _NUM_TEMPLATES]
        caption = describe(identity, view, template, rng)
        # rewording until distinct; duplicates are rare and need few tries
        for _ in range(20):
            if caption not in captions:
                break
            caption = describe(identity, view, template, rng)
        captions.append(caption)
    return captions
