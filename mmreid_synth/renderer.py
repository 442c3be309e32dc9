"""The renderer of both synthetic datasets: canvases, posed bodies, one
drawing function per body part, backgrounds and camera effects.

SynthPedes (:func:`render_view`) paints anti-aliased colour straight onto
the image, followed by the camera effects that make re-identification hard
in practice (framing jitter, colour casts, exposure, blur, sensor noise).
SynthCC (:func:`render_cc_view`) paints every shape without anti-aliasing
into a LIP label map and a colour-index map at once
(:class:`LabelCanvas`), so that its parsing masks match the pixels
exactly, and its camera effects act per pixel.

Both draw the same kind of figure, posed by :func:`pose_body`, part by
part: :func:`draw_leg`, :func:`draw_shoe`, :func:`draw_arm`,
:func:`torso_outline`, :func:`draw_pelvis`, :func:`draw_skirt` ... are
shared, and each generator adds the parts only it has (SynthPedes'
accessories, SynthCC's face features). The two styles keep their own
proportions and details (:data:`PEDES_GAIT` / :data:`CC_GAIT` and the
constants in their part functions): their v1 outputs are fixed, byte for
byte, so unifying a constant would be a new generator version.

Coordinates inside the figure are fractions of the person's height ``P``:
``y = 0`` is the top of the head and ``y = 1`` the soles of the feet, ``x``
runs to the image right from the body's centre line. Everything is
deterministic for a given seed on a given OpenCV / numpy build.
"""
import dataclasses
import functools
import math
from typing import (TYPE_CHECKING, Any, Callable, Dict, List, Sequence,
                    Tuple)

import cv2
import numpy as np

from .seeding import (CC_STREAM_CAMERA, CC_STREAM_RENDER, STREAM_RENDER,
                      make_rng)

if TYPE_CHECKING:  # the attribute models import this module
    from .pedestrian import Identity, View
    from .synth_cc import Camera, CCIdentity, Frame, Outfit

__all__ = [
    'RGB', 'MIN_IMG_SIZE', 'LIP_LABELS', 'FAR_SHADE', 'EYE_COLOUR',
    'MARK_COLOUR', 'SOLE_COLOURS', 'Canvas', 'LabelCanvas', 'Proportions',
    'Gait', 'Body', 'ShoeStyle', 'PEDES_GAIT', 'CC_GAIT', 'CCRender',
    'check_img_size', 'darker', 'jitter', 'pose_body', 'torso_outline',
    'draw_leg', 'draw_thigh_cover', 'draw_shoe', 'draw_arm',
    'draw_bare_shoulders', 'draw_open_front', 'draw_pelvis', 'draw_skirt',
    'draw_hairline', 'vertical_gradient', 'ground_ramp', 'draw_pedestrian',
    'draw_cc_figure', 'render_view', 'render_cc_view'
]

RGB = Tuple[int, int, int]
Point = Tuple[float, float]
#: A joint chain: (hip, knee, ankle) or (shoulder, elbow, hand).
Limb = Tuple[Point, Point, Point]
#: What a canvas paints: an RGB (or 0-255) value on a :class:`Canvas`, a
#: ``(LIP label, RGB)`` pair on a :class:`LabelCanvas`.
Paint = Any

#: Smallest ``(height, width)`` the figures are drawn legibly at.
MIN_IMG_SIZE = (32, 16)

_SHIFT = 4  # sub-pixel bits of OpenCV's drawing calls
_ONE = 1 << _SHIFT

#: LIP label ids written into SynthCC's masks.
LIP_LABELS: Dict[str, int] = dict(
    background=0,
    hat=1,
    hair=2,
    upper=5,
    coat=7,
    pants=9,
    skirt=12,
    face=13,
    left_arm=14,
    right_arm=15,
    left_leg=16,
    right_leg=17,
    left_shoe=18,
    right_shoe=19)
#: Shade of SynthCC's far arm / leg / shoe in side views.
FAR_SHADE = 0.78
#: Colour of SynthCC's 'mark' face feature (a birthmark on the cheek).
MARK_COLOUR: RGB = (150, 40, 60)
#: Colour of SynthCC's eyes.
EYE_COLOUR: RGB = (40, 30, 28)
#: SynthCC's sneaker soles: light, or dark under light shoes.
SOLE_COLOURS: Tuple[RGB, RGB] = ((240, 240, 236), (60, 60, 60))


def check_img_size(img_size: Sequence[int]) -> Tuple[int, int]:
    """Validate an output size.

    Args:
        img_size (Sequence[int]): ``(height, width)``.

    Returns:
        tuple[int, int]: ``(height, width)`` as ints.

    Raises:
        ValueError: Not a pair of numbers, or under :data:`MIN_IMG_SIZE`.
    """
    try:
        h, w = (int(v) for v in img_size)
    except (TypeError, ValueError):
        raise ValueError('img_size must be (height, width), got '
                         f'{img_size!r}') from None
    if h < MIN_IMG_SIZE[0] or w < MIN_IMG_SIZE[1]:
        raise ValueError(f'img_size must be at least {MIN_IMG_SIZE}, got '
                         f'{img_size}')
    return h, w


# ---------------------------------------------------------------------------
# colour


def darker(rgb: RGB, f: float) -> RGB:
    """``rgb`` scaled by ``f`` (truncated to ints): shadows, far limbs."""
    return tuple(int(v * f) for v in rgb)


def jitter(rng: np.random.Generator, rgb: RGB, amount: float,
           offset: float) -> RGB:
    """A random shade of ``rgb``, so that same-named colours differ.

    Args:
        rng (np.random.Generator): Draws a gain, then three offsets.
        rgb (RGB): Base colour.
        amount (float): The gain is ``1 +- amount``.
        offset (float): Each channel moves by up to ``+- offset``.

    Returns:
        RGB: The shade, rounded and clipped to 0-255.
    """
    gain = 1.0 + rng.uniform(-amount, amount)
    shift = rng.uniform(-offset, offset, size=3)
    out = np.clip(np.asarray(rgb, np.float64) * gain + shift, 0, 255)
    return tuple(int(round(v)) for v in out)


# ---------------------------------------------------------------------------
# canvases


class Canvas:
    """Draws figure-space shapes onto an image.

    Args:
        img (np.ndarray): H x W (x C) uint8 image, drawn on in place.
        cx (float): Pixel x of the body's centre line.
        top (float): Pixel y of the top of the head.
        p (float): Person height in pixels.
        mirror (bool): Flip figure x (views facing left are drawn facing
            right, then mirrored). Defaults to False.
        antialias (bool): Anti-aliased edges; without, every pixel is
            wholly one shape's (what label maps need). Defaults to True.
    """

    def __init__(self,
                 img: np.ndarray,
                 cx: float,
                 top: float,
                 p: float,
                 mirror: bool = False,
                 antialias: bool = True) -> None:
        self.img = img
        self.cx, self.top, self.p = cx, top, p
        self.mirror = mirror
        self.sx = -1.0 if mirror else 1.0
        self.line_type = cv2.LINE_AA if antialias else cv2.LINE_8

    def on(self, img: np.ndarray) -> 'Canvas':
        """The same figure placement and edges, drawing onto ``img`` (a
        mask, say)."""
        return Canvas(img, self.cx, self.top, self.p, self.mirror,
                      self.line_type == cv2.LINE_AA)

    def point(self, x: float, y: float) -> Tuple[int, int]:
        """Figure coordinates -> fixed-point pixel coordinates."""
        return (int(round((self.cx + self.sx * x * self.p) * _ONE)),
                int(round((self.top + y * self.p) * _ONE)))

    def px(self, pts: Sequence[Point]) -> np.ndarray:
        """Points -> an int32 array of fixed-point pixel coordinates."""
        # plain Python: a handful of points per call, where numpy's per-call
        # overhead would dominate the rendering time
        return np.array([self.point(x, y) for x, y in pts], np.int32)

    def _targets(self, paint: Paint) -> Sequence[Tuple[np.ndarray, Any]]:
        """The images a shape goes into, each with the value to write."""
        return ((self.img, paint), )

    def poly(self, pts: Sequence[Point], paint: Paint) -> None:
        """A filled polygon."""
        arr = self.px(pts)
        for img, value in self._targets(paint):
            cv2.fillPoly(img, [arr], value, self.line_type, _SHIFT)

    def ellipse(self,
                centre: Point,
                axes: Tuple[float, float],
                paint: Paint,
                arc: Tuple[int, int] = (0, 360)) -> None:
        """A filled, axis-aligned ellipse (or the sector ``arc``, degrees
        clockwise from the image right)."""
        ax = (max(1, int(round(axes[0] * self.p * _ONE))),
              max(1, int(round(axes[1] * self.p * _ONE))))
        for img, value in self._targets(paint):
            cv2.ellipse(img, self.point(*centre), ax, 0, arc[0], arc[1],
                        value, -1, self.line_type, _SHIFT)

    def limb(self,
             a: Point,
             b: Point,
             wa: float,
             wb: float,
             paint: Paint,
             caps: bool = True) -> None:
        """A tapered segment from ``a`` (width ``wa``) to ``b`` (``wb``),
        with round ends unless ``caps`` is False."""
        (ax, ay), (bx, by) = a, b
        dx, dy = bx - ax, by - ay
        n = math.hypot(dx, dy) or 1e-6
        nx, ny = -dy / n, dx / n
        self.poly([(ax + nx * wa / 2, ay + ny * wa / 2),
                   (bx + nx * wb / 2, by + ny * wb / 2),
                   (bx - nx * wb / 2, by - ny * wb / 2),
                   (ax - nx * wa / 2, ay - ny * wa / 2)], paint)
        if caps:
            self.ellipse(a, (wa / 2, wa / 2), paint)
            self.ellipse(b, (wb / 2, wb / 2), paint)

    def line(self, pts: Sequence[Point], width: float, paint: Paint) -> None:
        """A polyline of constant ``width`` (square joints)."""
        for a, b in zip(pts[:-1], pts[1:]):
            self.limb(a, b, width, width, paint, caps=False)


