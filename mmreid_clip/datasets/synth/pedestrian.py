"""Attribute sampling and rendering of synthetic pedestrians.

An *identity* is a set of appearance attributes (body, hair, garments,
accessories) drawn once per person id; a *view* is one photograph of that
person (walking direction, pose, framing, camera, lighting) drawn once per
image. Both come from random generators seeded by ``(seed, pid[, view])``
only, so a person looks the same whichever subset of the dataset is
generated, and an image does not change when more views are asked for.

Rendering is plain OpenCV / numpy drawing of anti-aliased polygons and
ellipses onto a procedurally textured street scene, followed by the camera
effects that make re-identification hard in practice (framing jitter,
colour casts, exposure, blur, sensor noise). Everything is deterministic for
a given seed on a given OpenCV / numpy build.

Coordinates inside the figure are fractions of the person's height ``P``:
``y = 0`` is the top of the head and ``y = 1`` the soles of the feet, ``x``
runs to the image right from the body's centre line.
"""
import dataclasses
import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = [
    'COLOURS', 'HAIR_COLOURS', 'SKIN_TONES', 'UPPER_KINDS', 'LOWER_KINDS',
    'SHOE_KINDS', 'DIRECTIONS', 'CAMERAS', 'Upper', 'Lower', 'Shoes', 'Bag',
    'Headwear', 'Identity', 'View', 'make_rng', 'sample_identity',
    'sample_view', 'visible_identity', 'render_view', 'attribute_space_size'
]

RGB = Tuple[int, int, int]

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

# Random-stream tags: independent generators for the identity, the view's
# parameters, the rendering noise and the captions, so that changing one
# (e.g. the number of captions) leaves the others untouched.
_SALT = 0x5E1D
STREAM_IDENTITY = 1
STREAM_VIEW = 2
STREAM_RENDER = 3
STREAM_CAPTION = 4


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
    gain = 1.0 + rng.uniform(-amount, amount)
    offset = rng.uniform(-10, 10, size=3)
    rgb = np.clip(np.asarray(base, np.float64) * gain + offset, 0, 255)
    return tuple(int(round(v)) for v in rgb)


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


# ---------------------------------------------------------------------------
# rendering

_SHIFT = 4  # sub-pixel bits of OpenCV's drawing calls
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA


class _Figure:
    """Draws figure-space shapes onto a uint8 RGB canvas with anti-aliasing.

    Args:
        img (np.ndarray): H x W x 3 uint8 canvas, drawn on in place.
        cx (float): Pixel x of the body's centre line.
        top (float): Pixel y of the top of the head.
        p (float): Person height in pixels.
        mirror (bool): Flip figure x (used for views facing left).
    """

    def __init__(self,
                 img: np.ndarray,
                 cx: float,
                 top: float,
                 p: float,
                 mirror: bool = False) -> None:
        self.img = img
        self.cx, self.top, self.p = cx, top, p
        self.sx = -1.0 if mirror else 1.0

    def point(self, x: float, y: float) -> Tuple[int, int]:
        """Figure coordinates -> fixed-point pixel coordinates."""
        return (int(round((self.cx + self.sx * x * self.p) * _ONE)),
                int(round((self.top + y * self.p) * _ONE)))

    def px(self, pts: Sequence[Tuple[float, float]]) -> np.ndarray:
        # plain Python: a handful of points per call, where numpy's per-call
        # overhead would dominate the rendering time
        return np.array([self.point(x, y) for x, y in pts], np.int32)

    def poly(self, pts, colour, img: Optional[np.ndarray] = None) -> None:
        cv2.fillPoly(self.img if img is None else img, [self.px(pts)], colour,
                     _AA, _SHIFT)

    def ellipse(self,
                centre,
                axes,
                colour,
                angle: float = 0.0,
                img: Optional[np.ndarray] = None,
                arc=(0, 360)) -> None:
        ax = (max(1, int(round(axes[0] * self.p * _ONE))),
              max(1, int(round(axes[1] * self.p * _ONE))))
        cv2.ellipse(self.img if img is None else img, self.point(*centre), ax,
                    self.sx * angle, arc[0], arc[1], colour, -1, _AA, _SHIFT)

    def limb(self,
             a,
             b,
             wa: float,
             wb: float,
             colour,
             img: Optional[np.ndarray] = None,
             caps: bool = True) -> None:
        """A tapered segment from ``a`` (width ``wa``) to ``b`` (``wb``)."""
        (ax, ay), (bx, by) = a, b
        dx, dy = bx - ax, by - ay
        n = math.hypot(dx, dy) or 1e-6
        nx, ny = -dy / n, dx / n
        pts = [(ax + nx * wa / 2, ay + ny * wa / 2),
               (bx + nx * wb / 2, by + ny * wb / 2),
               (bx - nx * wb / 2, by - ny * wb / 2),
               (ax - nx * wa / 2, ay - ny * wa / 2)]
        self.poly(pts, colour, img)
        if caps:
            self.ellipse(a, (wa / 2, wa / 2), colour, img=img)
            self.ellipse(b, (wb / 2, wb / 2), colour, img=img)

    def line(self,
             pts,
             width: float,
             colour,
             img: Optional[np.ndarray] = None) -> None:
        for a, b in zip(pts[:-1], pts[1:]):
            self.limb(a, b, width, width, colour, img, caps=False)


