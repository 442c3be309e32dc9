"""SynthPedes v2 people: families of near-duplicate identities.

Every identity belongs to a *family* of 2-6 people who share their whole
global appearance (gender, height, build, skin, hair colour, the upper and
lower garments with their exact rendered shades, a backpack) and the same
distribution of views, and who differ only in a few *local details*
(:data:`DETAIL_SLOTS`): the bag, the shoes, the headwear, a mark on the top
(a chest logo or a band across the chest), the eyewear, a scarf, a watch,
the hair style. Each family draws 2-3 *varying* slots; in each of them the
members take pairwise different values (at most one member has none), so
any two members differ in every varying slot and a matcher that reads the
outfit colours only cannot tell them apart. The other slots are shared by
the family, like the garments.

The attributes live in a v1 :class:`~.pedestrian.Identity` (``base``), so
v1's part-drawing functions and caption phrases serve v2 unchanged; v2 adds
the band and the watch (:class:`Person`). The v1 sampler is not called:
v2 draws from its own streams (``PEDES2_*`` in :mod:`.seeding`), so v1's
output is untouched.

Reproducibility: the family layout of a split depends on ``(seed, first
pid, number of ids)``, a family on ``(seed, its first pid, its size)``, a
view on ``(seed, pid, view index)``.
"""
import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .pedestrian import (
    _ACCESSORY_COLOUR_W, _BACKPACK_P, _BAG_KIND_W, _BAG_P, _BUILD_W,
    _GLASSES_P, _HAIR_COLOUR_W, _HAIR_STYLE_W, _HEADWEAR_KIND_W, _HEADWEAR_P,
    _HEIGHT_SCALE, _HEIGHT_W, _INNER_KIND_W, _JEANS_COLOUR_W, _LOWER_COLOUR_W,
    _LOWER_KIND_W, _OPEN_P, _PATTERN_COLOUR_W, _PATTERN_W, _SCARF_P,
    _SCARF_P_DEFAULT, _SHOE_COLOUR_W, _SHOE_KIND_W, _SKIN_W, _SLEEVES_W,
    _SUNGLASSES_SHARE, _UPPER_COLOUR_W, _UPPER_KIND_W, CAMERAS, COLOURS,
    HAIR_COLOURS, SKIN_TONES, Bag, Headwear, Identity, Lower, Shoes, Upper,
    View, _choice, _choice_except, _shade, visible_identity)
from .seeding import (PEDES2_STREAM_DETAILS, PEDES2_STREAM_FAMILY,
                      PEDES2_STREAM_LAYOUT, PEDES2_STREAM_VIEW, make_rng)

__all__ = [
    'DETAIL_SLOTS', 'GLOBAL_KEYS', 'DETAIL_COLOURS', 'FAMILY_SIZE_W', 'Person',
    'family_layout', 'sample_family', 'sample_view_v2', 'person_details',
    'visible_details', 'image_facts', 'swap_detail', 'watch_visible',
    'band_visible'
]

#: The local details that may differ within a family.
DETAIL_SLOTS = ('bag', 'shoes', 'headwear', 'mark', 'eyewear', 'scarf',
                'watch', 'hair')
#: What a "global appearance" matcher reads (:func:`image_facts`).
GLOBAL_KEYS = ('gender', 'upper', 'lower', 'hair_colour')
#: Colours of varying details: the well-separated garment colours (no
#: navy / blue, maroon / red, olive / green, beige / white pairs), so that
#: two members' details differ visibly, not by a shade.
DETAIL_COLOURS = ('black', 'white', 'red', 'yellow', 'green', 'blue', 'pink',
                  'orange', 'brown', 'purple', 'grey')
#: Family sizes (the last family of a split takes the remainder).
FAMILY_SIZE_W = {2: 15, 3: 30, 4: 35, 5: 20}
#: How likely each slot is to vary in a family (when eligible).
_SLOT_W = dict(
    bag=3.0,
    shoes=3.0,
    headwear=2.5,
    mark=2.5,
    eyewear=1.5,
    scarf=1.5,
    watch=1.5,
    hair=1.5)