class LabelCanvas(Canvas):
    """Draws every shape into a label map and a colour-index map at once.

    Shapes are painted with a ``(label, rgb)`` pair: the LIP label goes
    into :attr:`labels`, the index of ``rgb`` in :attr:`palette` into
    :attr:`parts`, with the same OpenCV call and no anti-aliasing, so the
    two maps agree pixel for pixel.

    Args:
        h, w (int): Image size.
        cx (float): Pixel x of the body's centre line.
        top (float): Pixel y of the top of the head.
        p (float): Person height in pixels.
        mirror (bool): Flip figure x (views facing left).
    """

    def __init__(self, h: int, w: int, cx: float, top: float, p: float,
                 mirror: bool) -> None:
        super().__init__(
            np.zeros((h, w), np.uint8), cx, top, p, mirror, antialias=False)
        self.parts = np.zeros((h, w), np.uint8)
        self.palette: List[RGB] = [(0, 0, 0)]
        self._index: Dict[RGB, int] = {}

    @property
    def labels(self) -> np.ndarray:
        """H x W uint8 LIP labels (0: background)."""
        return self.img

    def colour(self, rgb: RGB) -> int:
        """Index of ``rgb`` in :attr:`palette` (added on first use)."""
        rgb = tuple(int(v) for v in rgb)
        if rgb not in self._index:
            self._index[rgb] = len(self.palette)
            self.palette.append(rgb)
        return self._index[rgb]

    def _targets(self, paint: Paint) -> Sequence[Tuple[np.ndarray, Any]]:
        label, rgb = paint
        return ((self.img, int(label)), (self.parts, self.colour(rgb)))

    def recolour_within(self, label: int, rgb: RGB,
                        shapes: Sequence[tuple]) -> None:
        """Recolour the pixels of ``label`` covered by ``shapes`` (a list of
        ``('ellipse', centre, axes)`` / ``('poly', pts)``); labels stay."""
        mask = np.zeros_like(self.labels)
        pen = self.on(mask)
        for shape in shapes:
            if shape[0] == 'ellipse':
                pen.ellipse(shape[1], shape[2], 1)
            else:
                pen.poly(shape[1], 1)
        self.parts[(mask > 0) & (self.labels == label)] = self.colour(rgb)


# ---------------------------------------------------------------------------
# posed body


@dataclasses.dataclass(frozen=True)
class Proportions:
    """The measures of one figure, as fractions of its height.

    Attributes:
        build (float): Width factor (1: average).
        shoulder, waist, hip (float): Half-widths of the torso.
        thigh, knee, ankle, arm, forearm (float): Limb widths at the
            joints.
        leg (float): Length of the thigh and of the shin (side views).
        y_shoulder, y_waist, y_hip, y_knee, y_ankle (float): Joint heights.
    """
    build: float
    shoulder: float
    waist: float
    hip: float
    thigh: float
    knee: float
    ankle: float
    arm: float
    forearm: float
    leg: float
    y_shoulder: float
    y_waist: float
    y_hip: float
    y_knee: float
    y_ankle: float


@dataclasses.dataclass(frozen=True)
class Gait:
    """How a generator poses its walking figures.

    Attributes:
        leg_swing (float): Thigh angle (radians) at full stride (side).
        arm_swing (float): Upper-arm angle at full swing (side).
        upper_arm, forearm (float): Arm segment lengths.
        spread (tuple[float, float]): Feet apart (front / back views):
            ``a + b * stride``.
        hip_x (float): Hip joints' offset from the centre line, per build.
        arm_out_build (float): Build at which the arms hang at 0.1 rad.
        shoulder_x (float): Shoulder joints' offset, per shoulder
            half-width.
        ground (float): The soles' line that the lowest foot is put on.
        ground_gap (float): How far above that line the ankle ends.
    """
    leg_swing: float
    arm_swing: float
    upper_arm: float
    forearm: float
    spread: Tuple[float, float]
    hip_x: float
    arm_out_build: float
    shoulder_x: float
    ground: float
    ground_gap: float


#: SynthPedes' gait.
PEDES_GAIT = Gait(
    leg_swing=0.42,
    arm_swing=0.55,
    upper_arm=0.155,
    forearm=0.145,
    spread=(0.008, 0.03),
    hip_x=0.048,
    arm_out_build=0.88,
    shoulder_x=0.93,
    ground=0.955,
    ground_gap=0.01)
#: SynthCC's gait.
CC_GAIT = Gait(
    leg_swing=0.4,
    arm_swing=0.5,
    upper_arm=0.15,
    forearm=0.14,
    spread=(0.006, 0.028),
    hip_x=0.046,
    arm_out_build=0.8,
    shoulder_x=0.92,
    ground=0.955,
    ground_gap=0.0)


@dataclasses.dataclass(frozen=True)
class Body:
    """A figure posed for one image.

    Attributes:
        direction (str): ``front``, ``back``, ``left`` or ``right`` (side
            views are posed facing +x).
        side (bool): A side view.
        dims (Proportions): The measures.
        torso_hw (float): Torso half-width as seen (narrower from the
            side).
        legs (tuple[Limb, Limb]): ``(hip, knee, ankle)`` per leg: front /
            back views -x then +x, side views near then far.
        arms (tuple[Limb, Limb]): ``(shoulder, elbow, hand)`` per arm:
            front / back views -x then +x, side views near then far.
        dy (float): How far the legs were moved to stand on the ground.
    """
    direction: str
    side: bool
    dims: Proportions
    torso_hw: float
    legs: Tuple[Limb, Limb]
    arms: Tuple[Limb, Limb]
    dy: float


def _lerp(a: Point, b: Point, t: float) -> Point:
    return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))


def pose_body(dims: Proportions, gait: Gait, direction: str, stride: float,
              phase: float, swing: float) -> Body:
    """Pose a walking figure.

    Args:
        dims (Proportions): The figure's measures.
        gait (Gait): The generator's gait.
        direction (str): View direction.
        stride (float): Walking stride in [0, 1].
        phase (float): Gait phase in [-1, 1] (which leg is forward).
        swing (float): Arm swing in [0, 1].

    Returns:
        Body: Joints of both legs and arms, the lowest foot on the ground.
    """
    side = direction in ('left', 'right')
    bw = dims.build
    y_sh = dims.y_shoulder
    legs, arms = [], []
    if side:
        torso_hw = dims.shoulder * 0.55
        seg = dims.leg
        for sgn in (1.0, -1.0):  # near leg, far leg
            theta = gait.leg_swing * stride * phase * sgn
            hip = (0.0, dims.y_hip)
            knee = (hip[0] + seg * math.sin(theta),
                    hip[1] + seg * math.cos(theta))
            # the trailing leg bends at the knee
            bend = 0.35 * stride if theta < 0 else 0.05
            ankle = (knee[0] + seg * math.sin(theta - bend),
                     knee[1] + seg * math.cos(theta - bend))
            legs.append((hip, knee, ankle))
        for sgn in (-1.0, 1.0):  # near arm swings opposite the near leg
            beta = gait.arm_swing * swing * phase * sgn
            sh = (0.0, y_sh + 0.02)
            el = (sh[0] + gait.upper_arm * math.sin(beta),
                  sh[1] + gait.upper_arm * math.cos(beta))
            beta2 = beta + 0.25 + 0.3 * max(0.0, beta)
            hand = (el[0] + gait.forearm * math.sin(beta2),
                    el[1] + gait.forearm * math.cos(beta2))
            arms.append((sh, el, hand))
    else:
        torso_hw = dims.shoulder
        spread = gait.spread[0] + gait.spread[1] * stride
        for sgn in (-1.0, 1.0):
            lift = 0.02 * stride * max(0.0, phase * sgn)
            hip = (sgn * gait.hip_x * bw, dims.y_hip)
            knee = (sgn * (gait.hip_x * bw + spread * 0.5),
                    dims.y_knee - lift)
            ankle = (sgn * (gait.hip_x * bw + spread),
                     dims.y_ankle - 1.5 * lift)
            legs.append((hip, knee, ankle))
        for sgn in (-1.0, 1.0):
            out = 0.1 + 0.08 * (bw - gait.arm_out_build)
            sh = (sgn * dims.shoulder * gait.shoulder_x, y_sh + 0.02)
            el = (sh[0] + sgn * gait.upper_arm * math.sin(out),
                  sh[1] + gait.upper_arm)
            # swinging forearms point at / away from the camera and look
            # shorter
            fl = gait.forearm * (1.0 - 0.3 * swing * abs(phase))
            hand = (el[0] + sgn * fl * math.sin(out * 0.6), el[1] + fl)
            arms.append((sh, el, hand))
    # ground the lowest foot on the soles' line
    dy = gait.ground - max(leg[2][1] for leg in legs) - gait.ground_gap
    legs = [tuple((x, y + dy) for x, y in leg) for leg in legs]
    return Body(direction, side, dims, torso_hw, tuple(legs), tuple(arms),
                dy)