def _darker(rgb: RGB, f: float) -> RGB:
    return tuple(int(v * f) for v in rgb)


def _blend_mask(img: np.ndarray, mask: np.ndarray, colour: RGB) -> None:
    """Paint ``colour`` where the 0-255 ``mask`` is set (in place)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    m = mask[y0:y1, x0:x1, None].astype(np.float32) * (1.0 / 255.0)
    region = img[y0:y1, x0:x1].astype(np.float32)
    region += (np.asarray(colour, np.float32) - region) * m
    img[y0:y1, x0:x1] = (region + 0.5).astype(np.uint8)


def _pattern_mask(fig: _Figure, shape: Tuple[int, int], pattern: str,
                  region: Tuple[float, float, float, float],
                  rng: np.random.Generator) -> np.ndarray:
    """Stripes / checks / dots covering the figure-space box ``region``."""
    mask = np.zeros(shape, np.uint8)
    x0, y0, x1, y1 = region
    if pattern == 'stripes':
        period = rng.uniform(0.028, 0.04)
        y = y0 + rng.uniform(0, period)
        while y < y1:
            fig.line([(x0, y), (x1, y)], period * 0.42, 255, mask)
            y += period
    elif pattern == 'checks':
        period = rng.uniform(0.035, 0.05)
        y = y0 + rng.uniform(0, period)
        while y < y1:
            fig.line([(x0, y), (x1, y)], period * 0.3, 255, mask)
            y += period
        x = x0 + rng.uniform(0, period)
        while x < x1:
            fig.line([(x, y0), (x, y1)], period * 0.3, 255, mask)
            x += period
    elif pattern == 'dots':
        period = rng.uniform(0.035, 0.05)
        r = period * 0.22
        row = 0
        y = y0 + period / 2
        while y < y1:
            x = x0 + (period / 2 if row % 2 else 0)
            while x < x1:
                fig.ellipse((x, y), (r, r), 255, img=mask)
                x += period
            y += period
            row += 1
    return mask


def _limb_colour(sleeves: str, part: str, identity: Identity,
                 upper_rgb: RGB) -> RGB:
    if sleeves == 'long' or (sleeves == 'short' and part == 'top'):
        return upper_rgb
    return identity.rgb['skin']


def _draw_person(img: np.ndarray, identity: Identity, view: View,
                 rng: np.random.Generator) -> None:
    """Draw ``identity`` as seen in ``view`` onto the uncropped frame."""
    h, w = img.shape[:2]
    # keep the whole figure (arms, bags) inside the frame at tall aspect
    # ratios such as 384 x 128, where the height alone would overflow
    p = min(view.scale * h, 2.8 * w)
    foot = view.foot_y * h
    cx = w / 2 + view.shift_x * w
    d = view.direction
    side = d in ('left', 'right')
    # side views are drawn facing +x (right) and mirrored for 'left'
    fig = _Figure(img, cx, foot - p, p, mirror=(d == 'left'))
    rgb = identity.rgb
    up = identity.upper
    skin = rgb['skin']
    upper_rgb = rgb['upper']
    lower = identity.lower
    lower_rgb = rgb['lower'] if lower else skin

    bw = {'slim': 0.88, 'average': 1.0, 'heavy': 1.2}[identity.build]
    female = identity.gender == 'female'
    sw = 0.105 * bw * (0.9 if female else 1.0)  # shoulder half-width
    ww = 0.082 * bw * (0.92 if female else 1.0)  # waist half-width
    hw = 0.092 * bw * (1.04 if female else 0.94)  # hip half-width
    y_sh, y_waist, y_hip, y_knee, y_ankle = 0.165, 0.40, 0.50, 0.72, 0.945
    thigh, knee_w, ankle_w = 0.082 * bw, 0.058 * bw, 0.042 * bw
    arm_w, fore_w = 0.048 * bw, 0.038 * bw

    # --- geometry of legs and arms -------------------------------------
    stride, phase, swing = view.stride, view.phase, view.arm_swing
    if side:
        torso_hw = sw * 0.55
        legs = []
        for sgn in (1.0, -1.0):  # near leg, far leg
            theta = 0.42 * stride * phase * sgn
            hip = (0.0, y_hip)
            knee = (hip[0] + 0.225 * math.sin(theta),
                    hip[1] + 0.225 * math.cos(theta))
            # the trailing leg bends at the knee
            bend = 0.35 * stride if theta < 0 else 0.05
            ankle = (knee[0] + 0.225 * math.sin(theta - bend),
                     knee[1] + 0.225 * math.cos(theta - bend))
            legs.append((hip, knee, ankle))
        arms = []
        for sgn in (-1.0, 1.0):  # near arm swings opposite the near leg
            beta = 0.55 * swing * phase * sgn
            sh = (0.0, y_sh + 0.02)
            el = (sh[0] + 0.155 * math.sin(beta),
                  sh[1] + 0.155 * math.cos(beta))
            beta2 = beta + 0.25 + 0.3 * max(0.0, beta)
            hand = (el[0] + 0.145 * math.sin(beta2),
                    el[1] + 0.145 * math.cos(beta2))
            arms.append((sh, el, hand))
    else:
        torso_hw = sw
        spread = 0.008 + 0.03 * stride
        legs = []
        for sgn in (-1.0, 1.0):
            lift = 0.02 * stride * max(0.0, phase * sgn)
            hip = (sgn * 0.048 * bw, y_hip)
            knee = (sgn * (0.048 * bw + spread * 0.5), y_knee - lift)
            ankle = (sgn * (0.048 * bw + spread), y_ankle - 1.5 * lift)
            legs.append((hip, knee, ankle))
        arms = []
        for sgn in (-1.0, 1.0):
            out = 0.1 + 0.08 * (bw - 0.88)
            sh = (sgn * sw * 0.93, y_sh + 0.02)
            el = (sh[0] + sgn * 0.155 * math.sin(out), sh[1] + 0.155)
            # swinging forearms point at / away from the camera and look
            # shorter
            fl = 0.145 * (1.0 - 0.3 * swing * abs(phase))
            hand = (el[0] + sgn * fl * math.sin(out * 0.6), el[1] + fl)
            arms.append((sh, el, hand))
    # ground the lowest foot on the soles' line
    dy = 0.955 - max(leg[2][1] for leg in legs) - 0.01
    legs = [tuple((x, y + dy) for x, y in leg) for leg in legs]

    # --- drawing helpers ---------------------------------------------------
    def draw_leg(leg, shade: float) -> None:
        hip, knee, ankle = leg
        leg_rgb = lower_rgb
        if lower is None or lower.kind == 'skirt':
            leg_rgb = skin
        top_rgb = _darker(leg_rgb, shade)
        low_rgb = _darker(
            lower_rgb if lower is not None
            and lower.kind in ('trousers', 'jeans') else skin, shade)
        fig.limb(hip, knee, thigh, knee_w, top_rgb)
        fig.limb(knee, ankle, knee_w, ankle_w, low_rgb)
        if lower is not None and lower.kind == 'jeans':
            # a lighter seam line reads as denim
            seam = _darker(
                tuple(min(255, int(v * 1.35 + 20)) for v in lower_rgb), shade)
            fig.line([hip, knee, ankle], 0.006, seam)
        shoe = _darker(rgb['shoes'], shade)
        if identity.shoes.kind == 'boots':
            fig.limb((ankle[0], ankle[1] - 0.05), ankle, ankle_w * 1.25,
                     ankle_w * 1.25, shoe)
        if side:
            fig.ellipse((ankle[0] + 0.022, ankle[1] + 0.018), (0.042, 0.02),
                        shoe)
        else:
            fig.ellipse((ankle[0], ankle[1] + 0.02), (0.03, 0.022), shoe)
        if identity.shoes.kind == 'sneakers':
            sole = (238, 238,
                    234) if identity.shoes.colour != 'white' else (60, 60, 60)
            off = 0.022 if side else 0.0
            fig.line([(ankle[0] + off - 0.03, ankle[1] + 0.036),
                      (ankle[0] + off + 0.035, ankle[1] + 0.036)], 0.01,
                     _darker(sole, shade))

    def draw_arm(arm, shade: float) -> None:
        sh, el, hand = arm
        sleeve = _darker(upper_rgb, shade)
        if up.sleeves == 'long':
            fig.limb(sh, el, arm_w, fore_w * 1.05, sleeve)
            fig.limb(el, hand, fore_w * 1.05, fore_w, sleeve)
        else:
            fig.limb(sh, el, arm_w * 0.85, fore_w * 0.9, _darker(skin, shade))
            fig.limb(el, hand, fore_w * 0.9, fore_w * 0.8,
                     _darker(skin, shade))
            if up.sleeves == 'short':
                mid = (sh[0] + 0.55 * (el[0] - sh[0]),
                       sh[1] + 0.55 * (el[1] - sh[1]))
                fig.limb(sh, mid, arm_w * 1.05, arm_w, sleeve)
        fig.ellipse((hand[0], hand[1] + 0.01), (0.021, 0.024),
                    _darker(skin, shade))

    def torso_points(hem_y: float, hem_hw: float) -> List[Tuple[float, float]]:
        t = torso_hw
        if side:
            # chest forward (+x), back straight
            return [(-t * 0.9, y_sh - 0.01), (t * 0.6, y_sh - 0.01),
                    (t * 1.05, y_sh + 0.08), (t * 0.95, y_waist),
                    (hem_hw, hem_y), (-hem_hw, hem_y), (-t * 0.85, y_waist)]
        return [(-t * 0.78, y_sh - 0.012), (t * 0.78, y_sh - 0.012),
                (t, y_sh + 0.018), (ww, y_waist), (hem_hw, hem_y),
                (-hem_hw, hem_y), (-ww, y_waist), (-t, y_sh + 0.018)]

    def draw_upper() -> None:
        kind = up.kind
        hem_y, hem_hw = 0.53, hw * 1.02
        if kind == 'jacket':
            hem_y, hem_hw = 0.555, hw * 1.06
        elif kind == 'coat':
            hem_y, hem_hw = 0.76, hw * 1.28
        elif kind == 'dress':
            hem_y, hem_hw = 0.70, hw * 1.55
        if side:
            hem_hw = torso_hw * (1.3 if kind in ('coat', 'dress') else 0.95)
        pts = torso_points(hem_y, hem_hw)
        fig.poly(pts, upper_rgb)
        if kind == 'tank top':
            # bare shoulders either side of the straps
            t = torso_hw
            for sgn in ((1.0, ) if side else (-1.0, 1.0)):
                fig.poly([(sgn * t * 0.45, y_sh - 0.013),
                          (sgn * t * 1.01, y_sh - 0.005),
                          (sgn * t * 1.0, y_sh + 0.03)], skin)
        if up.pattern in ('stripes', 'checks', 'dots'):
            mask = np.zeros(img.shape[:2], np.uint8)
            fig.poly(pts, 255, mask)
            pat = _pattern_mask(fig, img.shape[:2], up.pattern,
                                (-0.25, y_sh - 0.02, 0.25, hem_y + 0.02), rng)
            np.minimum(mask, pat, out=mask)
            _blend_mask(img, mask, rgb['pattern'])
        if d == 'front':
            if up.inner_kind is not None:
                # the open front shows the top underneath
                gap = torso_hw * 0.32
                fig.poly([(-gap * 0.7, y_sh), (gap * 0.7, y_sh),
                          (gap, hem_y - 0.02), (-gap, hem_y - 0.02)],
                         rgb['inner'])
                fig.line([(-gap, y_sh + 0.01), (-gap, hem_y - 0.01)], 0.006,
                         _darker(upper_rgb, 0.7))
                fig.line([(gap, y_sh + 0.01), (gap, hem_y - 0.01)], 0.006,
                         _darker(upper_rgb, 0.7))
            elif kind in ('jacket', 'coat', 'shirt'):
                fig.line([(0.0, y_sh + 0.02), (0.0, hem_y - 0.01)], 0.006,
                         _darker(upper_rgb, 0.65))
            if up.pattern == 'logo':
                size = rng.uniform(0.03, 0.045)
                lc = (rng.uniform(-0.02, 0.02), rng.uniform(0.25, 0.29))
                if rng.random() < 0.5:
                    fig.ellipse(lc, (size, size * 0.8), rgb['pattern'])
                else:
                    fig.poly([(lc[0] - size, lc[1] - size * 0.6),
                              (lc[0] + size, lc[1] - size * 0.6),
                              (lc[0] + size, lc[1] + size * 0.6),
                              (lc[0] - size, lc[1] + size * 0.6)],
                             rgb['pattern'])
        if kind == 'hoodie' and d != 'front':
            hood_x = -torso_hw * 0.6 if side else 0.0
            fig.ellipse((hood_x, y_sh + 0.015), (0.05, 0.03),
                        _darker(upper_rgb, 0.85))

    def draw_lower() -> None:
        if lower is None:
            return
        l, r = legs[0][0], legs[1][0]
        top_y = 0.45 + dy * 0.5
        if lower.kind == 'skirt':
            # below the hem of a coat, so that it stays visible
            hem = (0.83 if up.kind == 'coat' else 0.67) + dy
            half = hw * (1.5 if not side else 1.0)
            fig.poly([(-hw * (0.95 if not side else 0.55), top_y),
                      (hw * (0.95 if not side else 0.65), top_y), (half, hem),
                      (-half, hem)], lower_rgb)
            return
        # pelvis block joining the two legs; seen from the side the hips
        # are as deep as the torso, not as wide as from the front
        ph = torso_hw * 0.9 if side else hw
        fig.poly([(-ph, top_y), (ph, top_y),
                  (max(l[0], r[0]) + thigh * 0.5, 0.56 + dy),
                  (min(l[0], r[0]) - thigh * 0.5, 0.56 + dy)], lower_rgb)
        if lower.kind == 'shorts':
            for i, (hip, knee, _) in enumerate(legs):
                mid = (hip[0] + 0.6 * (knee[0] - hip[0]),
                       hip[1] + 0.6 * (knee[1] - hip[1]))
                fig.limb(hip, mid, thigh * 1.12, thigh * 1.05,
                         _darker(lower_rgb, 0.85 if side and i else 1.0))

    def draw_head() -> None:
        hair = rgb['hair']
        style = identity.hair_style
        covered = identity.headwear is not None
        hy = 0.07
        # hair hanging behind the head and shoulders
        if style in ('long', 'medium'):
            end = 0.27 if style == 'long' else 0.18
            if side:
                fig.poly([(-0.052, 0.04), (0.0, 0.03), (-0.01, end),
                          (-0.075, end - 0.01)], hair)
            elif d == 'front':
                fig.poly([(-0.06, 0.05), (0.06, 0.05), (0.066, end),
                          (-0.066, end)], hair)
        fig.limb((0.0, 0.115), (0.0, y_sh + 0.01),
                 0.038,
                 0.042,
                 _darker(skin, 0.9),
                 caps=False)
        if identity.scarf is not None:
            sc = rgb['scarf']
            fig.ellipse((0.0, y_sh - 0.005),
                        (0.05 if not side else 0.035, 0.02), sc)
            if d == 'front':
                fig.limb((0.018, y_sh), (0.025, y_sh + 0.11), 0.028, 0.03, sc)
            elif side:
                fig.limb((0.01, y_sh), (0.03, y_sh + 0.1), 0.024, 0.026, sc)
        head_c = (0.008 if side else 0.0, hy)
        axes = (0.046 * (1 + (bw - 1) * 0.3), 0.066)
        fig.ellipse(head_c, axes, skin)
        if side:
            fig.ellipse((0.052, hy + 0.008), (0.008, 0.01), skin)  # nose
        if style not in ('bald', 'hidden'):
            if d == 'back':
                fig.ellipse((0.0, hy - 0.004), (axes[0] * 1.07, axes[1]), hair)
            elif side:
                fig.ellipse((-0.006, hy - 0.012),
                            (axes[0] * 1.02, axes[1] * 0.86), hair)
                fig.ellipse((0.018, hy + 0.012),
                            (axes[0] * 0.78, axes[1] * 0.8), skin)
                fig.ellipse((0.052, hy + 0.008), (0.008, 0.01), skin)
            else:
                # hair line on the forehead, plus hair at the temples
                line_y = hy - (0.036 if style == 'buzz' else 0.024)
                fig.ellipse((0.0, line_y),
                            (axes[0] * 1.06, line_y - hy + axes[1] + 0.004),
                            hair,
                            arc=(180, 360))
                if style != 'buzz':
                    for sgn in (-1.0, 1.0):
                        fig.ellipse((sgn * axes[0] * 0.9, hy - 0.012),
                                    (0.012, 0.03), hair)
            if style in ('long', 'medium') and d == 'back':
                end = 0.27 if style == 'long' else 0.18
                fig.poly([(-0.05, 0.07), (0.05, 0.07), (0.064, end),
                          (-0.064, end)], hair)
            if style == 'ponytail' and d != 'front':
                px = -0.045 if side else 0.0
                fig.limb((px, hy + 0.01),
                         (px - (0.02 if side else 0.0), hy + 0.13), 0.03,
                         0.018, hair)
            if style == 'bun' and not covered:
                bx = -0.04 if side else 0.0
                fig.ellipse((bx, hy - 0.062), (0.026, 0.022), hair)
        elif style == 'bald' and d == 'back':
            fig.ellipse((0.0, hy + 0.01), (axes[0] * 0.6, axes[1] * 0.4),
                        _darker(skin, 0.92))
        if identity.glasses is not None and d != 'back':
            frame = (20, 20, 22)
            lens = frame if identity.glasses == 'sunglasses' else _darker(
                skin, 0.8)
            ey = hy + 0.002
            if side:
                fig.line([(-0.01, ey), (0.048, ey)], 0.007, frame)
                fig.ellipse((0.038, ey + 0.003), (0.011, 0.009), lens)
            else:
                fig.line([(-0.045, ey), (0.045, ey)], 0.007, frame)
                for sgn in (-1.0, 1.0):
                    fig.ellipse((sgn * 0.02, ey + 0.003), (0.015, 0.01), frame)
                    fig.ellipse((sgn * 0.02, ey + 0.003), (0.01, 0.006), lens)
        if identity.headwear is not None:
            hc = rgb['headwear']
            if identity.headwear.kind == 'cap':
                fig.ellipse((0.0, hy - 0.02), (axes[0] * 1.08, 0.048),
                            hc,
                            arc=(180, 360))
                if side:
                    fig.poly([(0.02, hy - 0.025), (0.085, hy - 0.02),
                              (0.08, hy - 0.01), (0.02, hy - 0.012)],
                             _darker(hc, 0.8))
                else:
                    fig.ellipse((0.0, hy - 0.018), (axes[0] * 1.1, 0.012),
                                _darker(hc, 0.8))
            else:
                fig.ellipse((0.0, hy - 0.02), (0.085, 0.014),
                            _darker(hc, 0.85))
                fig.ellipse((0.0, hy - 0.04), (axes[0] * 0.95, 0.04),
                            hc,
                            arc=(180, 360))
                fig.poly([(-axes[0] * 0.95, hy - 0.04),
                          (axes[0] * 0.95, hy - 0.04),
                          (axes[0] * 0.95, hy - 0.022),
                          (-axes[0] * 0.95, hy - 0.022)], hc)

    def draw_backpack() -> None:
        if identity.backpack is None:
            return
        bp = rgb['backpack']
        if d == 'back':
            bwid = 0.085 * bw
            fig.poly([(-bwid, 0.19), (bwid, 0.19), (bwid * 1.02, 0.44),
                      (-bwid * 1.02, 0.44)], bp)
            fig.ellipse((0.0, 0.19), (bwid, 0.025), bp)
            fig.poly([(-bwid * 0.7, 0.34), (bwid * 0.7, 0.34),
                      (bwid * 0.7, 0.42), (-bwid * 0.7, 0.42)],
                     _darker(bp, 0.75))
        elif side:
            x0 = -torso_hw * 0.85
            fig.poly([(x0 + 0.01, 0.19), (x0 - 0.075, 0.2), (x0 - 0.08, 0.43),
                      (x0 + 0.01, 0.44)], bp)
            fig.line([(x0 + 0.01, 0.2), (torso_hw * 0.5, 0.19),
                      (torso_hw * 0.7, 0.33)], 0.016, _darker(bp, 0.8))
        else:
            for sgn in (-1.0, 1.0):
                fig.line([(sgn * sw * 0.55, y_sh - 0.008),
                          (sgn * sw * 0.6, 0.36)], 0.02, _darker(bp, 0.9))

    def bag_anchor():
        # the person's left is the image right when facing the camera
        bag = identity.bag
        if side:
            near = (bag.side == 'right') == (d == 'right')
            return near, arms[1 if near else 0][2]
        sgn = 1.0 if (bag.side == 'left') == (d == 'front') else -1.0
        return True, arms[1 if sgn > 0 else 0][2]

    def draw_bag(near_pass: bool) -> None:
        bag = identity.bag
        if bag is None:
            return
        near, hand = bag_anchor()
        if near != near_pass:
            return
        bc = rgb['bag']
        if bag.kind == 'handbag':
            x, y = hand[0], hand[1] + 0.055
            fig.line([(x - 0.02, y - 0.02), (x, hand[1] + 0.01),
                      (x + 0.02, y - 0.02)], 0.007, _darker(bc, 0.7))
            fig.poly([(x - 0.04, y - 0.02), (x + 0.04, y - 0.02),
                      (x + 0.045, y + 0.045), (x - 0.045, y + 0.045)], bc)
        else:
            sgn = 1.0 if hand[0] >= 0 else -1.0
            if side:
                sgn = -1.0 if not near else 0.3
            bx, by = sgn * (torso_hw + 0.035), 0.47
            strap_from = (-sgn * sw * 0.5, y_sh) if not side else (0.0, y_sh)
            fig.line([strap_from, (bx, by - 0.03)], 0.01, _darker(bc, 0.75))
            fig.poly([(bx - 0.045, by - 0.035), (bx + 0.045, by - 0.035),
                      (bx + 0.045, by + 0.04), (bx - 0.045, by + 0.04)], bc)

    # --- compose in depth order ----------------------------------------------
    if side:
        draw_arm(arms[1], 0.8)  # far arm
        draw_bag(False)
        draw_leg(legs[1], 0.82)  # far leg
        draw_leg(legs[0], 1.0)
        draw_lower()
        draw_upper()
        draw_backpack()
        draw_arm(arms[0], 1.0)
        draw_bag(True)
        draw_head()
    else:
        if d == 'front' and identity.backpack is not None:
            # the pack's sides peek out behind the shoulders
            fig.poly([(-sw * 0.95, 0.2), (sw * 0.95, 0.2), (sw, 0.42),
                      (-sw, 0.42)], _darker(rgb['backpack'], 0.8))
        for leg in legs:
            draw_leg(leg, 1.0)
        draw_lower()
        draw_upper()
        for arm in arms:
            draw_arm(arm, 1.0)
        if d == 'back':
            draw_head()
            draw_backpack()
            draw_bag(True)
        else:
            draw_backpack()
            draw_bag(True)
            draw_head()


def _low_freq_noise(rng: np.random.Generator,
                    h: int,
                    w: int,
                    cells: Tuple[int, int],
                    channels: int = 1) -> np.ndarray:
    small = rng.random((cells[0], cells[1], channels)).astype(np.float32)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels)


#: Scenery preferences per camera: (wall styles, ground styles, warm/cool
#: colour cast). Camera a looks like an indoor hall, b a street, c a park.
_CAMERA_SCENES = {
    'a': (('plain', 'tiles', 'panels'), ('tiles', 'plain'), (1.06, 1.0, 0.9)),
    'b':
    (('facade', 'bricks', 'shops'), ('asphalt', 'tiles'), (0.96, 1.0, 1.06)),
    'c':
    (('foliage', 'plain', 'facade'), ('grass', 'asphalt'), (1.0, 1.04, 0.95)),
}


def _random_colour(rng: np.random.Generator,
                   lo: int = 40,
                   hi: int = 220) -> np.ndarray:
    base = rng.uniform(lo, hi)
    tint = rng.normal(0, 25, size=3)
    return np.clip(base + tint, 0, 255).astype(np.float32)


def _background(rng: np.random.Generator, h: int, w: int, camera: str,
                foot_y: float) -> np.ndarray:
    """A street scene: textured wall, ground plane, clutter. float32 RGB."""
    walls, grounds, _ = _CAMERA_SCENES[camera]
    # mostly the camera's own scenery, sometimes anything
    if rng.random() < 0.8:
        wall_style = walls[int(rng.integers(len(walls)))]
        ground_style = grounds[int(rng.integers(len(grounds)))]
    else:
        wall_style = ('plain', 'tiles', 'panels', 'facade', 'bricks', 'shops',
                      'foliage')[int(rng.integers(7))]
        ground_style = ('tiles', 'plain', 'asphalt',
                        'grass')[int(rng.integers(4))]
    yy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    xx = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    c1, c2 = _random_colour(rng), _random_colour(rng)
    img = c1 + (c2 - c1) * yy * np.ones((1, w, 1), np.float32)
    scale = h / 128.0

    if wall_style == 'tiles':
        period = rng.uniform(10, 22) * scale
        line = ((np.mod(yy * h, period) < 1.2 * scale) | (np.mod(
            xx * w + rng.uniform(0, period), period) < 1.2 * scale))
        img = np.where(line, img * 0.8, img)
    elif wall_style == 'panels':
        period = rng.uniform(14, 30) * scale
        band = np.mod(xx * w + rng.uniform(0, period), period) < period / 2
        img = np.where(band, img * rng.uniform(0.8, 0.95), img)
    elif wall_style == 'facade':
        pw, ph = rng.uniform(12, 24) * scale, rng.uniform(14, 26) * scale
        win_c = _random_colour(rng, 20, 120)
        wx = np.mod(xx * w + rng.uniform(0, pw), pw) < pw * 0.55
        wy = np.mod(yy * h + rng.uniform(0, ph), ph) < ph * 0.6
        img = np.where(wx & wy, win_c + 0 * img, img)
    elif wall_style == 'bricks':
        bh, bwid = rng.uniform(4, 7) * scale, rng.uniform(10, 16) * scale
        row = np.floor(yy * h / bh)
        offs = np.mod(row, 2) * bwid / 2
        mortar = ((np.mod(yy * h, bh) < 1.0 * scale) |
                  (np.mod(xx * w + offs, bwid) < 1.0 * scale))
        img = np.where(mortar, img * 0.7 + 60, img)
    elif wall_style == 'shops':
        edges = np.sort(rng.uniform(0, 1, size=3))
        for e in edges:
            colour = _random_colour(rng, 30, 230)
            img = np.where(xx > e, colour * 0.6 + img * 0.4, img)
    elif wall_style == 'foliage':
        green = np.asarray(
            [rng.uniform(40, 90),
             rng.uniform(90, 150),
             rng.uniform(40, 80)], np.float32)
        blobs = _low_freq_noise(rng, h, w, (6, 4))
        img = img * 0.35 + green * (0.5 + blobs)
    # wall texture noise
    img += _low_freq_noise(rng, h, w, (12, 6)) * 30 - 15

    # ground plane from a horizon somewhat above the feet
    horizon = int(h * min(foot_y - 0.1, rng.uniform(0.55, 0.85)))
    g = h - horizon
    if g > 0:
        gy = np.linspace(0.0, 1.0, g, dtype=np.float32)[:, None, None]
        if ground_style == 'grass':
            gc = np.asarray([
                rng.uniform(50, 100),
                rng.uniform(110, 160),
                rng.uniform(40, 80)
            ], np.float32)
        elif ground_style == 'asphalt':
            gc = np.full(3, rng.uniform(60, 120), np.float32)
        else:
            gc = _random_colour(rng, 90, 210)
        ground = gc * (0.85 + 0.3 * gy) * np.ones((1, w, 1), np.float32)
        if ground_style == 'tiles':
            # perspective: tile rows get taller towards the camera
            rows = np.mod(np.sqrt(gy[:, :, 0]) * rng.uniform(5, 9), 1.0)
            cols = np.mod((xx[:, :, 0] - 0.5) / (0.3 + gy[:, :, 0]) * 3 +
                          rng.uniform(0, 1), 1.0)
            grid = (rows < 0.08) | (cols < 0.06)
            ground = np.where(grid[:, :, None], ground * 0.78, ground)
        ground += _low_freq_noise(rng, g, w, (8, 4)) * 24 - 12
        img[horizon:] = ground
        # kerb line
        img[horizon:horizon + max(1, int(scale))] *= 0.7

    # clutter: poles and signs that a detector box would include
    for _ in range(int(rng.integers(0, 3))):
        x0 = int(rng.uniform(0, w))
        width = max(1, int(rng.uniform(1, 5) * scale))
        colour = _random_colour(rng, 20, 200)
        y1 = horizon + int(rng.uniform(0, max(1, g)))
        img[:y1, x0:x0 + width] = colour
    return img


def _post_process(img: np.ndarray, view: View, rng: np.random.Generator,
                  out_hw: Tuple[int, int]) -> np.ndarray:
    """Crop, camera colour cast, exposure, blur and noise; uint8 out."""
    h, w = img.shape[:2]
    left, top, right, bottom = view.crop
    if any(view.crop):
        x0, y0 = int(round(left * w)), int(round(top * h))
        x1, y1 = w - int(round(right * w)), h - int(round(bottom * h))
        img = cv2.resize(
            img[y0:y1, x0:x1], (out_hw[1], out_hw[0]),
            interpolation=cv2.INTER_LINEAR)
    x = img.astype(np.float32) * (1.0 / 255.0)
    cast = np.asarray(_CAMERA_SCENES[view.camera][2], np.float32)
    gains = cast * rng.uniform(0.93, 1.07, size=3).astype(np.float32)
    gamma = rng.uniform(0.8, 1.25)
    contrast = rng.uniform(0.7, 1.15)
    brightness = rng.uniform(0.65, 1.2)
    x = np.power(x, gamma) * gains
    x = (x - 0.5) * contrast + 0.5
    # uneven light across the frame (sun from one side, lamps)
    hh, ww = out_hw
    gx = np.linspace(-1.0, 1.0, ww, dtype=np.float32)[None, :, None]
    gy = np.linspace(-1.0, 1.0, hh, dtype=np.float32)[:, None, None]
    light = 1.0 + rng.uniform(-0.18, 0.18) * gx + rng.uniform(-0.12, 0.12) * gy
    x = x * (brightness * light)
    if rng.random() < 0.45:
        sigma = rng.uniform(0.3, 1.0) * hh / 128.0
        x = cv2.GaussianBlur(x, (0, 0), sigma)
    sigma_n = rng.uniform(0.0, 0.03)
    if sigma_n > 0.005:
        x = x + rng.standard_normal(x.shape, dtype=np.float32) * sigma_n
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def render_view(identity: Identity, view: View, img_size: Tuple[int, int],
                seed: int) -> np.ndarray:
    """Render one image of ``identity`` seen in ``view``.

    Args:
        identity (Identity): The person.
        view (View): The view.
        img_size (tuple[int, int]): Output ``(height, width)``.
        seed (int): Dataset seed (the background, texture and noise are
            drawn from ``(seed, pid, view index)``).

    Returns:
        np.ndarray: ``H x W x 3`` uint8 RGB image.
    """
    h, w = int(img_size[0]), int(img_size[1])
    if h < 32 or w < 16:
        raise ValueError(f'img_size must be at least (32, 16), got {img_size}')
    rng = make_rng(seed, STREAM_RENDER, identity.pid, view.index)
    bg = _background(rng, h, w, view.camera, view.foot_y)
    img = np.clip(bg + 0.5, 0, 255).astype(np.uint8)
    # contact shadow under the feet
    shadow = np.zeros((h, w), np.uint8)
    p = min(view.scale * h, 2.8 * w)
    cv2.ellipse(shadow, (int(
        (w / 2 + view.shift_x * w) * _ONE), int(view.foot_y * h * _ONE)),
                (int(0.13 * p * _ONE), int(0.022 * p * _ONE)), 0, 0, 360, 110,
                -1, _AA, _SHIFT)
    img = (img.astype(np.float32) * (1.0 - shadow[:, :, None] *
                                     (1.0 / 255.0))).astype(np.uint8)
    _draw_person(img, identity, view, rng)
    return _post_process(img, view, rng, (h, w))
