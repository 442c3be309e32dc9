"""SynthCC v2's renderer: a fuller figure framed like a detector box, drawn
large and area-downsampled, in front of a background drawn per frame from a
pool of scenes that every camera shares.

Only SynthCC v2 (:mod:`.synth_cc_v2`) calls this module; it reuses the
shared pieces of :mod:`.renderer` (:class:`~.renderer.LabelCanvas`,
:func:`~.renderer.pose_body`, SynthCC's leg / lower / upper / arm / hat /
face-feature part functions, which take any person and outfit with
SynthCC's attribute names) and adds what v2 changes, without touching any
v1 code path:

* **proportions**: broader shoulders, hips and limbs (a real person's
  shoulders are about a quarter of their height), a head whose size is an
  identity cue (:func:`figure_v2`);
* **hair** visible from every side, with volume (:func:`draw_hair_v2`), so
  that it spans whole patches;
* **framing** (:func:`detector_box`): the person is drawn at
  :data:`RENDER_SCALE` times the output size, the box is the tight box of
  the figure with a detector's jittered margins (widened where it is
  more than :data:`MAX_BOX_ASPECT` times taller than wide), and it is
  resized to the output size without keeping the aspect ratio, as ReID
  crops are;
* **background** (:func:`scene_background`): a scene of a pool shared by
  every camera, seen at a per-frame offset, zoom and flip;
* **area downsampling**: the composite is averaged over
  ``RENDER_SCALE x RENDER_SCALE`` blocks, and each output pixel's label is
  the label covering most of its block (ties: the smaller label id), so
  edges are anti-aliased and the masks are what a good parser would give.

Camera effects (a mild per-camera colour cast and noise level, per-frame
exposure) act per pixel, on the person and the background alike.
"""
import dataclasses
import math
from typing import TYPE_CHECKING, Sequence, Tuple

import numpy as np

from .renderer import (LIP_LABELS, RGB, CCRender, Gait, LabelCanvas,
                       Proportions, _cc_arm, _cc_face_features, _cc_hat,
                       _cc_leg, _cc_lower, _cc_upper, _CCFigure,
                       check_img_size, darker, ground_ramp, pose_body,
                       vertical_gradient)
from .seeding import CC2_STREAM_RENDER, CC2_STREAM_SCENE, make_rng

if TYPE_CHECKING:  # the attribute models import this module
    from .synth_cc_v2 import CameraV2, FrameV2, IdentityV2, OutfitV2

__all__ = [
    'RENDER_SCALE', 'MAX_BOX_ASPECT', 'GAIT_V2', 'SCENE_STYLES', 'Scene',
    'sample_scene', 'scene_background', 'figure_v2', 'draw_hair_v2',
    'draw_cc_v2_figure', 'detector_box', 'block_labels', 'render_cc_v2_view'
]

#: The figure and the background are drawn this many times larger than the
#: output (per side), then averaged down.
RENDER_SCALE = 4
#: Largest height / width of the detector box: narrower boxes (people seen
#: from the side) are widened to it.
MAX_BOX_ASPECT = 3.2

#: SynthCC v2's gait: shorter strides than v1, so that the side views'
#: boxes stay compact.
GAIT_V2 = Gait(
    leg_swing=0.28,
    arm_swing=0.36,
    upper_arm=0.165,
    forearm=0.15,
    spread=(0.01, 0.03),
    hip_x=0.056,
    arm_out_build=0.8,
    shoulder_x=0.9,
    ground=0.955,
    ground_gap=0.0)

#: Background styles of the scene pool.
SCENE_STYLES = ('plain', 'bricks', 'tiles', 'panels', 'shops', 'foliage',
                'windows', 'fence')

# ---------------------------------------------------------------------------
# scenes