# ---------------------------------------------------------------------------
# body parts shared by both generators


@dataclasses.dataclass(frozen=True)
class ShoeStyle:
    """A generator's shoes.

    Attributes:
        boot_height (float): How far a boot's shaft reaches up the shin.
        boot_width (float): Shaft width, per ankle width.
        sole_front (float): How far a sneaker's sole reaches forward.
        sole_width (float): Thickness of a sneaker's sole.
    """
    boot_height: float
    boot_width: float
    sole_front: float
    sole_width: float


def torso_outline(body: Body,
                  hem_y: float,
                  hem_hw: float,
                  grow: float = 1.0) -> List[Point]:
    """Outline of a top or coat from the shoulders to the hem.

    Args:
        body (Body): The figure.
        hem_y (float): Height of the hem.
        hem_hw (float): Half-width at the hem.
        grow (float): Widen the shoulders and waist (a coat over a top).

    Returns:
        list[Point]: The polygon.
    """
    t = body.torso_hw * grow
    y_sh, y_waist = body.dims.y_shoulder, body.dims.y_waist
    if body.side:
        # chest forward (+x), back straight
        return [(-t * 0.9, y_sh - 0.01), (t * 0.6, y_sh - 0.01),
                (t * 1.05, y_sh + 0.08), (t * 0.95, y_waist),
                (hem_hw, hem_y), (-hem_hw, hem_y), (-t * 0.85, y_waist)]
    ww = body.dims.waist * grow
    return [(-t * 0.78, y_sh - 0.012), (t * 0.78, y_sh - 0.012),
            (t, y_sh + 0.018), (ww, y_waist), (hem_hw, hem_y),
            (-hem_hw, hem_y), (-ww, y_waist), (-t, y_sh + 0.018)]


def draw_leg(cv: Canvas, body: Body, i: int, thigh: Paint,
             shin: Paint) -> None:
    """Leg ``i``: thigh (hip to knee) and shin (knee to ankle)."""
    hip, knee, ankle = body.legs[i]
    d = body.dims
    cv.limb(hip, knee, d.thigh, d.knee, thigh)
    cv.limb(knee, ankle, d.knee, d.ankle, shin)


def draw_thigh_cover(cv: Canvas, body: Body, i: int, reach: float,
                     widths: Tuple[float, float], paint: Paint) -> None:
    """Shorts over leg ``i``: from the hip ``reach`` of the way to the
    knee, ``widths`` times the thigh's width at either end."""
    hip, knee, _ = body.legs[i]
    cv.limb(hip, _lerp(hip, knee, reach), body.dims.thigh * widths[0],
            body.dims.thigh * widths[1], paint)


def draw_shoe(cv: Canvas, body: Body, i: int, kind: str, paint: Paint,
              sole: Paint, style: ShoeStyle) -> None:
    """The shoe on leg ``i``: a boot's shaft, the shoe, a sneaker's sole.

    Args:
        cv (Canvas): Canvas.
        body (Body): The figure.
        i (int): Leg index.
        kind (str): ``'shoes'``, ``'sneakers'`` or ``'boots'``.
        paint (Paint): The shoe.
        sole (Paint): A sneaker's sole (unused for other kinds).
        style (ShoeStyle): The generator's shoe measures.
    """
    ankle = body.legs[i][2]
    if kind == 'boots':
        w = body.dims.ankle * style.boot_width
        cv.limb((ankle[0], ankle[1] - style.boot_height), ankle, w, w, paint)
    if body.side:
        cv.ellipse((ankle[0] + 0.022, ankle[1] + 0.018), (0.042, 0.02),
                   paint)
    else:
        cv.ellipse((ankle[0], ankle[1] + 0.02), (0.03, 0.022), paint)
    if kind == 'sneakers':
        off = 0.022 if body.side else 0.0
        y = ankle[1] + 0.036
        cv.limb((ankle[0] + off - 0.03, y),
                (ankle[0] + off + style.sole_front, y),
                style.sole_width,
                style.sole_width,
                sole,
                caps=False)


def draw_arm(cv: Canvas, body: Body, i: int, sleeves: str, sleeve: Paint,
             skin: Paint, hand_axes: Tuple[float, float]) -> None:
    """Arm ``i`` with its ``'long'``, ``'short'`` or no (``'none'``)
    sleeve, and the hand."""
    sh, el, hand = body.arms[i]
    d = body.dims
    if sleeves == 'long':
        cv.limb(sh, el, d.arm, d.forearm * 1.05, sleeve)
        cv.limb(el, hand, d.forearm * 1.05, d.forearm, sleeve)
    else:
        cv.limb(sh, el, d.arm * 0.85, d.forearm * 0.9, skin)
        cv.limb(el, hand, d.forearm * 0.9, d.forearm * 0.8, skin)
        if sleeves == 'short':
            cv.limb(sh, _lerp(sh, el, 0.55), d.arm * 1.05, d.arm, sleeve)
    cv.ellipse((hand[0], hand[1] + 0.01), hand_axes, skin)


def draw_bare_shoulders(cv: Canvas, body: Body,
                        paint: Callable[[float], Paint]) -> None:
    """Skin either side of a sleeveless top's straps (``paint(sgn)``: the
    paint of the shoulder on the ``sgn`` side of the centre line)."""
    t, y_sh = body.torso_hw, body.dims.y_shoulder
    for sgn in ((1.0, ) if body.side else (-1.0, 1.0)):
        cv.poly([(sgn * t * 0.45, y_sh - 0.013),
                 (sgn * t * 1.01, y_sh - 0.005),
                 (sgn * t * 1.0, y_sh + 0.03)], paint(sgn))


def draw_open_front(cv: Canvas, body: Body, bottom: float, width: float,
                    paint: Paint) -> float:
    """The top seen through an open jacket or coat, down to ``bottom``;
    returns the opening's half-width at the bottom."""
    gap = body.torso_hw * width
    y_sh = body.dims.y_shoulder
    cv.poly([(-gap * 0.7, y_sh), (gap * 0.7, y_sh), (gap, bottom),
             (-gap, bottom)], paint)
    return gap


def draw_pelvis(cv: Canvas, body: Body, top_y: float, bottom_y: float,
                side_depth: float, paint: Paint) -> None:
    """The block of trousers or shorts joining the two legs."""
    l, r = body.legs[0][0], body.legs[1][0]
    thigh = body.dims.thigh
    # seen from the side the hips are as deep as the torso, not as wide as
    # from the front
    ph = body.torso_hw * side_depth if body.side else body.dims.hip
    cv.poly([(-ph, top_y), (ph, top_y),
             (max(l[0], r[0]) + thigh * 0.5, bottom_y),
             (min(l[0], r[0]) - thigh * 0.5, bottom_y)], paint)


def draw_skirt(cv: Canvas, body: Body, top_y: float, hem_y: float,
               top: Tuple[float, float], flare: float, paint: Paint) -> None:
    """A skirt from ``top_y`` to ``hem_y``; ``top`` is its back and front
    (left and right) half-widths at the top and ``flare`` its half-width
    at the hem, per hip half-width."""
    hw = body.dims.hip
    half = hw * flare
    cv.poly([(-hw * top[0], top_y), (hw * top[1], top_y), (half, hem_y),
             (-half, hem_y)], paint)


def draw_hairline(cv: Canvas, hy: float, axes: Tuple[float, float],
                  buzz: bool, drop: Tuple[float, float], temple: Point,
                  paint: Paint) -> None:
    """Hair seen from the front: a cap of hair down to the hair line
    (``drop[0]`` / ``drop[1]`` above the head's centre for a buzz cut /
    longer hair), and for longer hair tufts at the temples (``temple``:
    x per head half-width, y)."""
    line_y = hy - (drop[0] if buzz else drop[1])
    cv.ellipse((0.0, line_y), (axes[0] * 1.06, line_y - hy + axes[1] + 0.004),
               paint,
               arc=(180, 360))
    if not buzz:
        for sgn in (-1.0, 1.0):
            cv.ellipse((sgn * axes[0] * temple[0], temple[1]), (0.012, 0.03),
                       paint)


# ---------------------------------------------------------------------------
# SynthPedes figure

_PEDES_SHOES = ShoeStyle(
    boot_height=0.05, boot_width=1.25, sole_front=0.035, sole_width=0.01)
_PEDES_BUILD = {'slim': 0.88, 'average': 1.0, 'heavy': 1.2}
#: Head centre (SynthPedes heads have one size).
_PEDES_HY = 0.07


def _pedes_body(identity: 'Identity', view: 'View') -> Body:
    bw = _PEDES_BUILD[identity.build]
    female = identity.gender == 'female'
    dims = Proportions(
        build=bw,
        shoulder=0.105 * bw * (0.9 if female else 1.0),
        waist=0.082 * bw * (0.92 if female else 1.0),
        hip=0.092 * bw * (1.04 if female else 0.94),
        thigh=0.082 * bw,
        knee=0.058 * bw,
        ankle=0.042 * bw,
        arm=0.048 * bw,
        forearm=0.038 * bw,
        leg=0.225,
        y_shoulder=0.165,
        y_waist=0.40,
        y_hip=0.50,
        y_knee=0.72,
        y_ankle=0.945)
    return pose_body(dims, PEDES_GAIT, view.direction, view.stride,
                     view.phase, view.arm_swing)


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


