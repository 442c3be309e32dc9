"""Attributes and views of SynthPedes' synthetic pedestrians.

An *identity* is a set of appearance attributes (body, hair, garments,
accessories) drawn once per person id; a *view* is one photograph of that
person (walking direction, pose, framing, camera, lighting) drawn once per
image. Both come from random generators seeded by ``(seed, pid[, view])``
only (see :mod:`.seeding`), so a person looks the same whichever subset of
the dataset is generated, and an image does not change when more views are
asked for. :func:`~.renderer.render_view` draws them; :mod:`.captions`
describes them.
"""
import dataclasses
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from .renderer import RGB, jitter
from .seeding import STREAM_IDENTITY, STREAM_VIEW, make_rng

__all__ = [
    'COLOURS', 'HAIR_COLOURS', 'SKIN_TONES', 'UPPER_KINDS', 'LOWER_KINDS',
    'SHOE_KINDS', 'DIRECTIONS', 'CAMERAS', 'Upper', 'Lower', 'Shoes', 'Bag',
    'Headwear', 'Identity', 'View', 'make_rng', 'sample_identity',
    'sample_view', 'visible_identity', 'attribute_space_size'
]

# ---------------------------------------------------------------------------
# Vocabulary. Names are the canonical attribute values; captions.py maps them
# to surface words. Fifteen garment colours, several of which are close
# (navy / blue, maroon / red, beige / white, olive / green), so that a
# person is identified by the combination rather than by a single colour.

#: Garment and accessory colours (name -> base RGB).
COLOURS: Dict[str, RGB] = {
    'black': (28, 28, 32),
    'white': (236, 236, 232),
    'grey': (128, 128, 132),
    'red': (200, 32, 38),
    'maroon': (112, 22, 38),
    'pink': (240, 142, 178),
    'orange': (240, 128, 32),
    'yellow': (238, 210, 44),
    'beige': (212, 192, 152),
    'brown': (118, 74, 40),
    'green': (40, 142, 62),
    'olive': (108, 114, 46),
    'blue': (44, 92, 204),
    'navy': (26, 36, 88),
    'purple': (116, 56, 152),
}

#: Hair colours (name -> base RGB); ``red`` hair is auburn, not fire red.
HAIR_COLOURS: Dict[str, RGB] = {
    'black': (22, 20, 20),
    'brown': (92, 58, 34),
    'blonde': (214, 180, 110),
    'grey': (168, 168, 162),
    'red': (150, 62, 30),
}

#: Skin tones (not described in captions, which rarely do in CUHK-PEDES).
SKIN_TONES: Dict[str, RGB] = {
    'light': (248, 218, 194),
    'fair': (232, 192, 158),
    'medium': (204, 154, 114),
    'tan': (160, 110, 74),
    'dark': (104, 70, 46),
}

UPPER_KINDS = ('t-shirt', 'tank top', 'shirt', 'sweater', 'hoodie', 'jacket',
               'coat', 'dress')
LOWER_KINDS = ('trousers', 'jeans', 'shorts', 'skirt')
SHOE_KINDS = ('shoes', 'sneakers', 'boots')
BAG_KINDS = ('handbag', 'shoulder bag')
HEADWEAR_KINDS = ('cap', 'hat')
GLASSES_KINDS = ('glasses', 'sunglasses')
PATTERNS = ('plain', 'stripes', 'checks', 'dots', 'logo')
HAIR_STYLES = ('bald', 'buzz', 'short', 'medium', 'long', 'ponytail', 'bun')
HEIGHTS = ('short', 'average', 'tall')
BUILDS = ('slim', 'average', 'heavy')
#: Walking directions relative to the camera: ``left`` / ``right`` mean the
#: person faces the image's left / right.
DIRECTIONS = ('front', 'back', 'left', 'right')
#: Camera names; each has its own typical scenery and colour cast, like the
#: source cameras of the real benchmarks.
CAMERAS = ('a', 'b', 'c')

# ---------------------------------------------------------------------------
# Sampling weights: frequent dark / neutral colours make many people share
# partial attributes, as in real street data. (Kept as compact tables.)
# yapf: disable

