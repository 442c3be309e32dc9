"""Rendering SynthPedes v2 images.

The figure is v1's (:mod:`.renderer`'s SynthPedes part functions, in v1's
depth order), with what v2 adds: a band across the chest, a watch on the
left wrist and bolder eyewear (v1's glasses are under a pixel wide at 128 x
64). The frame is drawn :data:`SUPERSAMPLE` times larger than the output,
the detector-box crop is cut there, and the result is area-downsampled
before the camera effects (colour cast, exposure, blur, noise), so that
small details are anti-aliased into the output pixels rather than aliased
away. v1's functions are only called, never changed.
"""
import dataclasses
from typing import Dict, Tuple

import cv2
import numpy as np

from .pedes_v2_people import Person
from .pedestrian import View
from .renderer import (_ONE, _SHIFT, Body, Canvas, _blend_mask, _pedes_arm,
                       _pedes_backpack, _pedes_backpack_behind, _pedes_bag,
                       _pedes_body, _pedes_head, _pedes_leg, _pedes_lower,
                       _pedes_upper, _post_process, _street_background,
                       check_img_size, torso_outline)
from .seeding import PEDES2_STREAM_RENDER, make_rng

__all__ = [
    'SUPERSAMPLE', 'BAND_Y', 'draw_person_v2', 'render_view_v2', 'figure_box'
]

#: The frame is drawn this many times larger, then area-downsampled.
SUPERSAMPLE = 3
#: Height range of the chest band (fractions of the person's height).
BAND_Y = (0.262, 0.314)
_FRAME = (18, 18, 20)
_CLEAR_LENS = (196, 204, 212)


def _hem(body: Body, kind: str) -> Tuple[float, float]:
    """Hem height and half-width of the top (as v1's upper garment)."""
    hw = body.dims.hip
    hem_y, hem_hw = 0.53, hw * 1.02
    if kind == 'jacket':
        hem_y, hem_hw = 0.555, hw * 1.06
    elif kind == 'coat':
        hem_y, hem_hw = 0.76, hw * 1.28
    elif kind == 'dress':
        hem_y, hem_hw = 0.70, hw * 1.55
    if body.side:
        hem_hw = body.torso_hw * (1.3 if kind in ('coat', 'dress') else 0.95)
    return hem_y, hem_hw


def _draw_band(fig: Canvas, body: Body, person: Person) -> None:
    """A band across the chest, on the top's pixels only."""
    if person.band is None:
        return  # (a backpack drawn later covers it from behind)
    hem_y, hem_hw = _hem(body, person.base.upper.kind)
    mask = np.zeros(fig.img.shape[:2], np.uint8)
    fig.on(mask).poly(torso_outline(body, hem_y, hem_hw), 255)
    band = np.zeros_like(mask)
    y0, y1 = BAND_Y
    fig.on(band).poly([(-0.3, y0), (0.3, y0), (0.3, y1), (-0.3, y1)], 255)
    np.minimum(mask, band, out=mask)
    _blend_mask(fig.img, mask, person.rgb['band'])


def _watch_arm(body: Body) -> int:
    """Index of the left arm in ``body.arms`` (-1: hidden)."""
    if body.direction == 'front':
        return 1  # the person's left is the image right (+x)
    if body.direction == 'back':
        return 0
    # side views are posed facing +x, near arm first; facing the image
    # left (mirrored) the camera sees the left side
    return 0 if body.direction == 'left' else -1


def _draw_watch(fig: Canvas, body: Body, person: Person, arm: int) -> None:
    if person.watch is None or arm != _watch_arm(body):
        return
    _, el, hand = body.arms[arm]
    a = (el[0] + 0.55 * (hand[0] - el[0]), el[1] + 0.55 * (hand[1] - el[1]))
    b = (el[0] + 0.92 * (hand[0] - el[0]), el[1] + 0.92 * (hand[1] - el[1]))
    w = body.dims.forearm * 1.7
    fig.limb(a, b, w, w, person.rgb['watch'], caps=False)


def _draw_eyewear(fig: Canvas, body: Body, kind: str) -> None:
    """Glasses (dark rims, light lenses) or sunglasses (dark lenses),
    drawn bold enough to survive the downsampling."""
    if kind is None or body.direction == 'back':
        return
    lens = _FRAME if kind == 'sunglasses' else _CLEAR_LENS
    ey = 0.072
    if body.side:
        fig.line([(-0.012, ey - 0.002), (0.044, ey)], 0.01, _FRAME)
        fig.ellipse((0.042, ey + 0.003), (0.015, 0.013), _FRAME)
        fig.ellipse((0.043, ey + 0.003), (0.009, 0.007), lens)
        return
    fig.line([(-0.048, ey), (0.048, ey)], 0.01, _FRAME)
    for sgn in (-1.0, 1.0):
        fig.ellipse((sgn * 0.021, ey + 0.003), (0.019, 0.014), _FRAME)
        fig.ellipse((sgn * 0.021, ey + 0.003), (0.012, 0.008), lens)


def _head(fig: Canvas, body: Body, person: Person) -> None:
    # v1's head without v1's (thin) glasses, then v2's eyewear
    ident = person.base
    _pedes_head(fig, body, dataclasses.replace(ident, glasses=None))
    _draw_eyewear(fig, body, ident.glasses)