def _pattern_mask(fig: Canvas, pattern: str,
                  region: Tuple[float, float, float, float],
                  rng: np.random.Generator) -> np.ndarray:
    """Stripes / checks / dots covering the figure-space box ``region``."""
    mask = np.zeros(fig.img.shape[:2], np.uint8)
    pen = fig.on(mask)
    x0, y0, x1, y1 = region
    if pattern == 'stripes':
        period = rng.uniform(0.028, 0.04)
        y = y0 + rng.uniform(0, period)
        while y < y1:
            pen.line([(x0, y), (x1, y)], period * 0.42, 255)
            y += period
    elif pattern == 'checks':
        period = rng.uniform(0.035, 0.05)
        y = y0 + rng.uniform(0, period)
        while y < y1:
            pen.line([(x0, y), (x1, y)], period * 0.3, 255)
            y += period
        x = x0 + rng.uniform(0, period)
        while x < x1:
            pen.line([(x, y0), (x, y1)], period * 0.3, 255)
            x += period
    elif pattern == 'dots':
        period = rng.uniform(0.035, 0.05)
        r = period * 0.22
        row = 0
        y = y0 + period / 2
        while y < y1:
            x = x0 + (period / 2 if row % 2 else 0)
            while x < x1:
                pen.ellipse((x, y), (r, r), 255)
                x += period
            y += period
            row += 1
    return mask


def _pedes_leg(fig: Canvas, body: Body, identity: 'Identity', i: int,
               shade: float) -> None:
    """Leg ``i`` of a SynthPedes figure with its trouser leg and shoe."""
    rgb, lower, skin = identity.rgb, identity.lower, identity.rgb['skin']
    lower_rgb = rgb['lower'] if lower else skin
    thigh = lower_rgb
    if lower is None or lower.kind == 'skirt':
        thigh = skin
    shin = (
        lower_rgb if lower is not None
        and lower.kind in ('trousers', 'jeans') else skin)
    draw_leg(fig, body, i, darker(thigh, shade), darker(shin, shade))
    if lower is not None and lower.kind == 'jeans':
        # a lighter seam line reads as denim
        seam = darker(
            tuple(min(255, int(v * 1.35 + 20)) for v in lower_rgb), shade)
        fig.line(body.legs[i], 0.006, seam)
    sole = ((238, 238, 234)
            if identity.shoes.colour != 'white' else (60, 60, 60))
    draw_shoe(fig, body, i, identity.shoes.kind, darker(rgb['shoes'], shade),
              darker(sole, shade), _PEDES_SHOES)


def _pedes_arm(fig: Canvas, body: Body, identity: 'Identity', i: int,
               shade: float) -> None:
    """Arm ``i`` of a SynthPedes figure."""
    draw_arm(fig, body, i, identity.upper.sleeves,
             darker(identity.rgb['upper'], shade),
             darker(identity.rgb['skin'], shade), (0.021, 0.024))


def _pedes_upper(fig: Canvas, body: Body, identity: 'Identity',
                 rng: np.random.Generator) -> None:
    """The upper garment: its cut, pattern, front details and hood."""
    up, rgb = identity.upper, identity.rgb
    upper_rgb = rgb['upper']
    kind, side, d = up.kind, body.side, body.direction
    hw, y_sh = body.dims.hip, body.dims.y_shoulder
    hem_y, hem_hw = 0.53, hw * 1.02
    if kind == 'jacket':
        hem_y, hem_hw = 0.555, hw * 1.06
    elif kind == 'coat':
        hem_y, hem_hw = 0.76, hw * 1.28
    elif kind == 'dress':
        hem_y, hem_hw = 0.70, hw * 1.55
    if side:
        hem_hw = body.torso_hw * (1.3 if kind in ('coat', 'dress') else 0.95)
    pts = torso_outline(body, hem_y, hem_hw)
    fig.poly(pts, upper_rgb)
    if kind == 'tank top':
        draw_bare_shoulders(fig, body, lambda sgn: rgb['skin'])
    if up.pattern in ('stripes', 'checks', 'dots'):
        mask = np.zeros(fig.img.shape[:2], np.uint8)
        fig.on(mask).poly(pts, 255)
        pat = _pattern_mask(fig, up.pattern,
                            (-0.25, y_sh - 0.02, 0.25, hem_y + 0.02), rng)
        np.minimum(mask, pat, out=mask)
        _blend_mask(fig.img, mask, rgb['pattern'])
    if d == 'front':
        if up.inner_kind is not None:
            # the open front shows the top underneath
            gap = draw_open_front(fig, body, hem_y - 0.02, 0.32,
                                  rgb['inner'])
            for x in (-gap, gap):
                fig.line([(x, y_sh + 0.01), (x, hem_y - 0.01)], 0.006,
                         darker(upper_rgb, 0.7))
        elif kind in ('jacket', 'coat', 'shirt'):
            fig.line([(0.0, y_sh + 0.02), (0.0, hem_y - 0.01)], 0.006,
                     darker(upper_rgb, 0.65))
        if up.pattern == 'logo':
            size = rng.uniform(0.03, 0.045)
            lc = (rng.uniform(-0.02, 0.02), rng.uniform(0.25, 0.29))
            if rng.random() < 0.5:
                fig.ellipse(lc, (size, size * 0.8), rgb['pattern'])
            else:
                fig.poly([(lc[0] - size, lc[1] - size * 0.6),
                          (lc[0] + size, lc[1] - size * 0.6),
                          (lc[0] + size, lc[1] + size * 0.6),
                          (lc[0] - size, lc[1] + size * 0.6)], rgb['pattern'])
    if kind == 'hoodie' and d != 'front':
        hood_x = -body.torso_hw * 0.6 if side else 0.0
        fig.ellipse((hood_x, y_sh + 0.015), (0.05, 0.03),
                    darker(upper_rgb, 0.85))


def _pedes_lower(fig: Canvas, body: Body, identity: 'Identity') -> None:
    """Trousers, jeans, shorts or a skirt (nothing under a dress)."""
    lower = identity.lower
    if lower is None:
        return
    lower_rgb = identity.rgb['lower']
    side, dy = body.side, body.dy
    top_y = 0.45 + dy * 0.5
    if lower.kind == 'skirt':
        # below the hem of a coat, so that it stays visible
        hem = (0.83 if identity.upper.kind == 'coat' else 0.67) + dy
        draw_skirt(fig, body, top_y, hem,
                   (0.95, 0.95) if not side else (0.55, 0.65),
                   1.5 if not side else 1.0, lower_rgb)
        return
    draw_pelvis(fig, body, top_y, 0.56 + dy, 0.9, lower_rgb)
    if lower.kind == 'shorts':
        for i in (0, 1):
            draw_thigh_cover(fig, body, i, 0.6, (1.12, 1.05),
                             darker(lower_rgb, 0.85 if side and i else 1.0))


def _pedes_hair_behind(fig: Canvas, body: Body, identity: 'Identity') -> None:
    """Long or medium hair hanging behind the head and shoulders."""
    style = identity.hair_style
    if style not in ('long', 'medium'):
        return
    end = 0.27 if style == 'long' else 0.18
    if body.side:
        fig.poly([(-0.052, 0.04), (0.0, 0.03), (-0.01, end),
                  (-0.075, end - 0.01)], identity.rgb['hair'])
    elif body.direction == 'front':
        fig.poly([(-0.06, 0.05), (0.06, 0.05), (0.066, end), (-0.066, end)],
                 identity.rgb['hair'])


def _pedes_scarf(fig: Canvas, body: Body, identity: 'Identity') -> None:
    if identity.scarf is None:
        return
    sc, y_sh = identity.rgb['scarf'], body.dims.y_shoulder
    fig.ellipse((0.0, y_sh - 0.005), (0.05 if not body.side else 0.035, 0.02),
                sc)
    if body.direction == 'front':
        fig.limb((0.018, y_sh), (0.025, y_sh + 0.11), 0.028, 0.03, sc)
    elif body.side:
        fig.limb((0.01, y_sh), (0.03, y_sh + 0.1), 0.024, 0.026, sc)


def _pedes_head_axes(body: Body) -> Tuple[float, float]:
    return (0.046 * (1 + (body.dims.build - 1) * 0.3), 0.066)