_UPPER_COLOUR_W = dict(
    black=14, white=12, grey=9, red=7, maroon=4, pink=5, orange=4, yellow=5,
    beige=4, brown=4, green=6, olive=3, blue=10, navy=6, purple=5)
_LOWER_COLOUR_W = dict(
    black=24, white=6, grey=12, red=3, maroon=2, pink=3, orange=1, yellow=1,
    beige=8, brown=7, green=3, olive=4, blue=10, navy=9, purple=2)
_JEANS_COLOUR_W = dict(blue=50, navy=20, black=20, grey=10)
_SHOE_COLOUR_W = dict(
    black=35, white=30, brown=12, grey=10, red=4, blue=4, pink=3, beige=2)
_ACCESSORY_COLOUR_W = dict(
    black=30, white=6, grey=8, red=6, maroon=3, pink=5, orange=2, yellow=3,
    beige=5, brown=12, green=4, olive=3, blue=7, navy=5, purple=3)
#: Colours of stripes, checks, dots and logos: mostly contrasting neutrals.
_PATTERN_COLOUR_W = dict(
    black=16, white=20, grey=6, red=8, maroon=2, pink=3, orange=3, yellow=5,
    beige=3, brown=2, green=4, olive=2, blue=8, navy=5, purple=3)

_UPPER_KIND_W = {
    'male': {'t-shirt': 25, 'tank top': 4, 'shirt': 18, 'sweater': 12,
             'hoodie': 10, 'jacket': 18, 'coat': 13},
    'female': {'t-shirt': 20, 'tank top': 6, 'shirt': 14, 'sweater': 10,
               'hoodie': 6, 'jacket': 14, 'coat': 12, 'dress': 18},
}
_SLEEVES_W = {
    't-shirt': {'short': 1}, 'tank top': {'none': 1},
    'shirt': {'long': 7, 'short': 3}, 'sweater': {'long': 1},
    'hoodie': {'long': 1}, 'jacket': {'long': 1}, 'coat': {'long': 1},
    'dress': {'none': 35, 'short': 45, 'long': 20},
}
_PATTERN_W = {
    't-shirt': {'plain': 50, 'stripes': 15, 'dots': 6, 'logo': 25},
    'tank top': {'plain': 70, 'stripes': 20, 'logo': 10},
    'shirt': {'plain': 50, 'stripes': 20, 'checks': 25, 'dots': 5},
    'sweater': {'plain': 65, 'stripes': 20, 'logo': 15},
    'hoodie': {'plain': 60, 'logo': 40},
    'jacket': {'plain': 90, 'checks': 10},
    'coat': {'plain': 90, 'checks': 10},
    'dress': {'plain': 55, 'stripes': 15, 'dots': 25, 'checks': 5},
}
#: Probability that a jacket / coat is worn open over another top.
_OPEN_P = {'jacket': 0.5, 'coat': 0.4}
_INNER_KIND_W = {'t-shirt': 50, 'shirt': 30, 'sweater': 20}
_LOWER_KIND_W = {
    'male': {'trousers': 45, 'jeans': 38, 'shorts': 17},
    'female': {'trousers': 32, 'jeans': 30, 'shorts': 13, 'skirt': 25},
}
_SHOE_KIND_W = {
    'male': {'shoes': 45, 'sneakers': 42, 'boots': 13},
    'female': {'shoes': 40, 'sneakers': 35, 'boots': 25},
}
_HAIR_STYLE_W = {
    'male': {'bald': 5, 'buzz': 15, 'short': 58, 'medium': 12, 'long': 5,
             'ponytail': 5},
    'female': {'short': 12, 'medium': 20, 'long': 40, 'ponytail': 18,
               'bun': 10},
}
_HAIR_COLOUR_W = dict(black=45, brown=30, blonde=12, grey=7, red=6)
_SKIN_W = dict(light=20, fair=25, medium=25, tan=18, dark=12)
_HEIGHT_W = dict(short=25, average=50, tall=25)
_BUILD_W = dict(slim=30, average=50, heavy=20)
_BAG_P = {'male': 0.15, 'female': 0.4}
_BAG_KIND_W = {
    'male': {'handbag': 15, 'shoulder bag': 85},
    'female': {'handbag': 55, 'shoulder bag': 45},
}
_BACKPACK_P = 0.3
_HEADWEAR_P = 0.18
_HEADWEAR_KIND_W = {'cap': 60, 'hat': 40}
_GLASSES_P = 0.2
_SUNGLASSES_SHARE = 0.35
_SCARF_P = {'coat': 0.3}
_SCARF_P_DEFAULT = 0.1
#: Hair styles still visible under a cap or hat.
_HAIR_SHOWS_UNDER_HEADWEAR = ('medium', 'long', 'ponytail')
# yapf: enable