@dataclasses.dataclass(frozen=True)
class Scene:
    """A background of the pool (any camera may show it).

    Attributes:
        index (int): Index in the pool; seeds the scene's texture.
        style (str): One of :data:`SCENE_STYLES`.
        wall (tuple): Two wall RGBs (top, bottom of the gradient).
        accent (tuple): RGB of the texture (mortar, tiles, shop fronts).
        ground (tuple): Ground RGB.
        horizon (float): Ground line, fraction of the image height.
        period (float): Texture period, fraction of the image height.
    """
    index: int
    style: str
    wall: Tuple[RGB, RGB]
    accent: RGB
    ground: RGB
    horizon: float
    period: float

    def to_dict(self) -> dict:
        """The scene as JSON-able values."""
        d = dataclasses.asdict(self)
        return {
            k: [list(c) for c in v] if k == 'wall' else
            (list(v) if isinstance(v, tuple) else v)
            for k, v in d.items()
        }


def sample_scene(seed: int, index: int) -> Scene:
    """Draw scene ``index`` of the pool (depends on ``(seed, index)``)."""
    rng = make_rng(seed, CC2_STREAM_SCENE, index)
    style = SCENE_STYLES[index % len(SCENE_STYLES)]

    def colour(lo: float, hi: float, tint: float = 24.0) -> RGB:
        base = rng.uniform(lo, hi)
        shift = rng.normal(0.0, tint, size=3)
        return tuple(int(v) for v in np.clip(base + shift, 0, 255).round())

    wall = (colour(60, 215), colour(50, 200))
    if style == 'foliage':
        wall = ((int(rng.uniform(40, 100)), int(rng.uniform(90, 170)),
                 int(rng.uniform(40, 90))), wall[1])
    return Scene(
        index=index,
        style=style,
        wall=wall,
        accent=colour(30, 225, 40.0),
        ground=colour(50, 180),
        horizon=float(rng.uniform(0.62, 0.86)),
        period=float(rng.uniform(0.05, 0.14)))