def _pedes_hair(fig: Canvas, body: Body, identity: 'Identity') -> None:
    """Hair on the head (and a bald crown's shine from behind)."""
    style = identity.hair_style
    hair, skin = identity.rgb['hair'], identity.rgb['skin']
    d, side, hy = body.direction, body.side, _PEDES_HY
    axes = _pedes_head_axes(body)
    if style == 'bald':
        if d == 'back':
            fig.ellipse((0.0, hy + 0.01), (axes[0] * 0.6, axes[1] * 0.4),
                        darker(skin, 0.92))
        return
    if style == 'hidden':
        return
    if d == 'back':
        fig.ellipse((0.0, hy - 0.004), (axes[0] * 1.07, axes[1]), hair)
    elif side:
        fig.ellipse((-0.006, hy - 0.012), (axes[0] * 1.02, axes[1] * 0.86),
                    hair)
        # the face in front of the ear, and the nose again on top
        fig.ellipse((0.018, hy + 0.012), (axes[0] * 0.78, axes[1] * 0.8),
                    skin)
        fig.ellipse((0.052, hy + 0.008), (0.008, 0.01), skin)
    else:
        draw_hairline(fig, hy, axes, style == 'buzz', (0.036, 0.024),
                      (0.9, hy - 0.012), hair)
    if style in ('long', 'medium') and d == 'back':
        end = 0.27 if style == 'long' else 0.18
        fig.poly([(-0.05, 0.07), (0.05, 0.07), (0.064, end), (-0.064, end)],
                 hair)
    if style == 'ponytail' and d != 'front':
        px = -0.045 if side else 0.0
        fig.limb((px, hy + 0.01), (px - (0.02 if side else 0.0), hy + 0.13),
                 0.03, 0.018, hair)
    if style == 'bun' and identity.headwear is None:
        bx = -0.04 if side else 0.0
        fig.ellipse((bx, hy - 0.062), (0.026, 0.022), hair)


def _pedes_glasses(fig: Canvas, body: Body, identity: 'Identity') -> None:
    if identity.glasses is None or body.direction == 'back':
        return
    frame = (20, 20, 22)
    lens = frame if identity.glasses == 'sunglasses' else darker(
        identity.rgb['skin'], 0.8)
    ey = _PEDES_HY + 0.002
    if body.side:
        fig.line([(-0.01, ey), (0.048, ey)], 0.007, frame)
        fig.ellipse((0.038, ey + 0.003), (0.011, 0.009), lens)
    else:
        fig.line([(-0.045, ey), (0.045, ey)], 0.007, frame)
        for sgn in (-1.0, 1.0):
            fig.ellipse((sgn * 0.02, ey + 0.003), (0.015, 0.01), frame)
            fig.ellipse((sgn * 0.02, ey + 0.003), (0.01, 0.006), lens)


def _pedes_headwear(fig: Canvas, body: Body, identity: 'Identity') -> None:
    if identity.headwear is None:
        return
    hc, hy = identity.rgb['headwear'], _PEDES_HY
    axes = _pedes_head_axes(body)
    if identity.headwear.kind == 'cap':
        fig.ellipse((0.0, hy - 0.02), (axes[0] * 1.08, 0.048),
                    hc,
                    arc=(180, 360))
        if body.side:
            fig.poly([(0.02, hy - 0.025), (0.085, hy - 0.02),
                      (0.08, hy - 0.01), (0.02, hy - 0.012)], darker(hc, 0.8))
        else:
            fig.ellipse((0.0, hy - 0.018), (axes[0] * 1.1, 0.012),
                        darker(hc, 0.8))
    else:
        fig.ellipse((0.0, hy - 0.02), (0.085, 0.014), darker(hc, 0.85))
        fig.ellipse((0.0, hy - 0.04), (axes[0] * 0.95, 0.04),
                    hc,
                    arc=(180, 360))
        fig.poly([(-axes[0] * 0.95, hy - 0.04), (axes[0] * 0.95, hy - 0.04),
                  (axes[0] * 0.95, hy - 0.022),
                  (-axes[0] * 0.95, hy - 0.022)], hc)


def _pedes_head(fig: Canvas, body: Body, identity: 'Identity') -> None:
    """Hair behind, neck, scarf, head, hair, glasses and headwear."""
    skin, y_sh, hy = identity.rgb['skin'], body.dims.y_shoulder, _PEDES_HY
    _pedes_hair_behind(fig, body, identity)
    fig.limb((0.0, 0.115), (0.0, y_sh + 0.01),
             0.038,
             0.042,
             darker(skin, 0.9),
             caps=False)
    _pedes_scarf(fig, body, identity)
    fig.ellipse((0.008 if body.side else 0.0, hy), _pedes_head_axes(body),
                skin)
    if body.side:
        fig.ellipse((0.052, hy + 0.008), (0.008, 0.01), skin)  # nose
    _pedes_hair(fig, body, identity)
    _pedes_glasses(fig, body, identity)
    _pedes_headwear(fig, body, identity)


def _pedes_backpack_behind(fig: Canvas, body: Body,
                           identity: 'Identity') -> None:
    """Seen from the front, the pack's sides peek out behind the
    shoulders."""
    if body.direction != 'front' or identity.backpack is None:
        return
    sw = body.dims.shoulder
    fig.poly([(-sw * 0.95, 0.2), (sw * 0.95, 0.2), (sw, 0.42), (-sw, 0.42)],
             darker(identity.rgb['backpack'], 0.8))


def _pedes_backpack(fig: Canvas, body: Body, identity: 'Identity') -> None:
    """The pack from behind or the side; its straps from the front."""
    if identity.backpack is None:
        return
    bp, torso_hw = identity.rgb['backpack'], body.torso_hw
    if body.direction == 'back':
        bwid = 0.085 * body.dims.build
        fig.poly([(-bwid, 0.19), (bwid, 0.19), (bwid * 1.02, 0.44),
                  (-bwid * 1.02, 0.44)], bp)
        fig.ellipse((0.0, 0.19), (bwid, 0.025), bp)
        fig.poly([(-bwid * 0.7, 0.34), (bwid * 0.7, 0.34), (bwid * 0.7, 0.42),
                  (-bwid * 0.7, 0.42)], darker(bp, 0.75))
    elif body.side:
        x0 = -torso_hw * 0.85
        fig.poly([(x0 + 0.01, 0.19), (x0 - 0.075, 0.2), (x0 - 0.08, 0.43),
                  (x0 + 0.01, 0.44)], bp)
        fig.line([(x0 + 0.01, 0.2), (torso_hw * 0.5, 0.19),
                  (torso_hw * 0.7, 0.33)], 0.016, darker(bp, 0.8))
    else:
        sw, y_sh = body.dims.shoulder, body.dims.y_shoulder
        for sgn in (-1.0, 1.0):
            fig.line([(sgn * sw * 0.55, y_sh - 0.008), (sgn * sw * 0.6, 0.36)],
                     0.02, darker(bp, 0.9))


def _bag_anchor(body: Body, identity: 'Identity') -> Tuple[bool, Point]:
    """Whether the bag is on the near side, and the hand holding it."""
    # the person's left is the image right when facing the camera
    bag, d = identity.bag, body.direction
    if body.side:
        near = (bag.side == 'right') == (d == 'right')
        return near, body.arms[1 if near else 0][2]
    sgn = 1.0 if (bag.side == 'left') == (d == 'front') else -1.0
    return True, body.arms[1 if sgn > 0 else 0][2]


def _pedes_bag(fig: Canvas, body: Body, identity: 'Identity',
               near_pass: bool) -> None:
    """A handbag or shoulder bag, when it is on the ``near_pass`` side."""
    bag = identity.bag
    if bag is None:
        return
    near, hand = _bag_anchor(body, identity)
    if near != near_pass:
        return
    bc, side = identity.rgb['bag'], body.side
    if bag.kind == 'handbag':
        x, y = hand[0], hand[1] + 0.055
        fig.line([(x - 0.02, y - 0.02), (x, hand[1] + 0.01),
                  (x + 0.02, y - 0.02)], 0.007, darker(bc, 0.7))
        fig.poly([(x - 0.04, y - 0.02), (x + 0.04, y - 0.02),
                  (x + 0.045, y + 0.045), (x - 0.045, y + 0.045)], bc)
    else:
        sw, y_sh = body.dims.shoulder, body.dims.y_shoulder
        sgn = 1.0 if hand[0] >= 0 else -1.0
        if side:
            sgn = -1.0 if not near else 0.3
        bx, by = sgn * (body.torso_hw + 0.035), 0.47
        strap_from = (-sgn * sw * 0.5, y_sh) if not side else (0.0, y_sh)
        fig.line([strap_from, (bx, by - 0.03)], 0.01, darker(bc, 0.75))
        fig.poly([(bx - 0.045, by - 0.035), (bx + 0.045, by - 0.035),
                  (bx + 0.045, by + 0.04), (bx - 0.045, by + 0.04)], bc)


def draw_pedestrian(img: np.ndarray, identity: 'Identity', view: 'View',
                    rng: np.random.Generator) -> None:
    """Draw a SynthPedes person as seen in ``view`` onto the uncropped
    frame, part by part in depth order.

    Args:
        img (np.ndarray): H x W x 3 uint8 RGB frame, drawn on in place.
        identity (Identity): The person.
        view (View): The view.
        rng (np.random.Generator): The image's render stream (patterns and
            logos draw from it).
    """
    h, w = img.shape[:2]
    # keep the whole figure (arms, bags) inside the frame at tall aspect
    # ratios such as 384 x 128, where the height alone would overflow
    p = min(view.scale * h, 2.8 * w)
    foot = view.foot_y * h
    cx = w / 2 + view.shift_x * w
    # side views are drawn facing +x (right) and mirrored for 'left'
    fig = Canvas(img, cx, foot - p, p, mirror=view.direction == 'left')
    body = _pedes_body(identity, view)
    if body.side:
        _pedes_arm(fig, body, identity, 1, 0.8)  # far arm
        _pedes_bag(fig, body, identity, False)
        _pedes_leg(fig, body, identity, 1, 0.82)  # far leg
        _pedes_leg(fig, body, identity, 0, 1.0)
        _pedes_lower(fig, body, identity)
        _pedes_upper(fig, body, identity, rng)
        _pedes_backpack(fig, body, identity)
        _pedes_arm(fig, body, identity, 0, 1.0)
        _pedes_bag(fig, body, identity, True)
        _pedes_head(fig, body, identity)
        return
    _pedes_backpack_behind(fig, body, identity)
    for i in (0, 1):
        _pedes_leg(fig, body, identity, i, 1.0)
    _pedes_lower(fig, body, identity)
    _pedes_upper(fig, body, identity, rng)
    for i in (0, 1):
        _pedes_arm(fig, body, identity, i, 1.0)
    if view.direction == 'back':
        _pedes_head(fig, body, identity)
        _pedes_backpack(fig, body, identity)
        _pedes_bag(fig, body, identity, True)
    else:
        _pedes_backpack(fig, body, identity)
        _pedes_bag(fig, body, identity, True)
        _pedes_head(fig, body, identity)