def draw_person_v2(img: np.ndarray, person: Person, view: View,
                   rng: np.random.Generator) -> None:
    """Draw ``person`` as seen in ``view`` onto the (large) frame, part by
    part in v1's depth order, with the band, watch and eyewear of v2."""
    h, w = img.shape[:2]
    ident = person.base
    p = min(view.scale * h, 2.8 * w)
    foot = view.foot_y * h
    cx = w / 2 + view.shift_x * w
    fig = Canvas(img, cx, foot - p, p, mirror=view.direction == 'left')
    body = _pedes_body(ident, view)
    if body.side:
        _pedes_arm(fig, body, ident, 1, 0.8)  # far arm
        _pedes_bag(fig, body, ident, False)
        _pedes_leg(fig, body, ident, 1, 0.82)  # far leg
        _pedes_leg(fig, body, ident, 0, 1.0)
        _pedes_lower(fig, body, ident)
        _pedes_upper(fig, body, ident, rng)
        _draw_band(fig, body, person)
        _pedes_backpack(fig, body, ident)
        _pedes_arm(fig, body, ident, 0, 1.0)
        _draw_watch(fig, body, person, 0)
        _pedes_bag(fig, body, ident, True)
        _head(fig, body, person)
        return
    _pedes_backpack_behind(fig, body, ident)
    for i in (0, 1):
        _pedes_leg(fig, body, ident, i, 1.0)
    _pedes_lower(fig, body, ident)
    _pedes_upper(fig, body, ident, rng)
    _draw_band(fig, body, person)
    for i in (0, 1):
        _pedes_arm(fig, body, ident, i, 1.0)
        _draw_watch(fig, body, person, i)
    if view.direction == 'back':
        _head(fig, body, person)
        _pedes_backpack(fig, body, ident)
        _pedes_bag(fig, body, ident, True)
    else:
        _pedes_backpack(fig, body, ident)
        _pedes_bag(fig, body, ident, True)
        _head(fig, body, person)


def _crop_box(view: View, h: int, w: int) -> Tuple[int, int, int, int]:
    left, top, right, bottom = view.crop
    x0, y0 = int(round(left * w)), int(round(top * h))
    x1, y1 = w - int(round(right * w)), h - int(round(bottom * h))
    return x0, y0, x1, y1


def render_view_v2(person: Person,
                   view: View,
                   img_size: Tuple[int, int],
                   seed: int,
                   effects: bool = True) -> np.ndarray:
    """Render one SynthPedes v2 image.

    Args:
        person (Person): The person.
        view (View): The view.
        img_size (tuple[int, int]): Output ``(height, width)``.
        seed (int): Dataset seed (background, texture and noise come from
            ``(seed, pid, view index)``).
        effects (bool): Apply the camera effects. With False the image is
            the downsampled frame as drawn (the probe compares two members
            in the same frame this way). Defaults to True.

    Returns:
        np.ndarray: ``H x W x 3`` uint8 RGB.
    """
    h, w = check_img_size(img_size)
    s = SUPERSAMPLE
    hh, ww = h * s, w * s
    rng = make_rng(seed, PEDES2_STREAM_RENDER, person.pid, view.index)
    bg = _street_background(rng, hh, ww, view.camera, view.foot_y)
    img = np.clip(bg + 0.5, 0, 255).astype(np.uint8)
    shadow = np.zeros((hh, ww), np.uint8)
    p = min(view.scale * hh, 2.8 * ww)
    cv2.ellipse(shadow, (int(
        (ww / 2 + view.shift_x * ww) * _ONE), int(view.foot_y * hh * _ONE)),
                (int(0.13 * p * _ONE), int(0.022 * p * _ONE)), 0, 0, 360, 110,
                -1, cv2.LINE_AA, _SHIFT)
    img = (img.astype(np.float32) * (1.0 - shadow[:, :, None] *
                                     (1.0 / 255.0))).astype(np.uint8)
    draw_person_v2(img, person, view, rng)
    x0, y0, x1, y1 = _crop_box(view, hh, ww)
    img = cv2.resize(img[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_AREA)
    if not effects:
        return img
    return _post_process(img, dataclasses.replace(view, crop=(0.0, ) * 4), rng,
                         (h, w))


def figure_box(view: View, img_size: Tuple[int, int]) -> Dict[str, float]:
    """Where the figure lies in the output image (pixels): the centre line
    ``cx``, the top of the head ``top``, and the size of one figure unit
    (the person's height) along y (``py``) and x (``px``; the crop can
    change the aspect ratio)."""
    h, w = check_img_size(img_size)
    s = SUPERSAMPLE
    hh, ww = h * s, w * s
    p = min(view.scale * hh, 2.8 * ww)
    x0, y0, x1, y1 = _crop_box(view, hh, ww)
    fx, fy = w / (x1 - x0), h / (y1 - y0)
    cx = ww / 2 + view.shift_x * ww
    top = view.foot_y * hh - p
    return dict(cx=(cx - x0) * fx, top=(top - y0) * fy, py=p * fy, px=p * fx)