def _grid_noise(grid: np.ndarray, ys: np.ndarray,
                xs: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of ``grid`` at rows ``ys`` and columns ``xs``
    (grid units); elementwise float64 arithmetic only."""
    gy, gx = grid.shape[0] - 1, grid.shape[1] - 1
    ys = np.clip(ys, 0, gy - 1e-9)
    xs = np.clip(xs, 0, gx - 1e-9)
    y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    g00 = grid[y0][:, x0]
    g01 = grid[y0][:, x0 + 1]
    g10 = grid[y0 + 1][:, x0]
    g11 = grid[y0 + 1][:, x0 + 1]
    return (g00 * (1 - fy) * (1 - fx) + g01 * (1 - fy) * fx + g10 * fy *
            (1 - fx) + g11 * fy * fx)


def scene_background(seed: int, scene: Scene, offset: float, zoom: float,
                     flip: bool, h: int, w: int) -> np.ndarray:
    """The part of ``scene`` a frame shows, ``h x w`` float64 RGB.

    The scene is a panorama three crops wide; ``offset`` in [0, 1) says
    where the crop starts, ``zoom`` scales the texture and moves the
    horizon, ``flip`` mirrors the crop.
    """
    rng = make_rng(seed, CC2_STREAM_SCENE, scene.index, 1)
    pw = 3 * w
    x0 = offset * 2 * w
    yy = np.arange(h, dtype=np.float64)[:, None]
    xx = (np.arange(w, dtype=np.float64) + x0)[None, :] / zoom
    yz = yy / zoom
    top, bottom = (np.asarray(c, np.float64) for c in scene.wall)
    img = vertical_gradient(top, bottom, (yy / max(1, h - 1))[:, :, None], w)
    accent = np.asarray(scene.accent, np.float64)
    period = max(3.0, scene.period * h)
    line = max(1.0, h / 128.0)  # 1 output pixel wide at the render scale
    style = scene.style
    if style == 'bricks':
        bh, bwid = period * 0.45, period
        offs = np.floor(yz / bh) % 2 * bwid / 2
        mortar = (yz % bh < line) | ((xx + offs) % bwid < line)
        img = np.where(mortar[:, :, None], accent, img)
    elif style == 'tiles':
        grid = (yz % period < line) | (xx % period < line)
        img = np.where(grid[:, :, None], img * 0.5 + accent * 0.5, img)
    elif style == 'panels':
        band = (xx % (2 * period)) < period
        img = np.where(band[:, :, None], img * 0.7 + accent * 0.3, img)
    elif style == 'shops':
        edges = np.sort(rng.uniform(0, pw, size=4))
        for k, e in enumerate(edges):
            c = np.clip(accent * (0.5 + 0.25 * k) + 25 * k, 0, 255)
            img = np.where((xx > e)[:, :, None], img * 0.4 + c * 0.6, img)
    elif style == 'foliage':
        grid = rng.random((9, 28))
        blobs = _grid_noise(grid, yz[:, 0] * 8 / h, xx[0] * 27 / pw)
        img = img * (0.5 + 0.8 * blobs[:, :, None])
    elif style == 'windows':
        cell = period * 2.2
        inside = ((yz % cell) > cell * 0.2) & ((xx % cell) > cell * 0.25)
        img = np.where(inside[:, :, None], img * 0.35 + accent * 0.65, img)
    elif style == 'fence':
        bars = (xx % period) < period * 0.35
        img = np.where(bars[:, :, None], accent, img)
    grid = rng.random((11, 31))
    noise = _grid_noise(grid, yy[:, 0] * 10 / h, xx[0] * 30 / pw)
    img = img + (noise[:, :, None] - 0.5) * 24
    horizon = int(round((scene.horizon + (zoom - 1.0) * 0.3) * h))
    if horizon < h:
        ground = np.asarray(scene.ground, np.float64)
        g = h - horizon
        gy = (np.arange(g, dtype=np.float64) / max(1, g))[:, None, None]
        img[horizon:] = ground_ramp(ground, gy, w)
        img[horizon:horizon + int(line)] *= 0.7  # kerb
    if flip:
        img = img[:, ::-1]
    return img


# ---------------------------------------------------------------------------
# the figure


def figure_v2(ident: 'IdentityV2', outfit: 'OutfitV2',
              frame: 'FrameV2') -> _CCFigure:
    """The posed v2 figure: SynthCC's part functions read it."""
    bw = ident.build
    y_hip, y_ankle = ident.leg, 0.955
    head = (0.053 * ident.head * (1 + (bw - 1) * 0.3), 0.07 * ident.head)
    hy = 0.006 + head[1]
    y_sh = hy + head[1] + 0.05
    # seen from the side, the torso is ``0.55 * shoulder`` deep
    # (pose_body): clothed bodies are deeper than that
    side = frame.direction in ('left', 'right')
    dims = Proportions(
        build=bw,
        shoulder=0.128 * bw * (1.3 if side else 1.0),
        waist=0.104 * bw,
        hip=0.114 * bw,
        thigh=0.098 * bw,
        knee=0.07 * bw,
        ankle=0.05 * bw,
        arm=0.06 * bw,
        forearm=0.047 * bw,
        leg=(y_ankle - y_hip) / 2,
        y_shoulder=y_sh,
        y_waist=y_hip - 0.09,
        y_hip=y_hip,
        y_knee=(y_hip + y_ankle) / 2,
        y_ankle=y_ankle)
    body = pose_body(dims, GAIT_V2, frame.direction, frame.stride, frame.phase,
                     frame.swing)
    return _CCFigure(body, ident, outfit, head, hy)


def _hair_behind_v2(cv: LabelCanvas, fg: _CCFigure) -> None:
    """Long or medium hair hanging behind the shoulders (front views)."""
    style, ax, hy = fg.ident.hair_style, fg.head[0], fg.hy
    if style in ('long', 'medium') and fg.body.direction == 'front':
        end = 0.3 if style == 'long' else 0.22
        cv.poly([(-ax * 1.3, hy), (ax * 1.3, hy), (ax * 1.45, end),
                 (-ax * 1.45, end)],
                (LIP_LABELS['hair'], fg.ident.hair_colour))


def draw_hair_v2(cv: LabelCanvas, fg: _CCFigure, cx: float) -> None:
    """Hair on and around the head, seen from any side (a bald scalp stays
    face). Every style but ``bald`` covers the top and back of the head
    with some volume, so hair shows in front, back and side views."""
    style = fg.ident.hair_style
    if style == 'bald':
        return
    hair = (LIP_LABELS['hair'], fg.ident.hair_colour)
    face = (LIP_LABELS['face'], fg.ident.skin)
    d, side, hy = fg.body.direction, fg.body.side, fg.hy
    ax, ay = fg.head
    vol = {'curly': 1.3, 'buzz': 1.02}.get(style, 1.1)
    short = style in ('buzz', 'short', 'curly')
    if d == 'back':
        cv.ellipse((0.0, hy - 0.004), (ax * vol, ay * 1.03), hair)
        nape = hy + ay * (0.5 if short else 0.85)
        cv.poly([(-ax * vol * 0.92, hy), (ax * vol * 0.92, hy),
                 (ax * 0.8, nape), (-ax * 0.8, nape)], hair)
    elif side:
        cv.ellipse((cx - 0.014, hy - 0.012), (ax * vol, ay * 0.92), hair)
        cv.ellipse((cx - ax * 0.45, hy + ay * 0.25),
                   (ax * 0.6, ay * (0.45 if short else 0.7)), hair)
        # the face in front of the ear, and the nose
        cv.ellipse((cx + 0.018, hy + 0.016), (ax * 0.76, ay * 0.78), face)
        cv.ellipse((cx + ax * 1.05, hy + 0.01), (0.009, 0.011), face)
    else:
        line = hy - ay * (0.5 if style == 'buzz' else 0.3)
        cv.ellipse((0.0, line), (ax * vol, line - hy + ay * 1.05 + 0.008),
                   hair,
                   arc=(180, 360))
        if style != 'buzz':
            for sgn in (-1.0, 1.0):
                cv.ellipse((sgn * ax * 0.95, hy - ay * 0.1),
                           (ax * 0.28, ay * 0.45), hair)
    if style in ('long', 'medium'):
        end = 0.3 if style == 'long' else 0.21
        if d == 'front':
            # curtains framing the face, falling on the shoulders
            for sgn in (-1.0, 1.0):
                cv.poly([(sgn * ax * 0.78, hy - ay * 0.3),
                         (sgn * ax * 1.3, hy - ay * 0.3),
                         (sgn * ax * 1.45, end), (sgn * ax * 0.95, end)], hair)
        elif side:
            cv.poly([(-ax * 1.05, hy - 0.01), (-ax * 0.05, hy - 0.01),
                     (-ax * 0.3, end), (-ax * 1.35, end - 0.01)], hair)
        else:
            cv.poly([(-ax * 1.05, hy), (ax * 1.05, hy), (ax * 1.35, end),
                     (-ax * 1.35, end)], hair)
    if style == 'ponytail' and d != 'front':
        px = -ax * 1.0 if side else 0.0
        cv.limb((px, hy - 0.01), (px - (0.025 if side else 0.0), hy + 0.17),
                0.04, 0.024, hair)
    if style == 'bun':
        bx = -ax * 0.85 if side else 0.0
        cv.ellipse((bx, hy - ay * 0.95), (0.032, 0.028), hair)


def _head_v2(cv: LabelCanvas, fg: _CCFigure) -> None:
    """Neck, head, hair, hat and face features."""
    L, body, skin, hy = LIP_LABELS, fg.body, fg.ident.skin, fg.hy
    ay = fg.head[1]
    bw = body.dims.build
    cv.limb((0.0, hy + ay * 0.6), (0.0, body.dims.y_shoulder + 0.01),
            0.046 * bw,
            0.052 * bw, (L['face'], darker(skin, 0.92)),
            caps=False)
    cx = 0.006 if body.side else 0.0
    cv.ellipse((cx, hy), fg.head, (L['face'], skin))
    draw_hair_v2(cv, fg, cx)
    _cc_hat(cv, fg, cx)
    if body.direction != 'back':
        _cc_face_features(cv, fg, cx)


def _pattern_v2(cv: LabelCanvas, fg: _CCFigure) -> None:
    """The top's pattern, recolouring its visible pixels (labels stay):
    horizontal stripes, a chest band, a two-tone bottom half, or checks."""
    outfit, body = fg.outfit, fg.body
    pattern = outfit.pattern
    if pattern == 'plain':
        return
    y0, y1 = body.dims.y_shoulder - 0.02, body.dims.y_hip + 0.05
    span = 0.6
    period = 0.044
    shapes = []
    if pattern in ('stripes', 'checks'):
        y = y0 + period / 2
        while y < y1:
            shapes.append(('poly', [(-span, y), (span, y),
                                    (span, y + period / 2),
                                    (-span, y + period / 2)]))
            y += period
    if pattern == 'checks':
        x = -span
        while x < span:
            shapes.append(('poly', [(x, y0), (x + period / 2, y0),
                                    (x + period / 2, y1), (x, y1)]))
            x += period
    elif pattern == 'band':
        yb = body.dims.y_shoulder + 0.06
        shapes.append(('poly', [(-span, yb), (span, yb), (span, yb + 0.06),
                                (-span, yb + 0.06)]))
    elif pattern == 'two-tone':
        yt = (body.dims.y_shoulder + body.dims.y_hip) / 2
        shapes.append(('poly', [(-span, yt), (span, yt), (span, y1),
                                (-span, y1)]))
    cv.recolour_within(LIP_LABELS['upper'], outfit.pattern_colour, shapes)


def draw_cc_v2_figure(cv: LabelCanvas, ident: 'IdentityV2', outfit: 'OutfitV2',
                      frame: 'FrameV2') -> None:
    """Draw a SynthCC v2 person, part by part in depth order.

    Args:
        cv (LabelCanvas): Canvas placed for the figure.
        ident (IdentityV2): The person.
        outfit (OutfitV2): What they wear.
        frame (FrameV2): The view and pose.
    """
    fg = figure_v2(ident, outfit, frame)
    if fg.body.side:
        _cc_arm(cv, fg, 1)  # far arm
        _cc_leg(cv, fg, 1)  # far leg
        _cc_leg(cv, fg, 0)
        _cc_lower(cv, fg)
        _cc_upper(cv, fg)
        _cc_arm(cv, fg, 0)
    else:
        _hair_behind_v2(cv, fg)
        for i in (0, 1):
            _cc_leg(cv, fg, i)
        _cc_lower(cv, fg)
        _cc_upper(cv, fg)
        for i in (0, 1):
            _cc_arm(cv, fg, i)
    _head_v2(cv, fg)
    _pattern_v2(cv, fg)


# ---------------------------------------------------------------------------
# framing, labels, the renderer


def detector_box(
        labels: np.ndarray,
        margins: Sequence[float]) -> Tuple[float, float, float, float]:
    """A detector-like box around the figure in ``labels``.

    Args:
        labels (np.ndarray): The figure's label map (0: background).
        margins (Sequence[float]): ``(top, bottom, extra width, left
            share)``: the top and bottom margins as fractions of the
            figure's height, the extra width as a fraction of its width
            and the share of that extra on the left.

    Returns:
        tuple: ``(x0, y0, x1, y1)`` in canvas pixels (may reach outside
        the canvas); ``(y1 - y0) / (x1 - x0) <= MAX_BOX_ASPECT``.
    """
    rows = np.flatnonzero(labels.any(1))
    cols = np.flatnonzero(labels.any(0))
    top, bottom = float(rows[0]), float(rows[-1] + 1)
    left, right = float(cols[0]), float(cols[-1] + 1)
    mt, mb, extra, share = margins
    fh, fw = bottom - top, right - left
    y0, y1 = top - mt * fh, bottom + mb * fh
    width = max(fw * (1.0 + extra), (y1 - y0) / MAX_BOX_ASPECT)
    x0 = left - (width - fw) * share
    return x0, y0, x0 + width, y1


def _crop_nearest(img: np.ndarray, box: Tuple[float, float, float, float],
                  out_h: int, out_w: int) -> np.ndarray:
    """Sample ``img`` (H x W) over ``box`` on an ``out_h x out_w`` grid
    (pixel centres, nearest neighbour; outside the image: 0)."""
    x0, y0, x1, y1 = box
    ys = np.floor(y0 + (np.arange(out_h) + 0.5) * (y1 - y0) / out_h)
    xs = np.floor(x0 + (np.arange(out_w) + 0.5) * (x1 - x0) / out_w)
    ys, xs = ys.astype(np.int64), xs.astype(np.int64)
    h, w = img.shape
    vy, vx = (ys >= 0) & (ys < h), (xs >= 0) & (xs < w)
    out = img[np.clip(ys, 0, h - 1)][:, np.clip(xs, 0, w - 1)]
    out[~vy] = 0
    out[:, ~vx] = 0
    return out


def block_labels(labels: np.ndarray, s: int) -> np.ndarray:
    """Per ``s x s`` block, the label covering most of it (ties: the
    smaller id); ``labels`` is ``(h*s) x (w*s)``."""
    hh, ww = labels.shape
    h, w = hh // s, ww // s
    n = int(labels.max()) + 1
    counts = np.zeros((h, w, n), np.int32)
    blocks = labels.reshape(h, s, w, s)
    for k in np.unique(labels):
        counts[:, :, k] = (blocks == k).sum(axis=(1, 3))
    return counts.argmax(2).astype(np.uint8)


def render_cc_v2_view(identity: 'IdentityV2',
                      outfit: 'OutfitV2',
                      camera: 'CameraV2',
                      scene: Scene,
                      frame: 'FrameV2',
                      img_size: Tuple[int, int],
                      seed: int,
                      effects: bool = True) -> CCRender:
    """Render one SynthCC v2 image and its LIP label map.

    Args:
        identity (IdentityV2): The person.
        outfit (OutfitV2): What they wear.
        camera (CameraV2): The camera (colour cast, noise).
        scene (Scene): The background of this frame.
        frame (FrameV2): View, pose, box margins, background placement,
            exposure.
        img_size (tuple[int, int]): Output ``(height, width)``.
        seed (int): Dataset seed (scene texture, noise).
        effects (bool): Apply the lighting and sensor noise. Defaults to
            True.

    Returns:
        CCRender: Image, labels and the person-free background.
    """
    h, w = check_img_size(img_size)
    s = RENDER_SCALE
    hh, ww = h * s, w * s
    # the figure, isotropic, on a canvas roomy enough for any pose
    p = float(hh)
    ch, cw = int(math.ceil(p * 1.1)), int(math.ceil(p * 0.9))
    cv = LabelCanvas(
        ch, cw, cw / 2.0, 0.05 * p, p, mirror=frame.direction == 'left')
    draw_cc_v2_figure(cv, identity, outfit, frame)
    box = detector_box(cv.labels, frame.box)
    labels = _crop_nearest(cv.labels, box, hh, ww)
    parts = _crop_nearest(cv.parts, box, hh, ww)

    palette = np.asarray(cv.palette, np.float64)
    person = palette[parts]
    # soft light from above on the figure
    shade = 1.06 - 0.12 * (np.arange(hh, dtype=np.float64) / hh)
    person *= shade[:, None, None]
    bg = scene_background(seed, scene, frame.bg_offset, frame.bg_zoom,
                          frame.bg_flip, hh, ww)
    img = np.where((labels == 0)[:, :, None], bg, person)
    if effects:
        gain = (
            np.asarray(camera.gain) * np.asarray(frame.light) * frame.exposure)
        img = img * gain
        bg = bg * gain

    def down(x: np.ndarray) -> np.ndarray:
        return x.reshape(h, s, w, s, 3).mean(axis=(1, 3))

    img, bg = down(img), down(bg)
    if effects:
        noise = make_rng(seed, CC2_STREAM_RENDER, *frame.key).standard_normal(
            (h, w, 3)) * camera.noise
        img = img + noise
        bg = bg + noise
    return CCRender(
        image=np.clip(np.round(img), 0, 255).astype(np.uint8),
        labels=block_labels(labels, s),
        background=np.clip(np.round(bg), 0, 255).astype(np.uint8))