# ---------------------------------------------------------------------------
# SynthCC figure

_CC_SHOES = ShoeStyle(
    boot_height=0.055, boot_width=1.3, sole_front=0.03, sole_width=0.012)


@dataclasses.dataclass(frozen=True)
class _CCFigure:
    """What the SynthCC part functions share: the posed body, the person,
    their outfit and the head's size and place."""
    body: Body
    ident: 'CCIdentity'
    outfit: 'Outfit'
    head: Tuple[float, float]  # head half-axes
    hy: float  # head centre

    def is_left(self, i: int) -> bool:
        """Whether limb ``i`` is the person's left one (labels)."""
        # Facing the camera, the person's left is the image right (+x);
        # from behind it is the image left. Facing the image right, the
        # camera sees the person's right side (and the left side when
        # facing left), whose limbs are the near ones (i = 0).
        d = self.body.direction
        if self.body.side:
            near_is_left = d == 'left'
            return near_is_left if i == 0 else not near_is_left
        plus_is_left = d == 'front'
        return plus_is_left if i == 1 else not plus_is_left

    def shade(self, i: int) -> float:
        """The far limbs of side views are in shadow."""
        return FAR_SHADE if self.body.side and i == 1 else 1.0


def _cc_figure(ident: 'CCIdentity', outfit: 'Outfit',
               frame: 'Frame') -> _CCFigure:
    bw = ident.width
    y_hip, y_ankle = ident.leg, 0.955
    dims = Proportions(
        build=bw,
        shoulder=0.102 * bw,
        waist=0.082 * bw,
        hip=0.088 * bw,
        thigh=0.078 * bw,
        knee=0.056 * bw,
        ankle=0.04 * bw,
        arm=0.046 * bw,
        forearm=0.036 * bw,
        leg=(y_ankle - y_hip) / 2,
        y_shoulder=0.175,
        y_waist=y_hip - 0.085,
        y_hip=y_hip,
        y_knee=(y_hip + y_ankle) / 2,
        y_ankle=y_ankle)
    body = pose_body(dims, CC_GAIT, frame.direction, frame.stride,
                     frame.phase, frame.swing)
    head = (0.046 * ident.head * (1 + (bw - 1) * 0.3), 0.062 * ident.head)
    # head centre, just below the top of the figure
    return _CCFigure(body, ident, outfit, head, 0.004 + head[1])


def _cc_leg(cv: LabelCanvas, fg: _CCFigure, i: int) -> None:
    """Leg ``i``: skin or trouser leg, shorts, shoe (left/right labels)."""
    L, body, ident = LIP_LABELS, fg.body, fg.ident
    f, left = fg.shade(i), fg.is_left(i)
    lower, lower_rgb = fg.outfit.lower, fg.outfit.lower_colour
    leg_label = L['left_leg'] if left else L['right_leg']
    shoe_label = L['left_shoe'] if left else L['right_shoe']
    if lower == 'trousers':
        paint = (L['pants'], darker(lower_rgb, f))
    else:
        paint = (leg_label, darker(ident.skin, f))
    draw_leg(cv, body, i, paint, paint)
    if lower == 'shorts':
        draw_thigh_cover(cv, body, i, 0.55, (1.1, 1.04),
                         (L['pants'], darker(lower_rgb, f)))
    sole = SOLE_COLOURS[0 if sum(ident.shoe_colour) < 600 else 1]
    draw_shoe(cv, body, i, ident.shoes,
              (shoe_label, darker(ident.shoe_colour, f)),
              (shoe_label, darker(sole, f)), _CC_SHOES)


def _cc_lower(cv: LabelCanvas, fg: _CCFigure) -> None:
    """Skirt, or the pelvis of trousers and shorts."""
    L, body, outfit = LIP_LABELS, fg.body, fg.outfit
    side = body.side
    top_y = body.dims.y_waist + 0.03
    if outfit.lower == 'skirt':
        draw_skirt(cv, body, top_y, body.dims.y_knee + 0.02,
                   (0.95, 0.95) if not side else (0.6, 0.6),
                   1.45 if not side else 1.0,
                   (L['skirt'], outfit.lower_colour))
        return
    draw_pelvis(cv, body, top_y, body.dims.y_hip + 0.04, 0.95,
                (L['pants'], outfit.lower_colour))


def _cc_upper(cv: LabelCanvas, fg: _CCFigure) -> None:
    """The top (bare shoulders when sleeveless) and an optional coat."""
    L, body, outfit = LIP_LABELS, fg.body, fg.outfit
    side, hw = body.side, body.dims.hip
    upper, coat = outfit.upper_colour, outfit.coat_colour
    hem_y = body.dims.y_hip + 0.03
    hem_hw = body.torso_hw * 0.95 if side else hw * 1.02
    cv.poly(torso_outline(body, hem_y, hem_hw), (L['upper'], upper))
    if outfit.sleeves == 'none' and coat is None:

        def shoulder(sgn: float) -> tuple:
            # bare shoulders either side of the straps (arm labels)
            left = fg.is_left(0) if side else fg.is_left(1) == (sgn > 0)
            return (L['left_arm'] if left else L['right_arm'],
                    fg.ident.skin)

        draw_bare_shoulders(cv, body, shoulder)
    if coat is not None:
        c_hem = body.dims.y_knee - 0.03
        c_hw = body.torso_hw * 1.2 if side else hw * 1.3
        cv.poly(torso_outline(body, c_hem, c_hw, 1.06), (L['coat'], coat))
        if outfit.coat_open and body.direction == 'front':
            draw_open_front(cv, body, hem_y - 0.01, 0.3, (L['upper'], upper))


def _cc_arm(cv: LabelCanvas, fg: _CCFigure, i: int) -> None:
    """Arm ``i`` in the top's (or the coat's) sleeve."""
    L, outfit = LIP_LABELS, fg.outfit
    f = fg.shade(i)
    arm_label = L['left_arm'] if fg.is_left(i) else L['right_arm']
    if outfit.coat_colour is not None:
        sleeve = (L['coat'], darker(outfit.coat_colour, f))
        sleeves = 'long'
    else:
        sleeve = (L['upper'], darker(outfit.upper_colour, f))
        sleeves = outfit.sleeves
    draw_arm(cv, fg.body, i, sleeves, sleeve,
             (arm_label, darker(fg.ident.skin, f)), (0.02, 0.023))


def _cc_hair_behind(cv: LabelCanvas, fg: _CCFigure) -> None:
    """Long or medium hair hanging behind the shoulders (front views)."""
    style, ax, hy = fg.ident.hair_style, fg.head[0], fg.hy
    if style in ('long', 'medium') and fg.body.direction == 'front':
        end = 0.27 if style == 'long' else 0.19
        cv.poly([(-ax * 1.25, hy), (ax * 1.25, hy), (ax * 1.35, end),
                 (-ax * 1.35, end)],
                (LIP_LABELS['hair'], fg.ident.hair_colour))


def _cc_hair(cv: LabelCanvas, fg: _CCFigure, cx: float) -> None:
    """Hair on and around the head (a bald scalp stays face)."""
    style = fg.ident.hair_style
    hair = (LIP_LABELS['hair'], fg.ident.hair_colour)
    face = (LIP_LABELS['face'], fg.ident.skin)
    d, side, hy = fg.body.direction, fg.body.side, fg.hy
    ax, ay = fg.head
    if style == 'bald':
        pass
    elif d == 'back':
        cv.ellipse((0.0, hy - 0.004), (ax * 1.07, ay), hair)
    elif side:
        cv.ellipse((cx - 0.012, hy - 0.012), (ax * 1.02, ay * 0.86), hair)
        # the face shows in front of the ear
        cv.ellipse((cx + 0.016, hy + 0.014), (ax * 0.78, ay * 0.78), face)
        cv.ellipse((cx + ax * 1.05, hy + 0.01), (0.008, 0.01), face)
    else:
        draw_hairline(cv, hy, fg.head, style == 'buzz', (0.034, 0.022),
                      (0.92, hy - 0.01), hair)
    if style in ('long', 'medium') and d != 'front':
        end = 0.3 if style == 'long' else 0.2
        if side:
            # hangs behind the ear, never over the face
            cv.poly([(-ax * 1.0, hy - 0.01), (-ax * 0.1, hy - 0.01),
                     (-ax * 0.3, end), (-ax * 1.3, end - 0.01)], hair)
        else:
            cv.poly([(-ax, hy), (ax, hy), (ax * 1.25, end),
                     (-ax * 1.25, end)], hair)
    if style == 'long' and d == 'front':
        for sgn in (-1.0, 1.0):
            cv.limb((sgn * ax * 0.95, hy), (sgn * ax * 1.15, 0.25), 0.022,
                    0.026, hair)
    if style == 'ponytail' and d != 'front':
        px = -ax * 0.95 if side else 0.0
        cv.limb((px, hy), (px - (0.02 if side else 0.0), hy + 0.14), 0.03,
                0.018, hair)
    if style == 'bun':
        bx = -ax * 0.8 if side else 0.0
        cv.ellipse((bx, hy - ay * 0.95), (0.026, 0.022), hair)