def _choice(rng: np.random.Generator, weights: Dict[str, float]) -> str:
    names = list(weights)
    w = np.asarray([weights[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _choice_except(rng: np.random.Generator, weights: Dict[str, float],
                   exclude: Iterable[str]) -> str:
    exclude = set(exclude)
    return _choice(rng, {k: v for k, v in weights.items() if k not in exclude})


# ---------------------------------------------------------------------------
# attributes


@dataclasses.dataclass(frozen=True)
class Upper:
    """Upper-body garment.

    Attributes:
        kind (str): One of :data:`UPPER_KINDS`.
        colour (str): Main colour (a :data:`COLOURS` name).
        sleeves (str): ``'none'``, ``'short'`` or ``'long'``.
        pattern (str): One of ``plain, stripes, checks, dots, logo``.
        pattern_colour (str, optional): Colour of the stripes, checks, dots
            or logo; None when plain.
        inner_kind (str, optional): For a jacket or coat worn open, the kind
            of the top underneath (seen from the front only).
        inner_colour (str, optional): Colour of that top.
    """
    kind: str
    colour: str
    sleeves: str
    pattern: str = 'plain'
    pattern_colour: Optional[str] = None
    inner_kind: Optional[str] = None
    inner_colour: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Lower:
    """Lower-body garment: ``kind`` in :data:`LOWER_KINDS`, and ``colour``."""
    kind: str
    colour: str


@dataclasses.dataclass(frozen=True)
class Shoes:
    """Footwear: ``kind`` in :data:`SHOE_KINDS`, and ``colour``."""
    kind: str
    colour: str


@dataclasses.dataclass(frozen=True)
class Bag:
    """A hand-carried bag.

    Attributes:
        kind (str): ``'handbag'`` or ``'shoulder bag'``.
        colour (str): A :data:`COLOURS` name.
        side (str): The person's ``'left'`` or ``'right'`` side.
    """
    kind: str
    colour: str
    side: str


@dataclasses.dataclass(frozen=True)
class Headwear:
    """A ``'cap'`` or ``'hat'`` of some ``colour``."""
    kind: str
    colour: str


@dataclasses.dataclass(frozen=True)
class Identity:
    """Appearance attributes of one synthetic person.

    Attributes:
        pid (int): 1-based person id.
        gender (str): ``'male'`` or ``'female'``.
        height (str): ``'short'``, ``'average'`` or ``'tall'``.
        build (str): ``'slim'``, ``'average'`` or ``'heavy'``.
        skin (str): A :data:`SKIN_TONES` name.
        hair_style (str): One of ``bald, buzz, short, medium, long,
            ponytail, bun``.
        hair_colour (str, optional): A :data:`HAIR_COLOURS` name; None when
            bald.
        upper (Upper): Upper garment (a dress for some women).
        lower (Lower, optional): Lower garment; None under a dress.
        shoes (Shoes): Footwear.
        backpack (str, optional): Backpack colour, None without one.
        bag (Bag, optional): Handbag or shoulder bag.
        headwear (Headwear, optional): Cap or hat.
        glasses (str, optional): ``'glasses'`` or ``'sunglasses'``.
        scarf (str, optional): Scarf colour.
        rgb (dict): Rendered colour of each part (the named colour with a
            per-person shade, so two "red" shirts differ slightly); not part
            of the description.
    """
    pid: int
    gender: str
    height: str
    build: str
    skin: str
    hair_style: str
    hair_colour: Optional[str]
    upper: Upper
    lower: Optional[Lower]
    shoes: Shoes
    backpack: Optional[str] = None
    bag: Optional[Bag] = None
    headwear: Optional[Headwear] = None
    glasses: Optional[str] = None
    scarf: Optional[str] = None
    rgb: Dict[str, RGB] = dataclasses.field(
        default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict:
        """The attributes as plain JSON-able values (``rgb`` left out)."""
        d = dataclasses.asdict(self)
        d.pop('rgb')
        return d


def _shade(rng: np.random.Generator, base: RGB, amount: float = 0.1) -> RGB:
    """Jitter a named colour so that same-named garments differ slightly."""
    return jitter(rng, base, amount, offset=10)


def sample_identity(seed: int, pid: int) -> Identity:
    """Draw the attributes of person ``pid``.

    Args:
        seed (int): Dataset seed.
        pid (int): 1-based person id; the attributes depend on
            ``(seed, pid)`` only.

    Returns:
        Identity: The person's attributes.
    """
    rng = make_rng(seed, STREAM_IDENTITY, pid)
    gender = 'male' if rng.random() < 0.5 else 'female'
    height = _choice(rng, _HEIGHT_W)
    build = _choice(rng, _BUILD_W)
    skin = _choice(rng, _SKIN_W)
    hair_style = _choice(rng, _HAIR_STYLE_W[gender])
    hair_colour = None if hair_style == 'bald' else _choice(
        rng, _HAIR_COLOUR_W)

    kind = _choice(rng, _UPPER_KIND_W[gender])
    colour = _choice(rng, _UPPER_COLOUR_W)
    sleeves = _choice(rng, _SLEEVES_W[kind])
    pattern = _choice(rng, _PATTERN_W[kind])
    pattern_colour = None if pattern == 'plain' else _choice_except(
        rng, _PATTERN_COLOUR_W, [colour])
    inner_kind = inner_colour = None
    if kind in _OPEN_P and rng.random() < _OPEN_P[kind]:
        inner_kind = _choice(rng, _INNER_KIND_W)
        inner_colour = _choice_except(rng, _UPPER_COLOUR_W, [colour])
    upper = Upper(kind, colour, sleeves, pattern, pattern_colour, inner_kind,
                  inner_colour)

    lower = None
    if kind != 'dress':
        lower_kinds = _LOWER_KIND_W[gender]
        if kind == 'coat':
            # shorts would vanish under a coat; a skirt is drawn long
            lower_kinds = {
                k: v
                for k, v in lower_kinds.items() if k != 'shorts'
            }
        lower_kind = _choice(rng, lower_kinds)
        lower_colour = _choice(
            rng, _JEANS_COLOUR_W if lower_kind == 'jeans' else _LOWER_COLOUR_W)
        lower = Lower(lower_kind, lower_colour)
    shoes = Shoes(
        _choice(rng, _SHOE_KIND_W[gender]), _choice(rng, _SHOE_COLOUR_W))

    backpack = (
        _choice(rng, _ACCESSORY_COLOUR_W)
        if rng.random() < _BACKPACK_P else None)
    bag = None
    if rng.random() < _BAG_P[gender]:
        bag = Bag(
            _choice(rng, _BAG_KIND_W[gender]), _choice(rng,
                                                       _ACCESSORY_COLOUR_W),
            'left' if rng.random() < 0.5 else 'right')
    headwear = None
    if rng.random() < _HEADWEAR_P:
        headwear = Headwear(
            _choice(rng, _HEADWEAR_KIND_W), _choice(rng, _ACCESSORY_COLOUR_W))
    glasses = None
    if rng.random() < _GLASSES_P:
        glasses = ('sunglasses'
                   if rng.random() < _SUNGLASSES_SHARE else 'glasses')
    scarf = (
        _choice(rng, _ACCESSORY_COLOUR_W) if rng.random() < _SCARF_P.get(
            kind, _SCARF_P_DEFAULT) else None)

    rgb = {
        'skin': _shade(rng, SKIN_TONES[skin], 0.05),
        'hair': _shade(rng, HAIR_COLOURS[hair_colour or 'black'], 0.08),
        'upper': _shade(rng, COLOURS[colour]),
        'pattern': _shade(rng, COLOURS[pattern_colour or colour]),
        'inner': _shade(rng, COLOURS[inner_colour or colour]),
        'lower': _shade(rng, COLOURS[lower.colour if lower else colour]),
        'shoes': _shade(rng, COLOURS[shoes.colour]),
        'backpack': _shade(rng, COLOURS[backpack or 'black']),
        'bag': _shade(rng, COLOURS[bag.colour if bag else 'black']),
        'headwear': _shade(rng,
                           COLOURS[headwear.colour if headwear else 'black']),
        'scarf': _shade(rng, COLOURS[scarf or 'black']),
    }
    return Identity(pid, gender, height, build, skin, hair_style, hair_colour,
                    upper, lower, shoes, backpack, bag, headwear, glasses,
                    scarf, rgb)


def attribute_space_size() -> Dict[str, int]:
    """Count the distinct identities the sampler can produce.

    Returns:
        dict: ``total``, the number of distinct attribute combinations
        (skin tone, height and build included; the per-person colour shades
        not), and ``describable``, the same count without skin tone, height
        and build, which captions mention rarely or never.
    """
    n_col = len(COLOURS)

    def upper_count(kinds: Iterable[str]) -> int:
        total = 0
        for kind in kinds:
            patterns = sum(1 if p == 'plain' else n_col - 1
                           for p in _PATTERN_W[kind])
            opening = 1 + (
                len(_INNER_KIND_W) * (n_col - 1) if kind in _OPEN_P else 0)
            total += n_col * len(_SLEEVES_W[kind]) * patterns * opening
        return total

    def lower_count(kinds: Iterable[str]) -> int:
        return sum(
            len(_JEANS_COLOUR_W) if k == 'jeans' else len(_LOWER_COLOUR_W)
            for k in kinds)

    describable = 0
    for gender in ('male', 'female'):
        hair = sum(1 if s == 'bald' else len(_HAIR_COLOUR_W)
                   for s in _HAIR_STYLE_W[gender])
        kinds = list(_UPPER_KIND_W[gender])
        clothes = 0
        for kind in kinds:
            if kind == 'dress':
                clothes += upper_count([kind])
                continue
            # no shorts under a coat (see sample_identity)
            lowers = [
                k for k in _LOWER_KIND_W[gender]
                if not (kind == 'coat' and k == 'shorts')
            ]
            clothes += upper_count([kind]) * lower_count(lowers)
        shoes = len(_SHOE_KIND_W[gender]) * len(_SHOE_COLOUR_W)
        acc_col = len(_ACCESSORY_COLOUR_W)
        accessories = ((1 + acc_col) *  # backpack
                       (1 + len(_BAG_KIND_W[gender]) * acc_col * 2) *  # side
                       (1 + len(_HEADWEAR_KIND_W) * acc_col) *
                       (1 + len(GLASSES_KINDS)) * (1 + acc_col))  # scarf
        describable += hair * clothes * shoes * accessories
    body = len(_HEIGHT_W) * len(_BUILD_W) * len(_SKIN_W)
    return dict(total=describable * body, describable=describable)


# ---------------------------------------------------------------------------
# views


@dataclasses.dataclass(frozen=True)
class View:
    """One photograph of a person.

    Attributes:
        index (int): View index within the identity (0-based).
        direction (str): One of :data:`DIRECTIONS`.
        camera (str): One of :data:`CAMERAS`.
        stride (float): Walking stride in [0, 1] (leg spread / swing).
        phase (float): Gait phase in [-1, 1]: which leg is forward.
        arm_swing (float): Arm swing in [0, 1].
        scale (float): Person height as a fraction of the image height.
        foot_y (float): Soles' height as a fraction of the image height.
        shift_x (float): Horizontal offset of the body's centre, as a
            fraction of the image width.
        crop (tuple): ``(left, top, right, bottom)`` fractions cut from the
            rendered frame before it is resized back (detector box jitter).
    """
    index: int
    direction: str
    camera: str
    stride: float
    phase: float
    arm_swing: float
    scale: float
    foot_y: float
    shift_x: float
    crop: Tuple[float, float, float, float]

    @property
    def shoes_visible(self) -> bool:
        """False when the crop cuts the feet off."""
        # up to 1% of the image height of sole may go; the shoe is still
        # clearly visible then
        return self.foot_y <= 1.0 - self.crop[3] + 0.01

    def to_dict(self) -> dict:
        """The view as plain JSON-able values."""
        d = dataclasses.asdict(self)
        d['crop'] = list(d['crop'])
        return d


_HEIGHT_SCALE = {'short': 0.93, 'average': 0.97, 'tall': 1.0}


def _direction_cycle(seed: int, pid: int) -> Tuple[List[str], int]:
    # A per-person shuffled cycle over (front, back, side, side): three views
    # already show at least two different directions, as the real datasets'
    # multi-camera views do. Sides are resolved to left/right per view.
    rng = make_rng(seed, STREAM_VIEW, pid, 1 << 20)
    cycle = ['front', 'back', 'side', 'side']
    order = rng.permutation(len(cycle))
    return [cycle[i] for i in order], int(rng.integers(len(CAMERAS)))


def sample_view(seed: int, identity: Identity, index: int) -> View:
    """Draw the ``index``-th view of ``identity``.

    Args:
        seed (int): Dataset seed.
        identity (Identity): The person.
        index (int): 0-based view index; the view depends on
            ``(seed, pid, index)`` only.

    Returns:
        View: The view parameters.
    """
    cycle, cam0 = _direction_cycle(seed, identity.pid)
    rng = make_rng(seed, STREAM_VIEW, identity.pid, index)
    direction = cycle[index % len(cycle)]
    if direction == 'side':
        direction = 'left' if rng.random() < 0.5 else 'right'
    camera = CAMERAS[(cam0 + index) % len(CAMERAS)]
    stride = float(rng.uniform(0.15, 1.0))
    phase = float(rng.uniform(-1.0, 1.0))
    arm_swing = float(rng.uniform(0.1, 1.0))
    scale = float(rng.uniform(0.80, 0.93) * _HEIGHT_SCALE[identity.height])
    foot_y = float(rng.uniform(0.955, 0.99))
    shift_x = float(np.clip(rng.normal(0.0, 0.05), -0.12, 0.12))
    crop = (0.0, 0.0, 0.0, 0.0)
    u = rng.random()
    if u < 0.08:
        # a detector box that misses the feet
        crop = (float(rng.uniform(0, 0.05)), float(rng.uniform(0, 0.03)),
                float(rng.uniform(0, 0.05)), float(rng.uniform(0.06, 0.12)))
    elif u < 0.6:
        crop = (float(rng.uniform(0, 0.07)), float(rng.uniform(0, 0.04)),
                float(rng.uniform(0, 0.07)), float(rng.uniform(0, 0.03)))
    return View(index, direction, camera, stride, phase, arm_swing, scale,
                foot_y, shift_x, crop)


def visible_identity(identity: Identity, view: View) -> Identity:
    """What of ``identity`` can be seen in ``view``.

    Attributes that the view hides are removed (set to None, or the pattern
    to ``'plain'``): a chest logo and the top under an open jacket from
    behind, glasses from behind, shoes cut off by the crop, short hair under
    a cap. A backpack is kept in every view; from the front only its straps
    show, which captions say without naming a colour.

    Args:
        identity (Identity): The person.
        view (View): The view.

    Returns:
        Identity: A copy holding only the visible attributes.
    """
    upper = identity.upper
    changes = {}
    if view.direction != 'front':
        if upper.pattern == 'logo':
            upper = dataclasses.replace(
                upper, pattern='plain', pattern_colour=None)
        if upper.inner_kind is not None:
            upper = dataclasses.replace(
                upper, inner_kind=None, inner_colour=None)
        changes['glasses'] = (
            identity.glasses if view.direction != 'back' else None)
    changes['upper'] = upper
    if not view.shoes_visible:
        changes['shoes'] = None
    if (identity.headwear is not None
            and identity.hair_style not in _HAIR_SHOWS_UNDER_HEADWEAR):
        changes['hair_style'] = 'hidden'
        changes['hair_colour'] = None
    return dataclasses.replace(identity, **changes)