#: Slots seen in (nearly) every view: each family varies at least two of
#: them (one for a family of two), so that every caption names a difference
#: whatever the view.
_ROBUST_SLOTS = ('bag', 'shoes', 'headwear', 'scarf', 'hair')
#: Probability that one member of a family lacks a varying optional detail.
_NONE_P = 0.35
_OPTIONAL_SLOTS = ('bag', 'headwear', 'mark', 'eyewear', 'scarf', 'watch')
_WATCH_P = 0.12
_EYEWEAR = (None, 'glasses', 'sunglasses')


@dataclasses.dataclass(frozen=True)
class Person:
    """One SynthPedes v2 identity.

    Attributes:
        pid (int): 1-based person id.
        family (int): The family's id (its first pid).
        member (int): Index within the family.
        varying (tuple[str, ...]): The family's varying slots.
        base (Identity): The v1 attribute record (garments, bag, shoes,
            headwear, glasses, scarf, hair; a chest logo is
            ``base.upper.pattern == 'logo'``).
        band (str, optional): Colour of a band across the chest.
        watch (str, optional): Colour of a watch on the left wrist.
        rgb (dict): Rendered colours of the band and the watch.
    """
    pid: int
    family: int
    member: int
    varying: Tuple[str, ...]
    base: Identity
    band: Optional[str] = None
    watch: Optional[str] = None
    rgb: Dict[str, tuple] = dataclasses.field(
        default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict:
        """JSON-able attributes (rendered shades left out)."""
        return dict(
            pid=self.pid,
            family=self.family,
            member=self.member,
            varying=list(self.varying),
            attributes=self.base.to_dict(),
            band=self.band,
            watch=self.watch,
            details=_jsonable(person_details(self)))


def _jsonable(d: Dict[str, Any]) -> Dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


# ---------------------------------------------------------------------------
# family layout


def family_layout(seed: int, first_pid: int, num_ids: int) -> List[range]:
    """Split the ids ``first_pid .. first_pid + num_ids - 1`` into families.

    Sizes follow :data:`FAMILY_SIZE_W`; the last family takes what is left
    (a lone last id joins the family before it).

    Returns:
        list[range]: Consecutive pid ranges covering the ids.
    """
    rng = make_rng(seed, PEDES2_STREAM_LAYOUT, first_pid, num_ids)
    sizes = np.asarray(list(FAMILY_SIZE_W), np.int64)
    w = np.asarray(list(FAMILY_SIZE_W.values()), np.float64)
    out, start, end = [], first_pid, first_pid + num_ids
    while start < end:
        n = int(sizes[rng.choice(len(sizes), p=w / w.sum())])
        n = min(n, end - start)
        if end - (start + n) == 1:
            n += 1  # no family of one at the end
        out.append(range(start, start + n))
        start += n
    return out


# ---------------------------------------------------------------------------
# the family's shared appearance


def _sample_base(rng: np.random.Generator, pid: int) -> Identity:
    """The family's global appearance and shared details (v1's
    distributions, from a v2 stream)."""
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
        kinds = _LOWER_KIND_W[gender]
        if kind == 'coat':
            kinds = {k: v for k, v in kinds.items() if k != 'shorts'}
        lower_kind = _choice(rng, kinds)
        lower = Lower(
            lower_kind,
            _choice(
                rng,
                _JEANS_COLOUR_W if lower_kind == 'jeans' else _LOWER_COLOUR_W))
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


#: Hair styles a family varies: any two differ in every view (v1 draws a
#: ponytail like short hair from the front, so it is left out).
_VARY_HAIR = {
    'male': ('bald', 'short', 'long', 'bun'),
    'female': ('short', 'medium', 'long', 'bun')
}


def _hair_styles(base: Identity) -> List[str]:
    return list(_VARY_HAIR[base.gender])


def _eligible(slot: str, base: Identity, size: int,
              chosen: Sequence[str]) -> bool:
    if slot == 'mark':
        # a logo or band on a plain top only
        return base.upper.pattern in ('plain', 'logo')
    if slot == 'eyewear':
        return size <= len(_EYEWEAR)
    if slot == 'hair':
        # hair that a cap could hide is no detail to vary
        return ('headwear' not in chosen and size <= len(_hair_styles(base)))
    if slot == 'headwear':
        return 'hair' not in chosen
    return True


def _choose_slots(rng: np.random.Generator, base: Identity,
                  size: int) -> Tuple[str, ...]:
    k = 2 if size <= 2 else 3
    need_robust = 1 if size <= 2 else 2
    for _ in range(100):
        chosen: List[str] = []
        while len(chosen) < k:
            names = [
                s for s in DETAIL_SLOTS
                if s not in chosen and _eligible(s, base, size, chosen)
            ]
            w = np.asarray([_SLOT_W[s] for s in names])
            chosen.append(names[int(rng.choice(len(names), p=w / w.sum()))])
        if sum(s in _ROBUST_SLOTS for s in chosen) >= need_robust:
            return tuple(s for s in DETAIL_SLOTS if s in chosen)
    raise RuntimeError('no valid set of varying slots')  # pragma: no cover


def _distinct_colours(rng: np.random.Generator, n: int,
                      avoid: Sequence[str]) -> List[str]:
    pool = [c for c in DETAIL_COLOURS if c not in set(avoid)]
    idx = rng.choice(len(pool), size=n, replace=False)
    return [pool[int(i)] for i in idx]


def _slot_values(rng: np.random.Generator, slot: str, base: Identity,
                 size: int) -> List[Any]:
    """One value per member, pairwise different (None at most once)."""
    gender = base.gender
    none_at = -1
    if slot in _OPTIONAL_SLOTS and slot != 'eyewear' and (rng.random()
                                                          < _NONE_P):
        none_at = int(rng.integers(size))
    garment = [base.upper.colour] + ([base.lower.colour] if base.lower else [])
    if slot == 'eyewear':
        order = rng.permutation(len(_EYEWEAR))[:size]
        return [_EYEWEAR[int(i)] for i in order]
    if slot == 'hair':
        styles = _hair_styles(base)
        order = rng.permutation(len(styles))[:size]
        return [styles[int(i)] for i in order]
    avoid: List[str] = []
    if slot in ('bag', 'mark', 'scarf'):
        avoid = garment[:1] if slot != 'bag' else garment
    elif slot == 'shoes':
        avoid = garment[1:]
    colours = _distinct_colours(rng, size, avoid)
    values: List[Any] = []
    for m in range(size):
        c = colours[m]
        if m == none_at:
            values.append(None)
        elif slot == 'bag':
            values.append((_choice(rng, _BAG_KIND_W[gender]), c))
        elif slot == 'shoes':
            values.append((_choice(rng, _SHOE_KIND_W[gender]), c))
        elif slot == 'headwear':
            values.append((_choice(rng, _HEADWEAR_KIND_W), c))
        elif slot == 'mark':
            values.append(('logo' if rng.random() < 0.5 else 'band', c))
        else:  # scarf, watch
            values.append(c)
    return values


def _apply(base: Identity, rng: np.random.Generator, slot: str, value: Any,
           extra: Dict[str, Any]) -> Identity:
    """Set one varying slot of a member (new shades for new colours)."""
    rgb = dict(base.rgb)
    if slot == 'bag':
        bag = None
        if value is not None:
            side = base.bag.side if base.bag else (
                'left' if rng.random() < 0.5 else 'right')
            bag = Bag(value[0], value[1], side)
            rgb['bag'] = _shade(rng, COLOURS[value[1]])
        return dataclasses.replace(base, bag=bag, rgb=rgb)
    if slot == 'shoes':
        rgb['shoes'] = _shade(rng, COLOURS[value[1]])
        return dataclasses.replace(base, shoes=Shoes(*value), rgb=rgb)
    if slot == 'headwear':
        hw = None
        if value is not None:
            hw = Headwear(*value)
            rgb['headwear'] = _shade(rng, COLOURS[value[1]])
        return dataclasses.replace(base, headwear=hw, rgb=rgb)
    if slot == 'mark':
        up = dataclasses.replace(
            base.upper, pattern='plain', pattern_colour=None)
        if value is not None and value[0] == 'logo':
            up = dataclasses.replace(
                up, pattern='logo', pattern_colour=value[1])
            rgb['pattern'] = _shade(rng, COLOURS[value[1]])
        elif value is not None:
            extra['band'] = value[1]
            extra['band_rgb'] = _shade(rng, COLOURS[value[1]])
        return dataclasses.replace(base, upper=up, rgb=rgb)
    if slot == 'eyewear':
        return dataclasses.replace(base, glasses=value)
    if slot == 'scarf':
        if value is not None:
            rgb['scarf'] = _shade(rng, COLOURS[value])
        return dataclasses.replace(base, scarf=value, rgb=rgb)
    if slot == 'watch':
        extra['watch'] = value
        if value is not None:
            extra['watch_rgb'] = _shade(rng, COLOURS[value])
        return base
    # hair: the style only (the colour is the family's)
    colour = base.hair_colour
    if value == 'bald':
        colour = None
    elif colour is None:
        colour = 'black'
    return dataclasses.replace(base, hair_style=value, hair_colour=colour)


def sample_family(seed: int, pids: range) -> List[Person]:
    """Draw a family: the shared appearance, the varying slots and each
    member's values.

    Args:
        seed (int): Dataset seed.
        pids (range): The members' ids (from :func:`family_layout`).

    Returns:
        list[Person]: One person per pid.
    """
    first, size = pids[0], len(pids)
    rng = make_rng(seed, PEDES2_STREAM_FAMILY, first, size)
    base = _sample_base(rng, first)
    # the family's shared watch (when the watch does not vary)
    shared_watch = (
        _choice(rng, _ACCESSORY_COLOUR_W) if rng.random() < _WATCH_P else None)
    watch_rgb = _shade(rng, COLOURS[shared_watch or 'black'])
    drng = make_rng(seed, PEDES2_STREAM_DETAILS, first, size)
    varying = _choose_slots(drng, base, size) if size > 1 else ()
    if 'hair' in varying:
        # no shared cap over the hair styles that tell the members apart
        base = dataclasses.replace(base, headwear=None)
    values = {s: _slot_values(drng, s, base, size) for s in varying}
    people = []
    for m, pid in enumerate(pids):
        ident = dataclasses.replace(base, pid=pid)
        extra: Dict[str, Any] = dict(
            band=None, watch=shared_watch, watch_rgb=watch_rgb)
        for slot in varying:
            ident = _apply(ident, drng, slot, values[slot][m], extra)
        rgb = dict(
            band=extra.get('band_rgb', (0, 0, 0)),
            watch=extra.get('watch_rgb', (0, 0, 0)))
        people.append(
            Person(pid, first, m, varying, ident, extra['band'],
                   extra['watch'], rgb))
    return people


# ---------------------------------------------------------------------------
# views


def _direction_cycle(seed: int, pid: int) -> Tuple[List[str], int]:
    rng = make_rng(seed, PEDES2_STREAM_VIEW, pid, 1 << 20)
    cycle = ['front', 'back', 'side', 'side']
    order = rng.permutation(len(cycle))
    return [cycle[i] for i in order], int(rng.integers(len(CAMERAS)))


def sample_view_v2(seed: int, person: Person, index: int) -> View:
    """The ``index``-th view of ``person`` (v1's view distribution, from a
    v2 stream: every member of a family is posed alike)."""
    base = person.base
    cycle, cam0 = _direction_cycle(seed, person.pid)
    rng = make_rng(seed, PEDES2_STREAM_VIEW, person.pid, index)
    direction = cycle[index % len(cycle)]
    if direction == 'side':
        direction = 'left' if rng.random() < 0.5 else 'right'
    camera = CAMERAS[(cam0 + index) % len(CAMERAS)]
    stride = float(rng.uniform(0.15, 1.0))
    phase = float(rng.uniform(-1.0, 1.0))
    arm_swing = float(rng.uniform(0.1, 1.0))
    scale = float(rng.uniform(0.80, 0.93) * _HEIGHT_SCALE[base.height])
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


# ---------------------------------------------------------------------------
# what a person has, and what an image shows


def person_details(person: Person) -> Dict[str, Any]:
    """Canonical value of every detail slot (None: absent).

    ``bag``, ``shoes``, ``headwear``: ``(kind, colour)``; ``mark``:
    ``('logo' | 'band', colour)``; ``eyewear``: ``'glasses'`` /
    ``'sunglasses'``; ``scarf``, ``watch``: a colour; ``hair``: the style.
    """
    b = person.base
    mark = None
    if b.upper.pattern == 'logo':
        mark = ('logo', b.upper.pattern_colour)
    elif person.band is not None:
        mark = ('band', person.band)
    return dict(
        bag=(b.bag.kind, b.bag.colour) if b.bag else None,
        shoes=(b.shoes.kind, b.shoes.colour),
        headwear=(b.headwear.kind, b.headwear.colour) if b.headwear else None,
        mark=mark,
        eyewear=b.glasses,
        scarf=b.scarf,
        watch=person.watch,
        hair=b.hair_style)


def watch_visible(view: View) -> bool:
    """The watch is on the left wrist: hidden behind the body when the
    person faces the image right (the camera sees their right side)."""
    return view.direction != 'right'


def band_visible(person: Person, view: View) -> bool:
    """A chest band shows from the front and the side, and from behind
    unless a backpack covers it."""
    return not (view.direction == 'back' and person.base.backpack)


def visible_details(person: Person, view: View) -> Dict[str, Any]:
    """The detail slots ``view`` shows, with their values (None: visibly
    absent). Slots the view hides are left out."""
    d = person_details(person)
    vis = visible_identity(person.base, view)
    out: Dict[str, Any] = {}
    for slot, value in d.items():
        if slot == 'shoes' and vis.shoes is None:
            continue
        if slot == 'eyewear' and view.direction == 'back':
            continue
        if slot == 'watch' and not watch_visible(view):
            continue
        # a chest logo shows from the front only, so only a front view
        # shows that there is no mark
        if slot == 'mark' and view.direction != 'front' and not (
                value is not None and value[0] == 'band'
                and band_visible(person, view)):
            continue
        if slot == 'hair' and vis.hair_style == 'hidden':
            continue
        out[slot] = value
    return out


def image_facts(person: Person, view: View) -> Dict[str, Any]:
    """What one image shows, in the vocabulary of
    :func:`~.pedes_v2_captions.read_caption`: the global appearance
    (:data:`GLOBAL_KEYS`), then the visible details.

    ``upper`` is the set of the top's visible colours (main, pattern, the
    top under an open jacket), ``lower`` ``(kind, colour)`` (None under a
    dress), ``backpack`` its colour (a global part, named with the
    details).
    """
    vis = visible_identity(person.base, view)
    up = vis.upper
    upper = {up.colour}
    if up.pattern not in ('plain', 'logo') and up.pattern_colour:
        upper.add(up.pattern_colour)
    if up.inner_colour:
        upper.add(up.inner_colour)
    facts: Dict[str, Any] = dict(
        gender=vis.gender,
        upper=sorted(upper),
        lower=(vis.lower.kind, vis.lower.colour) if vis.lower else None,
        hair_colour=vis.hair_colour
        if vis.hair_style not in ('hidden', 'bald') else None,
        backpack=vis.backpack)
    facts.update(visible_details(person, view))
    return facts


def swap_detail(person: Person, other: Person, slot: str) -> Person:
    """``person`` with ``other``'s value (and rendered colour) of one
    detail slot, everything else kept: what the probe renders to measure
    how many pixels a within-family difference covers."""
    b, o = person.base, other.base
    rgb = dict(b.rgb)
    if slot in ('bag', 'shoes', 'headwear', 'scarf'):
        rgb[slot] = o.rgb[slot]
        return dataclasses.replace(
            person,
            base=dataclasses.replace(b, **{slot: getattr(o, slot)}, rgb=rgb))
    if slot == 'mark':
        rgb['pattern'] = o.rgb['pattern']
        prgb = dict(person.rgb, band=other.rgb['band'])
        return dataclasses.replace(
            person,
            base=dataclasses.replace(b, upper=o.upper, rgb=rgb),
            band=other.band,
            rgb=prgb)
    if slot == 'eyewear':
        return dataclasses.replace(
            person, base=dataclasses.replace(b, glasses=o.glasses))
    if slot == 'watch':
        return dataclasses.replace(
            person,
            watch=other.watch,
            rgb=dict(person.rgb, watch=other.rgb['watch']))
    if slot == 'hair':
        return dataclasses.replace(
            person,
            base=dataclasses.replace(
                b, hair_style=o.hair_style, hair_colour=o.hair_colour))
    raise ValueError(f'unknown detail slot {slot!r}')