def _cc_hat(cv: LabelCanvas, fg: _CCFigure, cx: float) -> None:
    """A cap or beanie (hat label)."""
    outfit = fg.outfit
    if outfit.hat is None:
        return
    L, side, hy = LIP_LABELS, fg.body.side, fg.hy
    ax, ay = fg.head
    hc = outfit.hat_colour
    if outfit.hat == 'cap':
        cv.ellipse((0.0 if not side else cx, hy - 0.014),
                   (ax * 1.1, ay * 0.78), (L['hat'], hc),
                   arc=(180, 360))
        if side:
            cv.poly([(cx, hy - 0.02), (cx + ax * 2.0, hy - 0.016),
                     (cx + ax * 1.9, hy - 0.004), (cx, hy - 0.006)],
                    (L['hat'], darker(hc, 0.8)))
        elif fg.body.direction == 'front':
            cv.ellipse((0.0, hy - 0.012), (ax * 1.12, 0.012),
                       (L['hat'], darker(hc, 0.8)))
    else:
        cv.ellipse((0.0 if not side else cx - 0.004, hy - 0.01),
                   (ax * 1.1, ay * 0.95), (L['hat'], hc),
                   arc=(180, 360))
        x = cx if side else 0.0
        cv.poly([(-ax * 1.1 + x, hy - 0.012), (ax * 1.1 + x, hy - 0.012),
                 (ax * 1.1 + x, hy + 0.002), (-ax * 1.1 + x, hy + 0.002)],
                (L['hat'], darker(hc, 0.85)))


def _cc_face_features(cv: LabelCanvas, fg: _CCFigure, cx: float) -> None:
    """Eyes, and a beard, moustache or mark."""
    # recolours face pixels only, so it runs after hair and hat
    face, ident, hy = LIP_LABELS['face'], fg.ident, fg.hy
    ax, ay = fg.head
    side = fg.body.side
    if side:
        eyes = [('ellipse', (cx + ax * 0.6, hy - 0.004), (0.007, 0.005))]
    else:
        eyes = [('ellipse', (sgn * ax * 0.45, hy - 0.004), (0.007, 0.005))
                for sgn in (-1.0, 1.0)]
    cv.recolour_within(face, EYE_COLOUR, eyes)
    fx = cx + (ax * 0.3 if side else 0.0)
    dark = darker(ident.hair_colour, 0.8)
    if ident.face == 'beard':
        cv.recolour_within(face, dark,
                           [('poly', [(fx - ax * 1.1, hy + ay * 0.45),
                                      (fx + ax * 1.1, hy + ay * 0.45),
                                      (fx + ax * 1.1, hy + ay * 1.2),
                                      (fx - ax * 1.1, hy + ay * 1.2)])])
    elif ident.face == 'moustache':
        cv.recolour_within(face, dark,
                           [('poly', [(fx - ax * 0.55, hy + ay * 0.3),
                                      (fx + ax * 0.55, hy + ay * 0.3),
                                      (fx + ax * 0.55, hy + ay * 0.48),
                                      (fx - ax * 0.55, hy + ay * 0.48)])])
    elif ident.face == 'mark':
        cv.recolour_within(face, MARK_COLOUR,
                           [('ellipse', (fx + ax * 0.5, hy + ay * 0.25),
                             (0.011, 0.011))])


def _cc_head(cv: LabelCanvas, fg: _CCFigure) -> None:
    """Neck, head, hair, hat and face features."""
    L, body, skin, hy = LIP_LABELS, fg.body, fg.ident.skin, fg.hy
    ax, ay = fg.head
    bw = body.dims.build
    cv.limb((0.0, hy + ay * 0.6), (0.0, body.dims.y_shoulder + 0.01),
            0.036 * bw,
            0.04 * bw, (L['face'], darker(skin, 0.92)),
            caps=False)
    cx = 0.006 if body.side else 0.0
    cv.ellipse((cx, hy), fg.head, (L['face'], skin))
    if body.side:
        cv.ellipse((cx + ax * 1.05, hy + 0.01), (0.008, 0.01),
                   (L['face'], skin))  # nose
    _cc_hair(cv, fg, cx)
    _cc_hat(cv, fg, cx)
    if body.direction != 'back':
        _cc_face_features(cv, fg, cx)


def draw_cc_figure(cv: LabelCanvas, ident: 'CCIdentity', outfit: 'Outfit',
                   frame: 'Frame') -> None:
    """Draw a SynthCC person, part by part in depth order.

    Args:
        cv (LabelCanvas): Canvas placed for the frame.
        ident (CCIdentity): The person.
        outfit (Outfit): What they wear.
        frame (Frame): The frame's view and pose.
    """
    fg = _cc_figure(ident, outfit, frame)
    if fg.body.side:
        _cc_arm(cv, fg, 1)  # far arm
        _cc_leg(cv, fg, 1)  # far leg
        _cc_leg(cv, fg, 0)
        _cc_lower(cv, fg)
        _cc_upper(cv, fg)
        _cc_arm(cv, fg, 0)
        _cc_head(cv, fg)
        return
    _cc_hair_behind(cv, fg)
    for i in (0, 1):
        _cc_leg(cv, fg, i)
    _cc_lower(cv, fg)
    _cc_upper(cv, fg)
    for i in (0, 1):
        _cc_arm(cv, fg, i)
    _cc_head(cv, fg)


# ---------------------------------------------------------------------------
# backgrounds


def vertical_gradient(top: np.ndarray, bottom: np.ndarray, t: np.ndarray,
                      width: int) -> np.ndarray:
    """A wall shading from ``top`` to ``bottom`` colour.

    Args:
        top, bottom (np.ndarray): RGB at ``t = 0`` and ``t = 1``.
        t (np.ndarray): ``H x 1 x 1`` position of each row, in [0, 1]; its
            dtype is the result's.
        width (int): Image width.

    Returns:
        np.ndarray: ``H x width x 3``.
    """
    return top + (bottom - top) * t * np.ones((1, width, 1), t.dtype)


def ground_ramp(colour: np.ndarray, gy: np.ndarray,
                width: int) -> np.ndarray:
    """A ground plane brightening towards the camera (``gy``: ``G x 1 x 1``
    row positions in [0, 1], whose dtype is the result's)."""
    return colour * (0.85 + 0.3 * gy) * np.ones((1, width, 1), gy.dtype)


#: SynthPedes scenery per camera: (wall styles, ground styles, warm/cool
#: colour cast). Camera a looks like an indoor hall, b a street, c a park.
_CAMERA_SCENES = {
    'a': (('plain', 'tiles', 'panels'), ('tiles', 'plain'), (1.06, 1.0, 0.9)),
    'b':
    (('facade', 'bricks', 'shops'), ('asphalt', 'tiles'), (0.96, 1.0, 1.06)),
    'c':
    (('foliage', 'plain', 'facade'), ('grass', 'asphalt'), (1.0, 1.04, 0.95)),
}


def _low_freq_noise(rng: np.random.Generator,
                    h: int,
                    w: int,
                    cells: Tuple[int, int],
                    channels: int = 1) -> np.ndarray:
    """Smooth float32 noise in [0, 1] (SynthPedes: bicubic upsampling)."""
    small = rng.random((cells[0], cells[1], channels)).astype(np.float32)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels)


def _smooth_noise(rng: np.random.Generator, h: int, w: int,
                  cells: Tuple[int, int]) -> np.ndarray:
    """Bilinearly interpolated random grid in [0, 1], float64 (SynthCC:
    elementwise arithmetic only, so it is bit-identical on every
    machine)."""
    grid = rng.random((cells[0] + 1, cells[1] + 1))
    ys = np.arange(h, dtype=np.float64) * (cells[0] / max(1, h - 1))
    xs = np.arange(w, dtype=np.float64) * (cells[1] / max(1, w - 1))
    y0 = np.minimum(ys.astype(np.int64), cells[0] - 1)
    x0 = np.minimum(xs.astype(np.int64), cells[1] - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    g00 = grid[y0][:, x0]
    g01 = grid[y0][:, x0 + 1]
    g10 = grid[y0 + 1][:, x0]
    g11 = grid[y0 + 1][:, x0 + 1]
    return (g00 * (1 - fy) * (1 - fx) + g01 * (1 - fy) * fx + g10 * fy *
            (1 - fx) + g11 * fy * fx)


def _random_colour(rng: np.random.Generator,
                   lo: int = 40,
                   hi: int = 220) -> np.ndarray:
    base = rng.uniform(lo, hi)
    tint = rng.normal(0, 25, size=3)
    return np.clip(base + tint, 0, 255).astype(np.float32)


def _street_background(rng: np.random.Generator, h: int, w: int, camera: str,
                       foot_y: float) -> np.ndarray:
    """SynthPedes' street scene: textured wall, ground plane, clutter.
    float32 RGB, drawn afresh for every image."""
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
    img = vertical_gradient(c1, c2, yy, w)
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
        ground = ground_ramp(gc, gy, w)
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


@functools.lru_cache(maxsize=32)
def _panorama(seed: int, camera: 'Camera', h: int, w: int) -> np.ndarray:
    """SynthCC: the camera's whole scene, ``h x 2w`` float64 RGB (cached,
    read-only: one per camera and image size)."""
    pw = 2 * w
    rng = make_rng(seed, CC_STREAM_CAMERA, camera.camid, 1)
    yy = np.arange(h, dtype=np.float64)[:, None]
    xx = np.arange(pw, dtype=np.float64)[None, :]
    top, bottom = (np.asarray(c, np.float64) for c in camera.wall)
    img = vertical_gradient(top, bottom, (yy / max(1, h - 1))[:, :, None],
                            pw)
    accent = np.asarray(camera.accent, np.float64)
    period = max(3.0, camera.period * h)
    scene = camera.scene
    if scene == 'bricks':
        bh, bwid = period * 0.45, period
        offs = np.floor(yy / bh) % 2 * bwid / 2
        mortar = (yy % bh < 1.0) | ((xx + offs) % bwid < 1.0)
        img = np.where(mortar[:, :, None], accent, img)
    elif scene == 'tiles':
        grid = (yy % period < 1.0) | (xx % period < 1.0)
        img = np.where(grid[:, :, None], img * 0.6 + accent * 0.4, img)
    elif scene == 'panels':
        band = (xx % (2 * period)) < period
        img = np.where(band[:, :, None], img * 0.75 + accent * 0.25, img)
    elif scene == 'shops':
        edges = np.sort(rng.uniform(0, pw, size=3))
        for k, e in enumerate(edges):
            c = np.clip(accent * (0.6 + 0.3 * k) + 30 * k, 0, 255)
            img = np.where((xx > e)[:, :, None], img * 0.4 + c * 0.6, img)
    elif scene == 'foliage':
        blobs = _smooth_noise(rng, h, pw, (6, 8))[:, :, None]
        img = img * (0.55 + 0.7 * blobs)
    img = img + (_smooth_noise(rng, h, pw, (10, 12))[:, :, None] - 0.5) * 20
    horizon = int(round(camera.horizon * h))
    if horizon < h:
        ground = np.asarray(camera.ground, np.float64)
        g = h - horizon
        gy = (np.arange(g, dtype=np.float64) / max(1, g))[:, None, None]
        img[horizon:] = ground_ramp(ground, gy, pw)
        img[horizon:horizon + 1] *= 0.7  # kerb
    img.setflags(write=False)
    return img


def _camera_background(seed: int, camera: 'Camera', frame: 'Frame', h: int,
                       w: int) -> np.ndarray:
    """SynthCC: the camera's scene as seen in the frame's crop, float64."""
    # the scene is a fixed panorama twice as wide as the crop; the frame's
    # offset says where the person (and so the crop) is
    x0 = int(frame.bg_offset * w)
    return _panorama(seed, camera, h, w)[:, x0:x0 + w]


# ---------------------------------------------------------------------------
# camera effects and the two renderers


def _post_process(img: np.ndarray, view: 'View', rng: np.random.Generator,
                  out_hw: Tuple[int, int]) -> np.ndarray:
    """SynthPedes: crop, camera colour cast, exposure, blur and noise;
    uint8 out."""
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


def render_view(identity: 'Identity', view: 'View', img_size: Tuple[int,
                                                                    int],
                seed: int) -> np.ndarray:
    """Render one SynthPedes image of ``identity`` seen in ``view``.

    Args:
        identity (Identity): The person.
        view (View): The view.
        img_size (tuple[int, int]): Output ``(height, width)``, at least
            :data:`MIN_IMG_SIZE`.
        seed (int): Dataset seed (the background, texture and noise are
            drawn from ``(seed, pid, view index)``).

    Returns:
        np.ndarray: ``H x W x 3`` uint8 RGB image.
    """
    h, w = check_img_size(img_size)
    rng = make_rng(seed, STREAM_RENDER, identity.pid, view.index)
    bg = _street_background(rng, h, w, view.camera, view.foot_y)
    img = np.clip(bg + 0.5, 0, 255).astype(np.uint8)
    # contact shadow under the feet
    shadow = np.zeros((h, w), np.uint8)
    p = min(view.scale * h, 2.8 * w)
    cv2.ellipse(shadow, (int(
        (w / 2 + view.shift_x * w) * _ONE), int(view.foot_y * h * _ONE)),
                (int(0.13 * p * _ONE), int(0.022 * p * _ONE)), 0, 0, 360, 110,
                -1, cv2.LINE_AA, _SHIFT)
    img = (img.astype(np.float32) * (1.0 - shadow[:, :, None] *
                                     (1.0 / 255.0))).astype(np.uint8)
    draw_pedestrian(img, identity, view, rng)
    return _post_process(img, view, rng, (h, w))


@dataclasses.dataclass
class CCRender:
    """A rendered SynthCC image with its labels.

    Attributes:
        image (np.ndarray): H x W x 3 uint8 RGB.
        labels (np.ndarray): H x W uint8 LIP labels.
        background (np.ndarray): H x W x 3 uint8 RGB: the same frame
            without the person (what the image shows where ``labels == 0``).
    """
    image: np.ndarray
    labels: np.ndarray
    background: np.ndarray


def _lighting(camera: 'Camera', frame: 'Frame', h: int,
              w: int) -> np.ndarray:
    """SynthCC: per-pixel RGB gain (colour cast, exposure, fall-off)."""
    gx = np.linspace(-1.0, 1.0, w, dtype=np.float64)[None, :, None]
    gain = (
        np.asarray(camera.gain) * np.asarray(frame.light) * camera.brightness)
    return gain[None, None, :] * (1.0 + camera.slope * gx) * np.ones((h, 1, 1))


def _apply_pattern(img: np.ndarray, cv: LabelCanvas, outfit: 'Outfit',
                   torso_top: float, period_px: float) -> None:
    """Stripes / checks / a chest band on the visible upper-clothes pixels
    (their label does not change)."""
    if outfit.pattern == 'plain':
        return
    region = cv.labels == LIP_LABELS['upper']
    if not region.any():
        return
    h, w = region.shape
    yy = np.floor(np.arange(h)[:, None] - torso_top).astype(np.int64)
    xx = np.floor(np.arange(w)[None, :] - cv.cx).astype(np.int64)
    period = max(2, int(round(period_px)))
    if outfit.pattern == 'stripes':
        mask = (np.floor_divide(yy, period) % 2 == 1) & np.ones((1, w), bool)
    elif outfit.pattern == 'checks':
        mask = (yy % (2 * period) == 0) | (xx % (2 * period) == 0)
    else:  # band across the chest
        band = max(2, int(round(period_px * 1.5)))
        mask = ((yy >= 2 * period) & (yy < 2 * period + band)) & np.ones(
            (1, w), bool)
    img[region & mask] = outfit.pattern_colour


def render_cc_view(identity: 'CCIdentity',
                   outfit: 'Outfit',
                   camera: 'Camera',
                   frame: 'Frame',
                   img_size: Tuple[int, int],
                   seed: int,
                   effects: bool = True) -> CCRender:
    """Render one SynthCC image and its LIP label map.

    Args:
        identity (CCIdentity): The person.
        outfit (Outfit): What they wear.
        camera (Camera): The camera.
        frame (Frame): The frame (view, pose, framing, lighting jitter).
        img_size (tuple[int, int]): ``(height, width)``, at least
            :data:`MIN_IMG_SIZE`.
        seed (int): Dataset seed (the scene texture and the noise).
        effects (bool): Apply the camera's lighting and sensor noise. With
            False the person's pixels are exactly the attribute colours
            (for checking the labels). Defaults to True.

    Returns:
        CCRender: Image, labels and the person-free background.
    """
    h, w = check_img_size(img_size)
    # keep the figure (arms included) inside tall-and-narrow frames
    p = min(camera.scale * identity.height * frame.scale * h, 2.6 * w)
    foot = (camera.foot_y + frame.shift_y) * h
    cx = w / 2 + frame.shift_x * w
    cv = LabelCanvas(h, w, cx, foot - p, p, mirror=frame.direction == 'left')
    draw_cc_figure(cv, identity, outfit, frame)

    palette = np.asarray(cv.palette, np.float64)
    person = palette[cv.parts]
    _apply_pattern(person, cv, outfit, cv.top + 0.19 * p, 0.03 * p)
    bg = _camera_background(seed, camera, frame, h, w)
    img = np.where((cv.labels == 0)[:, :, None], bg, person)
    if effects:
        light = _lighting(camera, frame, h, w)
        noise = make_rng(seed, CC_STREAM_RENDER, *frame.key).standard_normal(
            (h, w, 3)) * frame.noise
        img = img * light + noise
        bg = bg * light + noise
    return CCRender(
        image=np.clip(np.round(img), 0, 255).astype(np.uint8),
        labels=cv.labels,
        background=np.clip(np.round(bg), 0, 255).astype(np.uint8))
