"""SynthCC: a generated cloth-changing ReID dataset in the LTCC layout, with
exact human-parsing masks.

What it tests. Each identity is defined only by clothes-INDEPENDENT cues:
body build (height, width, head size, leg length), skin tone, hair (colour
and style), a face feature and shoes. Clothes come from a pool of outfits
(upper colour / pattern / sleeves, lower garment, optional coat and hat)
drawn independently of the identities, and each identity wears several
pool outfits, so different people often wear the *same* outfit: clothes
carry no identity information, and in the cloth-changing setting identity
is recoverable only from the clothes-independent cues. A camera fixes the
background, the lighting, the typical walking direction and the framing;
every outfit of a person is seen in several cameras, several frames each.

Layout (exactly LTCC's, so ``LTCC(data_root=<root>/LTCC_ReID,
with_mask=True)`` reads it unchanged)::

    <root>/
      LTCC_ReID/
        train/PPP_C_cKK_FFFFFF.png   # pid, clothes index of that person,
        query/...                    # camera, frame
        test/...                     # the gallery
        train-mask/<same name>.png   # uint8 LIP labels of every pixel
        query-mask/... test-mask/...
        info/cloth-change_id_{train,test}.txt      # every id (one a line)
        info/cloth-unchange_id_{train,test}.txt    # empty: all ids change
      README.txt                     # generator version, seed, counts
      meta.json                      # version, seed, parameters, counts,
                                     # content digest (also the manifest
                                     # that makes re-runs no-ops)
      synth_cc_attributes.json       # identities, outfit pool, cameras and
                                     # every image's (pid, outfit, camera,
                                     # frame), for analysis

Masks use LIP ids (shared ``datasets-and-protocols.md`` §3): 0 background,
1 hat, 2 hair, 5 upper-clothes, 7 coat, 9 pants (trousers, shorts), 12
skirt, 13 face (the neck and a bald scalp count as face), 14/15 left/right
arm (bare shoulders included), 16/17 left/right leg, 18/19 left/right shoe
("left" is the person's left). They match the pixels exactly: figures are drawn without
anti-aliasing, every shape into the image and the label map at once, and
the camera effects (lighting, sensor noise) act per pixel; a background
pixel is exactly the camera's background.

Test split: per identity and outfit, one image (first frame, in one of the
outfit's cameras) is a query and the rest go to the gallery, so every
query has same-clothes matches (the outfit in other cameras) and
cloth-changing matches (the person's other outfits, at least one of them in
another camera), and other people wearing the query's outfit are in the
gallery as distractors.

Everything is a function of the seed and the parameters: identity ``pid``
depends on ``(seed, pid)``, the outfit pool of a split on ``(seed, split)``,
an identity's outfits and cameras on ``(seed, pid)`` and the pool size, a
frame on its ``(pid, outfit, camera, frame)`` key. Bump
:data:`GENERATOR_VERSION` whenever the output for a seed changes.
"""
import dataclasses
import functools
import hashlib
import json
import logging
import math
import multiprocessing
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .pedestrian import COLOURS, make_rng

__all__ = [
    'GENERATOR_VERSION', 'SIZES', 'LIP_LABELS', 'CLOTHES_LABELS', 'FAR_SHADE',
    'EYE_COLOUR', 'MARK_COLOUR', 'SOLE_COLOURS', 'CCIdentity', 'Outfit',
    'Camera', 'Frame', 'ImageSpec', 'CCRender', 'sample_cc_identity',
    'sample_outfit_pool', 'assign_outfits', 'sample_camera', 'sample_frame',
    'pool_size', 'plan_split', 'render_cc_view', 'generate_synth_cc',
    'dataset_digest'
]

#: Bumped whenever the output for a given seed changes.
GENERATOR_VERSION = '1.0.0'

#: Size presets. ``tiny`` trains on 2 CPU cores: 36 train ids x 3 outfits x
#: 3 cameras x 3 frames = 972 train images, 20 test ids (60 queries, 480
#: gallery images), 128 x 64.
SIZES: Dict[str, dict] = {
    'tiny':
    dict(
        train_ids=36,
        test_ids=20,
        outfits_per_id=3,
        cameras_per_outfit=3,
        frames_per_camera=3,
        num_cameras=6,
        img_size=(128, 64)),
    'small':
    dict(
        train_ids=77,
        test_ids=75,
        outfits_per_id=3,
        cameras_per_outfit=3,
        frames_per_camera=4,
        num_cameras=12,
        img_size=(256, 128)),
}
#: Average number of identities wearing each outfit of a split's pool.
OUTFIT_SHARING = 2.0

#: LIP label ids written into the masks.
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
#: The labels SynthCC uses for clothes (a subset of CCAF's default set).
CLOTHES_LABELS: Tuple[int, ...] = (1, 5, 7, 9, 12)

DATASET_DIR = 'LTCC_ReID'
META_FILE = 'meta.json'
README_FILE = 'README.txt'
ATTRIBUTES_FILE = 'synth_cc_attributes.json'
SPLIT_FOLDERS = ('train', 'query', 'test')
INFO_FILES = ('cloth-change_id_train.txt', 'cloth-change_id_test.txt',
              'cloth-unchange_id_train.txt', 'cloth-unchange_id_test.txt')

RGB = Tuple[int, int, int]
logger = logging.getLogger(__name__)

# Random-stream tags (distinct from SynthPedes' 1..4).
_STREAM_IDENTITY = 101
_STREAM_OUTFIT = 102
_STREAM_ASSIGN = 103
_STREAM_CAMERA = 104
_STREAM_FRAME = 105
_STREAM_RENDER = 106
_SPLIT_CODE = {'train': 1, 'test': 2}

# ---------------------------------------------------------------------------
# vocabularies (yapf: disable)

#: Skin tones: identity cue.
_SKINS: Tuple[RGB, ...] = ((250, 222, 198), (236, 196, 162), (212, 164, 124),
                           (176, 122, 84), (132, 88, 58), (96, 64, 44))
#: Hair colours: identity cue.
_HAIRS: Tuple[RGB, ...] = ((20, 18, 18), (70, 44, 28), (122, 80, 44),
                           (214, 180, 112), (170, 170, 164), (156, 64, 30))
HAIR_STYLES = ('bald', 'buzz', 'short', 'medium', 'long', 'ponytail', 'bun')
FACE_FEATURES = ('plain', 'beard', 'moustache', 'mark')
SHOE_KINDS = ('shoes', 'sneakers', 'boots')
_SHOE_COLOURS: Tuple[RGB, ...] = ((24, 24, 26), (236, 236, 232), (112, 70, 38),
                                  (128, 128, 132), (190, 36, 40),
                                  (40, 80, 190), (212, 192, 150),
                                  (40, 130, 60))
#: Garment colours: the pedestrian vocabulary's fifteen.
_GARMENT_COLOURS: Tuple[RGB, ...] = tuple(COLOURS.values())
UPPER_PATTERNS = ('plain', 'stripes', 'checks', 'band')
_PATTERN_W = (50, 20, 15, 15)
SLEEVES = ('none', 'short', 'long')
_SLEEVES_W = (10, 40, 50)
LOWER_KINDS = ('trousers', 'shorts', 'skirt')
_LOWER_W = (55, 20, 25)
HAT_KINDS = ('cap', 'beanie')
_COAT_P = 0.3
_COAT_OPEN_P = 0.5
_HAT_P = 0.25
DIRECTIONS = ('front', 'back', 'left', 'right')
SCENES = ('plain', 'bricks', 'tiles', 'panels', 'shops', 'foliage')
#: Shade of the far arm / leg / shoe in side views.
FAR_SHADE = 0.78
#: Colour of the 'mark' face feature (a birthmark on the cheek).
MARK_COLOUR: RGB = (150, 40, 60)
#: Colour of the eyes.
EYE_COLOUR: RGB = (40, 30, 28)
#: Sneaker soles: light, or dark under light shoes.
SOLE_COLOURS: Tuple[RGB, RGB] = ((240, 240, 236), (60, 60, 60))
# yapf: enable

# ---------------------------------------------------------------------------
# attributes


@dataclasses.dataclass(frozen=True)
class CCIdentity:
    """The clothes-independent appearance of one person.

    Attributes:
        pid (int): 1-based person id.
        height (float): Body height relative to the tallest person, in
            [0.84, 1].
        width (float): Body width factor, in [0.8, 1.25].
        head (float): Head size factor, in [0.88, 1.12].
        leg (float): Hip height as a fraction of the body height (longer
            legs: smaller), in [0.46, 0.53].
        skin (tuple): Skin RGB.
        hair_style (str): One of :data:`HAIR_STYLES`.
        hair_colour (tuple): Hair RGB.
        face (str): Face feature, one of :data:`FACE_FEATURES`.
        shoes (str): One of :data:`SHOE_KINDS`.
        shoe_colour (tuple): Shoe RGB.
    """
    pid: int
    height: float
    width: float
    head: float
    leg: float
    skin: RGB
    hair_style: str
    hair_colour: RGB
    face: str
    shoes: str
    shoe_colour: RGB

    def cues(self) -> dict:
        """Every attribute except ``pid``, as JSON-able values."""
        d = dataclasses.asdict(self)
        d.pop('pid')
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in d.items()
        }


@dataclasses.dataclass(frozen=True)
class Outfit:
    """One outfit of a split's pool; worn by any number of identities.

    Attributes:
        index (int): Index in the split's pool.
        upper_colour (tuple): Upper-garment RGB.
        pattern (str): One of :data:`UPPER_PATTERNS`.
        pattern_colour (tuple): RGB of the stripes / checks / band.
        sleeves (str): One of :data:`SLEEVES`.
        lower (str): One of :data:`LOWER_KINDS`.
        lower_colour (tuple): Lower-garment RGB.
        coat_colour (tuple, optional): Coat RGB; None without a coat.
        coat_open (bool): The coat is open at the front.
        hat (str, optional): One of :data:`HAT_KINDS`, or None.
        hat_colour (tuple, optional): Hat RGB.
    """
    index: int
    upper_colour: RGB
    pattern: str
    pattern_colour: RGB
    sleeves: str
    lower: str
    lower_colour: RGB
    coat_colour: Optional[RGB] = None
    coat_open: bool = False
    hat: Optional[str] = None
    hat_colour: Optional[RGB] = None

    def to_dict(self) -> dict:
        """The outfit as JSON-able values."""
        d = dataclasses.asdict(self)
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in d.items()
        }


@dataclasses.dataclass(frozen=True)
class Camera:
    """A fixed camera: scene, lighting, typical view and framing.

    Attributes:
        camid (int): 1-based camera number (the ``cKK`` of the file names).
        scene (str): Background style, one of :data:`SCENES`.
        wall (tuple): Two wall RGBs (top, bottom of the gradient).
        accent (tuple): RGB of the scene's texture (mortar, tiles, shops).
        ground (tuple): Ground RGB.
        horizon (float): Ground line, as a fraction of the image height.
        period (float): Texture period, as a fraction of the image height.
        gain (tuple): RGB colour cast of the lighting.
        brightness (float): Exposure factor.
        slope (float): Light falling off across the image (left to right).
        directions (tuple): Weights of front, back, side views.
        scale (float): Person height (tallest identity) / image height.
        foot_y (float): Soles' line, as a fraction of the image height.
    """
    camid: int
    scene: str
    wall: Tuple[RGB, RGB]
    accent: RGB
    ground: RGB
    horizon: float
    period: float
    gain: Tuple[float, float, float]
    brightness: float
    slope: float
    directions: Tuple[float, float, float]
    scale: float
    foot_y: float

    def to_dict(self) -> dict:
        """The camera as JSON-able values."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclasses.dataclass(frozen=True)
class Frame:
    """One image of a person in one camera.

    Attributes:
        key (tuple): ``(pid, clothes, camid, frame)``; seeds the frame's
            random draws and its rendering noise.
        direction (str): One of :data:`DIRECTIONS` (``left`` / ``right``:
            the person faces the image's left / right).
        stride (float): Walking stride in [0, 1].
        phase (float): Gait phase in [-1, 1] (which leg is forward).
        swing (float): Arm swing in [0, 1].
        scale (float): Jitter of the person's size (about 1).
        shift_x (float): Horizontal offset, fraction of the image width.
        shift_y (float): Vertical offset, fraction of the image height.
        bg_offset (float): Where the crop sits in the camera's scene, in
            [0, 1).
        light (tuple): Per-frame RGB jitter of the lighting.
        noise (float): Sensor-noise standard deviation (0-255 scale).
    """
    key: Tuple[int, int, int, int]
    direction: str
    stride: float
    phase: float
    swing: float
    scale: float
    shift_x: float
    shift_y: float
    bg_offset: float
    light: Tuple[float, float, float]
    noise: float


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """One image of the dataset plan.

    Attributes:
        pid (int): Person id.
        clothes (int): 1-based outfit number of that person (file name).
        outfit (int): Index of the outfit in the split's pool.
        camid (int): Camera number.
        frame (int): 0-based frame index within (pid, clothes, camid).
        folder (str): ``'train'``, ``'query'`` or ``'test'``.
        name (str): File name, ``PPP_C_cKK_FFFFFF.png``.
    """
    pid: int
    clothes: int
    outfit: int
    camid: int
    frame: int
    folder: str
    name: str


@dataclasses.dataclass
class CCRender:
    """A rendered image with its labels.

    Attributes:
        image (np.ndarray): H x W x 3 uint8 RGB.
        labels (np.ndarray): H x W uint8 LIP labels.
        background (np.ndarray): H x W x 3 uint8 RGB: the same frame
            without the person (what the image shows where ``labels == 0``).
    """
    image: np.ndarray
    labels: np.ndarray
    background: np.ndarray


def _pick(rng: np.random.Generator, options: Sequence, weights=None):
    if weights is None:
        return options[int(rng.integers(len(options)))]
    w = np.asarray(weights, np.float64)
    return options[int(rng.choice(len(options), p=w / w.sum()))]


def _jitter(rng: np.random.Generator, rgb: RGB, amount: float) -> RGB:
    gain = 1.0 + rng.uniform(-amount, amount)
    offset = rng.uniform(-8, 8, size=3)
    out = np.clip(np.asarray(rgb, np.float64) * gain + offset, 0, 255)
    return tuple(int(round(v)) for v in out)


def sample_cc_identity(seed: int, pid: int) -> CCIdentity:
    """Draw the clothes-independent cues of person ``pid``.

    Args:
        seed (int): Dataset seed.
        pid (int): 1-based person id; the cues depend on ``(seed, pid)``
            only.

    Returns:
        CCIdentity: The person.
    """
    rng = make_rng(seed, _STREAM_IDENTITY, pid)
    height = float(rng.uniform(0.84, 1.0))
    width = float(rng.uniform(0.8, 1.25))
    head = float(rng.uniform(0.88, 1.12))
    leg = float(rng.uniform(0.46, 0.53))
    skin = _jitter(rng, _pick(rng, _SKINS), 0.04)
    hair_style = _pick(rng, HAIR_STYLES, (6, 12, 26, 16, 18, 12, 10))
    hair_colour = _jitter(rng, _pick(rng, _HAIRS), 0.06)
    face = _pick(rng, FACE_FEATURES, (40, 20, 20, 20))
    shoes = _pick(rng, SHOE_KINDS)
    shoe_colour = _jitter(rng, _pick(rng, _SHOE_COLOURS), 0.05)
    return CCIdentity(pid, height, width, head, leg, skin, hair_style,
                      hair_colour, face, shoes, shoe_colour)


def _sample_outfit(seed: int, split: str, index: int) -> Outfit:
    rng = make_rng(seed, _STREAM_OUTFIT, _SPLIT_CODE[split], index)
    n = len(_GARMENT_COLOURS)
    upper_i = int(rng.integers(n))
    pattern = _pick(rng, UPPER_PATTERNS, _PATTERN_W)
    # a pattern in the garment's own colour would be invisible
    pattern_i = (upper_i + 1 + int(rng.integers(n - 1))) % n
    sleeves = _pick(rng, SLEEVES, _SLEEVES_W)
    lower = _pick(rng, LOWER_KINDS, _LOWER_W)
    lower_colour = _GARMENT_COLOURS[int(rng.integers(n))]
    coat_colour, coat_open = None, False
    if rng.random() < _COAT_P:
        coat_colour = _GARMENT_COLOURS[int(rng.integers(n))]
        coat_open = bool(rng.random() < _COAT_OPEN_P)
        if lower == 'shorts':
            # the knee-length coat would hide them completely
            lower = 'trousers'
    hat = hat_colour = None
    if rng.random() < _HAT_P:
        hat = _pick(rng, HAT_KINDS)
        hat_colour = _GARMENT_COLOURS[int(rng.integers(n))]
    return Outfit(index, _GARMENT_COLOURS[upper_i], pattern,
                  _GARMENT_COLOURS[pattern_i], sleeves, lower, lower_colour,
                  coat_colour, coat_open, hat, hat_colour)


def sample_outfit_pool(seed: int, split: str, size: int) -> List[Outfit]:
    """The outfits that the identities of ``split`` draw from.

    Args:
        seed (int): Dataset seed.
        split (str): ``'train'`` or ``'test'`` (each split has its own pool).
        size (int): Number of outfits; outfit ``k`` depends on
            ``(seed, split, k)`` only.

    Returns:
        list[Outfit]: The pool.
    """
    return [_sample_outfit(seed, split, k) for k in range(size)]


def pool_size(num_ids: int, outfits_per_id: int) -> int:
    """Outfits in a split's pool: each worn by :data:`OUTFIT_SHARING`
    identities on average (at least ``outfits_per_id``)."""
    return max(outfits_per_id,
               int(math.ceil(num_ids * outfits_per_id / OUTFIT_SHARING)))


def assign_outfits(seed: int, pid: int, num_outfits: int, pool: int,
                   num_cameras: int,
                   cameras_per_outfit: int) -> List[Tuple[int, List[int]]]:
    """The pool outfits person ``pid`` wears and the cameras seeing each.

    The draw uses its own random stream keyed by ``(seed, pid)``: it never
    looks at the person's cues, so outfits are independent of identity.

    Args:
        seed (int): Dataset seed.
        pid (int): Person id.
        num_outfits (int): Outfits per person (distinct pool entries).
        pool (int): Pool size.
        num_cameras (int): Cameras in the dataset.
        cameras_per_outfit (int): Distinct cameras seeing each outfit.

    Returns:
        list[tuple[int, list[int]]]: ``(pool index, sorted 1-based camera
        numbers)`` per outfit, in clothes-number order.
    """
    rng = make_rng(seed, _STREAM_ASSIGN, pid)
    outfits = rng.choice(pool, num_outfits, replace=False)
    out = []
    for k in outfits:
        cams = rng.choice(num_cameras, cameras_per_outfit, replace=False) + 1
        out.append((int(k), sorted(int(c) for c in cams)))
    return out


def sample_camera(seed: int, camid: int) -> Camera:
    """Draw camera ``camid`` (scene, lighting, typical view, framing).

    Args:
        seed (int): Dataset seed.
        camid (int): 1-based camera number; depends on ``(seed, camid)``.

    Returns:
        Camera: The camera.
    """
    rng = make_rng(seed, _STREAM_CAMERA, camid)
    # cycle through the scenes, so that the first cameras all differ
    scene = SCENES[(camid - 1) % len(SCENES)]

    def colour(lo: float, hi: float) -> RGB:
        base = rng.uniform(lo, hi)
        tint = rng.normal(0.0, 22.0, size=3)
        return tuple(int(v) for v in np.clip(base + tint, 0, 255).round())

    wall = (colour(70, 215), colour(60, 200))
    accent = colour(40, 220)
    ground = colour(60, 180)
    if scene == 'foliage':
        wall = ((int(rng.uniform(40, 90)), int(rng.uniform(100, 160)),
                 int(rng.uniform(40, 80))), wall[1])
    # the main walking direction of the scene: front, back or side
    main = int(rng.integers(3))
    directions = [0.15, 0.15, 0.15]
    directions[main] = 0.7
    warm = rng.uniform(-1.0, 1.0)
    gain = (1.0 + 0.1 * warm, 1.0, 1.0 - 0.1 * warm)
    return Camera(
        camid=camid,
        scene=scene,
        wall=wall,
        accent=accent,
        ground=ground,
        horizon=float(rng.uniform(0.68, 0.84)),
        period=float(rng.uniform(0.06, 0.14)),
        gain=tuple(float(g) for g in gain),
        brightness=float(rng.uniform(0.78, 1.12)),
        slope=float(rng.uniform(-0.15, 0.15)),
        directions=tuple(directions),
        scale=float(rng.uniform(0.86, 0.93)),
        foot_y=float(rng.uniform(0.955, 0.985)))


def sample_frame(seed: int, camera: Camera, pid: int, clothes: int,
                 index: int) -> Frame:
    """Draw frame ``index`` of person ``pid`` in outfit ``clothes`` seen by
    ``camera``.

    The walking direction is shared by the frames of one (person, outfit,
    camera) visit, as in a tracklet; pose, framing, lighting jitter and
    noise change per frame.

    Args:
        seed (int): Dataset seed.
        camera (Camera): The camera.
        pid (int): Person id.
        clothes (int): 1-based outfit number of that person.
        index (int): 0-based frame index.

    Returns:
        Frame: The frame parameters.
    """
    key = (pid, clothes, camera.camid, index)
    visit = make_rng(seed, _STREAM_FRAME, pid, clothes, camera.camid, 1 << 20)
    kind = _pick(visit, ('front', 'back', 'side'), camera.directions)
    if kind == 'side':
        kind = 'left' if visit.random() < 0.5 else 'right'
    rng = make_rng(seed, _STREAM_FRAME, *key)
    return Frame(
        key=key,
        direction=kind,
        stride=float(rng.uniform(0.2, 1.0)),
        phase=float(rng.uniform(-1.0, 1.0)),
        swing=float(rng.uniform(0.1, 1.0)),
        scale=float(rng.uniform(0.97, 1.03)),
        shift_x=float(rng.uniform(-0.06, 0.06)),
        shift_y=float(rng.uniform(-0.01, 0.01)),
        bg_offset=float(rng.random()),
        light=tuple(float(v) for v in rng.uniform(0.95, 1.05, size=3)),
        noise=float(rng.uniform(1.5, 4.0)))


# ---------------------------------------------------------------------------
# rendering

_SHIFT = 4  # sub-pixel bits of OpenCV's drawing calls
_ONE = 1 << _SHIFT


class _Canvas:
    """Draws figure-space shapes into a label map and a colour-index map.

    Every shape is drawn with the same OpenCV call (no anti-aliasing) into
    ``labels`` (its LIP id) and ``parts`` (the index of its colour in
    ``palette``), so the two maps agree pixel for pixel.

    Args:
        h, w (int): Image size.
        cx (float): Pixel x of the body's centre line.
        top (float): Pixel y of the top of the head.
        p (float): Person height in pixels.
        mirror (bool): Flip figure x (views facing left).
    """

    def __init__(self, h: int, w: int, cx: float, top: float, p: float,
                 mirror: bool) -> None:
        self.labels = np.zeros((h, w), np.uint8)
        self.parts = np.zeros((h, w), np.uint8)
        self.palette: List[RGB] = [(0, 0, 0)]
        self._index: Dict[RGB, int] = {}
        self.cx, self.top, self.p = cx, top, p
        self.sx = -1.0 if mirror else 1.0

    def colour(self, rgb: RGB) -> int:
        rgb = tuple(int(v) for v in rgb)
        if rgb not in self._index:
            self._index[rgb] = len(self.palette)
            self.palette.append(rgb)
        return self._index[rgb]

    def point(self, x: float, y: float) -> Tuple[int, int]:
        return (int(round((self.cx + self.sx * x * self.p) * _ONE)),
                int(round((self.top + y * self.p) * _ONE)))

    def _targets(self, label: int, rgb: RGB):
        return ((self.labels, int(label)), (self.parts, self.colour(rgb)))

    def poly(self, pts, label: int, rgb: RGB) -> None:
        arr = np.array([self.point(x, y) for x, y in pts], np.int32)
        for img, value in self._targets(label, rgb):
            cv2.fillPoly(img, [arr], int(value), cv2.LINE_8, _SHIFT)

    def ellipse(self, centre, axes, label: int, rgb: RGB,
                arc=(0, 360)) -> None:
        ax = (max(1, int(round(axes[0] * self.p * _ONE))),
              max(1, int(round(axes[1] * self.p * _ONE))))
        for img, value in self._targets(label, rgb):
            cv2.ellipse(img, self.point(*centre), ax, 0, arc[0], arc[1],
                        int(value), -1, cv2.LINE_8, _SHIFT)

    def limb(self,
             a,
             b,
             wa: float,
             wb: float,
             label: int,
             rgb: RGB,
             caps: bool = True) -> None:
        """A tapered segment from ``a`` (width ``wa``) to ``b`` (``wb``)."""
        (ax, ay), (bx, by) = a, b
        n = math.hypot(bx - ax, by - ay) or 1e-6
        nx, ny = -(by - ay) / n, (bx - ax) / n
        self.poly([(ax + nx * wa / 2, ay + ny * wa / 2),
                   (bx + nx * wb / 2, by + ny * wb / 2),
                   (bx - nx * wb / 2, by - ny * wb / 2),
                   (ax - nx * wa / 2, ay - ny * wa / 2)], label, rgb)
        if caps:
            self.ellipse(a, (wa / 2, wa / 2), label, rgb)
            self.ellipse(b, (wb / 2, wb / 2), label, rgb)

    def recolour_within(self, label: int, rgb: RGB, shapes) -> None:
        """Recolour the pixels of ``label`` covered by ``shapes`` (a list of
        ``('ellipse', centre, axes)`` / ``('poly', pts)``); labels stay."""
        mask = np.zeros_like(self.labels)
        for shape in shapes:
            if shape[0] == 'ellipse':
                ax = (max(1, int(round(shape[2][0] * self.p * _ONE))),
                      max(1, int(round(shape[2][1] * self.p * _ONE))))
                cv2.ellipse(mask, self.point(*shape[1]), ax, 0, 0, 360, 1, -1,
                            cv2.LINE_8, _SHIFT)
            else:
                arr = np.array([self.point(x, y) for x, y in shape[1]],
                               np.int32)
                cv2.fillPoly(mask, [arr], 1, cv2.LINE_8, _SHIFT)
        self.parts[(mask > 0) & (self.labels == label)] = self.colour(rgb)


def _shade(rgb: RGB, f: float) -> RGB:
    return tuple(int(v * f) for v in rgb)


def _side_labels(direction: str) -> Tuple[bool, bool]:
    """Whether figure +x is the person's left, and (side views) whether the
    near limbs are the person's left ones."""
    # Facing the camera, the person's left is the image right; from behind
    # it is the image left. Facing the image right, the camera sees the
    # person's right side (and the left side when facing left).
    return direction == 'front', direction == 'left'


def _draw_figure(cv: _Canvas, ident: CCIdentity, outfit: Outfit,
                 frame: Frame) -> None:
    """Draw the person in depth order into ``cv``."""
    L = LIP_LABELS
    d = frame.direction
    side = d in ('left', 'right')
    plus_is_left, near_is_left = _side_labels(d)
    bw = ident.width
    skin = ident.skin
    upper = outfit.upper_colour
    coat = outfit.coat_colour
    lower = outfit.lower
    lower_rgb = outfit.lower_colour

    y_sh, y_hip, y_ankle = 0.175, ident.leg, 0.955
    y_waist = y_hip - 0.085
    y_knee = (y_hip + y_ankle) / 2
    sw = 0.102 * bw  # shoulder half-width
    ww = 0.082 * bw  # waist half-width
    hw = 0.088 * bw  # hip half-width
    thigh, knee_w, ankle_w = 0.078 * bw, 0.056 * bw, 0.04 * bw
    arm_w, fore_w = 0.046 * bw, 0.036 * bw
    head_a = (0.046 * ident.head * (1 + (bw - 1) * 0.3), 0.062 * ident.head)
    hy = 0.004 + head_a[1]  # head centre, just below the top of the figure

    # --- limb geometry ---------------------------------------------------
    stride, phase, swing = frame.stride, frame.phase, frame.swing
    legs, arms = [], []
    if side:
        torso_hw = sw * 0.55
        for sgn in (1.0, -1.0):  # near, far
            theta = 0.4 * stride * phase * sgn
            seg = (y_ankle - y_hip) / 2
            hip = (0.0, y_hip)
            knee = (seg * math.sin(theta), y_hip + seg * math.cos(theta))
            bend = 0.35 * stride if theta < 0 else 0.05
            ankle = (knee[0] + seg * math.sin(theta - bend),
                     knee[1] + seg * math.cos(theta - bend))
            legs.append((hip, knee, ankle))
        for sgn in (-1.0, 1.0):  # near arm swings against the near leg
            beta = 0.5 * swing * phase * sgn
            sh = (0.0, y_sh + 0.02)
            el = (0.15 * math.sin(beta), sh[1] + 0.15 * math.cos(beta))
            beta2 = beta + 0.25 + 0.3 * max(0.0, beta)
            hand = (el[0] + 0.14 * math.sin(beta2),
                    el[1] + 0.14 * math.cos(beta2))
            arms.append((sh, el, hand))
    else:
        torso_hw = sw
        spread = 0.006 + 0.028 * stride
        for sgn in (-1.0, 1.0):
            lift = 0.02 * stride * max(0.0, phase * sgn)
            hip = (sgn * 0.046 * bw, y_hip)
            knee = (sgn * (0.046 * bw + spread * 0.5), y_knee - lift)
            ankle = (sgn * (0.046 * bw + spread), y_ankle - 1.5 * lift)
            legs.append((hip, knee, ankle))
        for sgn in (-1.0, 1.0):
            out = 0.1 + 0.08 * (bw - 0.8)
            sh = (sgn * sw * 0.92, y_sh + 0.02)
            el = (sh[0] + sgn * 0.15 * math.sin(out), sh[1] + 0.15)
            fl = 0.14 * (1.0 - 0.3 * swing * abs(phase))
            arms.append(
                (sh, el, (el[0] + sgn * fl * math.sin(out * 0.6), el[1] + fl)))
    # ground the lowest foot on the soles' line
    dy = y_ankle - max(leg[2][1] for leg in legs)
    legs = [tuple((x, y + dy) for x, y in leg) for leg in legs]

    def limb_side(i: int) -> bool:
        """Whether limb ``i`` (front/back: 0 = -x, 1 = +x; side: 0 = near,
        1 = far for legs) belongs to the person's left."""
        if side:
            return near_is_left if i == 0 else not near_is_left
        return plus_is_left if i == 1 else not plus_is_left

    def shade_of(i: int) -> float:
        return FAR_SHADE if side and i == 1 else 1.0

    # --- parts -------------------------------------------------------------
    def draw_leg(i: int) -> None:
        hip, knee, ankle = legs[i]
        f = shade_of(i)
        left = limb_side(i)
        leg_label = L['left_leg'] if left else L['right_leg']
        shoe_label = L['left_shoe'] if left else L['right_shoe']
        skin_f = _shade(skin, f)
        if lower == 'trousers':
            top = bottom = (L['pants'], _shade(lower_rgb, f))
        else:
            top = bottom = (leg_label, skin_f)
        cv.limb(hip, knee, thigh, knee_w, *top)
        cv.limb(knee, ankle, knee_w, ankle_w, *bottom)
        if lower == 'shorts':
            mid = (hip[0] + 0.55 * (knee[0] - hip[0]),
                   hip[1] + 0.55 * (knee[1] - hip[1]))
            cv.limb(hip, mid, thigh * 1.1, thigh * 1.04, L['pants'],
                    _shade(lower_rgb, f))
        shoe = _shade(ident.shoe_colour, f)
        if ident.shoes == 'boots':
            cv.limb((ankle[0], ankle[1] - 0.055), ankle, ankle_w * 1.3,
                    ankle_w * 1.3, shoe_label, shoe)
        if side:
            cv.ellipse((ankle[0] + 0.022, ankle[1] + 0.018), (0.042, 0.02),
                       shoe_label, shoe)
        else:
            cv.ellipse((ankle[0], ankle[1] + 0.02), (0.03, 0.022), shoe_label,
                       shoe)
        if ident.shoes == 'sneakers':
            sole = SOLE_COLOURS[0 if sum(ident.shoe_colour) < 600 else 1]
            off = 0.022 if side else 0.0
            cv.limb((ankle[0] + off - 0.03, ankle[1] + 0.036),
                    (ankle[0] + off + 0.03, ankle[1] + 0.036),
                    0.012,
                    0.012,
                    shoe_label,
                    _shade(sole, f),
                    caps=False)

    def draw_lower() -> None:
        top_y = y_waist + 0.03
        if lower == 'skirt':
            hem = y_knee + 0.02
            half = hw * (1.45 if not side else 1.0)
            a = hw * (0.95 if not side else 0.6)
            cv.poly([(-a, top_y), (a, top_y), (half, hem), (-half, hem)],
                    L['skirt'], lower_rgb)
            return
        l, r = legs[0][0], legs[1][0]
        ph = torso_hw * 0.95 if side else hw
        cv.poly([(-ph, top_y), (ph, top_y),
                 (max(l[0], r[0]) + thigh * 0.5, y_hip + 0.04),
                 (min(l[0], r[0]) - thigh * 0.5, y_hip + 0.04)], L['pants'],
                lower_rgb)

    def torso(hem_y: float, hem_hw: float, grow: float = 1.0):
        t = torso_hw * grow
        if side:
            return [(-t * 0.9, y_sh - 0.01), (t * 0.6, y_sh - 0.01),
                    (t * 1.05, y_sh + 0.08), (t * 0.95, y_waist),
                    (hem_hw, hem_y), (-hem_hw, hem_y), (-t * 0.85, y_waist)]
        return [(-t * 0.78, y_sh - 0.012), (t * 0.78, y_sh - 0.012),
                (t, y_sh + 0.018), (ww * grow, y_waist), (hem_hw, hem_y),
                (-hem_hw, hem_y), (-ww * grow, y_waist), (-t, y_sh + 0.018)]

    def draw_upper() -> None:
        hem_y = y_hip + 0.03
        hem_hw = torso_hw * 0.95 if side else hw * 1.02
        cv.poly(torso(hem_y, hem_hw), L['upper'], upper)
        if outfit.sleeves == 'none' and coat is None:
            t = torso_hw
            for sgn in ((1.0, ) if side else (-1.0, 1.0)):
                # bare shoulders either side of the straps (arm labels)
                if side:
                    left = near_is_left
                else:
                    left = plus_is_left == (sgn > 0)
                cv.poly([(sgn * t * 0.45, y_sh - 0.013),
                         (sgn * t * 1.01, y_sh - 0.005),
                         (sgn * t * 1.0, y_sh + 0.03)],
                        L['left_arm'] if left else L['right_arm'], skin)
        if coat is not None:
            c_hem = y_knee - 0.03
            c_hw = torso_hw * 1.2 if side else hw * 1.3
            cv.poly(torso(c_hem, c_hw, 1.06), L['coat'], coat)
            if outfit.coat_open and d == 'front':
                gap = torso_hw * 0.3
                cv.poly([(-gap * 0.7, y_sh), (gap * 0.7, y_sh),
                         (gap, hem_y - 0.01), (-gap, hem_y - 0.01)],
                        L['upper'], upper)

    def draw_arm(i: int) -> None:
        sh, el, hand = arms[i]
        f = shade_of(i) if side else 1.0
        if side:
            left = near_is_left if i == 0 else not near_is_left
        else:
            left = limb_side(i)
        arm_label = L['left_arm'] if left else L['right_arm']
        skin_f = _shade(skin, f)
        if coat is not None:
            sleeve, sleeves = (L['coat'], _shade(coat, f)), 'long'
        else:
            sleeve, sleeves = (L['upper'], _shade(upper, f)), outfit.sleeves
        if sleeves == 'long':
            cv.limb(sh, el, arm_w, fore_w * 1.05, *sleeve)
            cv.limb(el, hand, fore_w * 1.05, fore_w, *sleeve)
        else:
            cv.limb(sh, el, arm_w * 0.85, fore_w * 0.9, arm_label, skin_f)
            cv.limb(el, hand, fore_w * 0.9, fore_w * 0.8, arm_label, skin_f)
            if sleeves == 'short':
                mid = (sh[0] + 0.55 * (el[0] - sh[0]),
                       sh[1] + 0.55 * (el[1] - sh[1]))
                cv.limb(sh, mid, arm_w * 1.05, arm_w, *sleeve)
        cv.ellipse((hand[0], hand[1] + 0.01), (0.02, 0.023), arm_label, skin_f)

    def draw_back_hair() -> None:
        style, hair = ident.hair_style, ident.hair_colour
        if style in ('long', 'medium') and d == 'front':
            end = 0.27 if style == 'long' else 0.19
            cv.poly([(-head_a[0] * 1.25, hy), (head_a[0] * 1.25, hy),
                     (head_a[0] * 1.35, end), (-head_a[0] * 1.35, end)],
                    L['hair'], hair)

    def draw_face_features(cx: float) -> None:
        # recolours face pixels only, so it runs after hair and hat
        ax, ay = head_a
        eye = EYE_COLOUR
        if side:
            eyes = [('ellipse', (cx + ax * 0.6, hy - 0.004), (0.007, 0.005))]
        else:
            eyes = [('ellipse', (sgn * ax * 0.45, hy - 0.004), (0.007, 0.005))
                    for sgn in (-1.0, 1.0)]
        cv.recolour_within(L['face'], eye, eyes)
        fx = cx + (ax * 0.3 if side else 0.0)
        dark = _shade(ident.hair_colour, 0.8)
        if ident.face == 'beard':
            cv.recolour_within(L['face'], dark,
                               [('poly', [(fx - ax * 1.1, hy + ay * 0.45),
                                          (fx + ax * 1.1, hy + ay * 0.45),
                                          (fx + ax * 1.1, hy + ay * 1.2),
                                          (fx - ax * 1.1, hy + ay * 1.2)])])
        elif ident.face == 'moustache':
            cv.recolour_within(L['face'], dark,
                               [('poly', [(fx - ax * 0.55, hy + ay * 0.3),
                                          (fx + ax * 0.55, hy + ay * 0.3),
                                          (fx + ax * 0.55, hy + ay * 0.48),
                                          (fx - ax * 0.55, hy + ay * 0.48)])])
        elif ident.face == 'mark':
            cv.recolour_within(L['face'], MARK_COLOUR,
                               [('ellipse', (fx + ax * 0.5, hy + ay * 0.25),
                                 (0.011, 0.011))])

    def draw_head() -> None:
        style, hair = ident.hair_style, ident.hair_colour
        cv.limb((0.0, hy + head_a[1] * 0.6), (0.0, y_sh + 0.01),
                0.036 * bw,
                0.04 * bw,
                L['face'],
                _shade(skin, 0.92),
                caps=False)
        cx = 0.006 if side else 0.0
        cv.ellipse((cx, hy), head_a, L['face'], skin)
        if side:
            cv.ellipse((cx + head_a[0] * 1.05, hy + 0.01), (0.008, 0.01),
                       L['face'], skin)  # nose
        ax, ay = head_a
        if style == 'bald':
            pass  # the scalp stays skin (face label)
        elif d == 'back':
            cv.ellipse((0.0, hy - 0.004), (ax * 1.07, ay), L['hair'], hair)
        elif side:
            cv.ellipse((cx - 0.012, hy - 0.012), (ax * 1.02, ay * 0.86),
                       L['hair'], hair)
            # the face shows in front of the ear
            cv.ellipse((cx + 0.016, hy + 0.014), (ax * 0.78, ay * 0.78),
                       L['face'], skin)
            cv.ellipse((cx + head_a[0] * 1.05, hy + 0.01), (0.008, 0.01),
                       L['face'], skin)
        else:
            line_y = hy - (0.034 if style == 'buzz' else 0.022)
            cv.ellipse((0.0, line_y), (ax * 1.06, line_y - hy + ay + 0.004),
                       L['hair'],
                       hair,
                       arc=(180, 360))
            if style != 'buzz':
                for sgn in (-1.0, 1.0):
                    cv.ellipse((sgn * ax * 0.92, hy - 0.01), (0.012, 0.03),
                               L['hair'], hair)
        if style in ('long', 'medium') and d != 'front':
            end = 0.3 if style == 'long' else 0.2
            if side:
                # hangs behind the ear, never over the face
                cv.poly([(-ax * 1.0, hy - 0.01), (-ax * 0.1, hy - 0.01),
                         (-ax * 0.3, end), (-ax * 1.3, end - 0.01)], L['hair'],
                        hair)
            else:
                cv.poly([(-ax, hy), (ax, hy), (ax * 1.25, end),
                         (-ax * 1.25, end)], L['hair'], hair)
        if style == 'long' and d == 'front':
            for sgn in (-1.0, 1.0):
                cv.limb((sgn * ax * 0.95, hy), (sgn * ax * 1.15, 0.25), 0.022,
                        0.026, L['hair'], hair)
        if style == 'ponytail' and d != 'front':
            px = -ax * 0.95 if side else 0.0
            cv.limb((px, hy), (px - (0.02 if side else 0.0), hy + 0.14), 0.03,
                    0.018, L['hair'], hair)
        if style == 'bun':
            bx = -ax * 0.8 if side else 0.0
            cv.ellipse((bx, hy - ay * 0.95), (0.026, 0.022), L['hair'], hair)
        if outfit.hat is not None:
            hc = outfit.hat_colour
            if outfit.hat == 'cap':
                cv.ellipse((0.0 if not side else cx, hy - 0.014),
                           (ax * 1.1, ay * 0.78),
                           L['hat'],
                           hc,
                           arc=(180, 360))
                if side:
                    cv.poly([(cx, hy - 0.02), (cx + ax * 2.0, hy - 0.016),
                             (cx + ax * 1.9, hy - 0.004), (cx, hy - 0.006)],
                            L['hat'], _shade(hc, 0.8))
                elif d == 'front':
                    cv.ellipse((0.0, hy - 0.012), (ax * 1.12, 0.012), L['hat'],
                               _shade(hc, 0.8))
            else:
                cv.ellipse((0.0 if not side else cx - 0.004, hy - 0.01),
                           (ax * 1.1, ay * 0.95),
                           L['hat'],
                           hc,
                           arc=(180, 360))
                cv.poly([(-ax * 1.1 + (cx if side else 0.0), hy - 0.012),
                         (ax * 1.1 + (cx if side else 0.0), hy - 0.012),
                         (ax * 1.1 + (cx if side else 0.0), hy + 0.002),
                         (-ax * 1.1 + (cx if side else 0.0), hy + 0.002)],
                        L['hat'], _shade(hc, 0.85))

        if d != 'back':
            draw_face_features(cx)

    # --- compose in depth order -------------------------------------------
    if side:
        draw_arm(1)  # far arm
        draw_leg(1)  # far leg
        draw_leg(0)
        draw_lower()
        draw_upper()
        draw_arm(0)
        draw_head()
    else:
        draw_back_hair()
        for i in (0, 1):
            draw_leg(i)
        draw_lower()
        draw_upper()
        for i in (0, 1):
            draw_arm(i)
        draw_head()


def _smooth_noise(rng: np.random.Generator, h: int, w: int,
                  cells: Tuple[int, int]) -> np.ndarray:
    """Bilinearly interpolated random grid in [0, 1], float64 (elementwise
    arithmetic only, so it is bit-identical on every machine)."""
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


def _background(seed: int, camera: Camera, frame: Frame, h: int,
                w: int) -> np.ndarray:
    """The camera's scene as seen in the frame's crop: float64 RGB."""
    # the scene is a fixed panorama twice as wide as the crop; the frame's
    # offset says where the person (and so the crop) is
    x0 = int(frame.bg_offset * w)
    return _panorama(seed, camera, h, w)[:, x0:x0 + w]


@functools.lru_cache(maxsize=32)
def _panorama(seed: int, camera: Camera, h: int, w: int) -> np.ndarray:
    """The camera's whole scene, ``h x 2w`` float64 RGB (cached, read-only:
    one per camera and image size)."""
    pw = 2 * w
    rng = make_rng(seed, _STREAM_CAMERA, camera.camid, 1)
    yy = np.arange(h, dtype=np.float64)[:, None]
    xx = np.arange(pw, dtype=np.float64)[None, :]
    top, bottom = (np.asarray(c, np.float64) for c in camera.wall)
    t = (yy / max(1, h - 1))[:, :, None]
    img = top + (bottom - top) * t * np.ones((1, pw, 1))
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
        img[horizon:] = ground * (0.85 + 0.3 * gy) * np.ones((1, pw, 1))
        img[horizon:horizon + 1] *= 0.7  # kerb
    img.setflags(write=False)
    return img


def _lighting(camera: Camera, frame: Frame, h: int, w: int) -> np.ndarray:
    gx = np.linspace(-1.0, 1.0, w, dtype=np.float64)[None, :, None]
    gain = (
        np.asarray(camera.gain) * np.asarray(frame.light) * camera.brightness)
    return gain[None, None, :] * (1.0 + camera.slope * gx) * np.ones((h, 1, 1))


def _apply_pattern(img: np.ndarray, cv: _Canvas, outfit: Outfit,
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


def render_cc_view(identity: CCIdentity,
                   outfit: Outfit,
                   camera: Camera,
                   frame: Frame,
                   img_size: Tuple[int, int],
                   seed: int,
                   effects: bool = True) -> CCRender:
    """Render one image and its LIP label map.

    Args:
        identity (CCIdentity): The person.
        outfit (Outfit): What they wear.
        camera (Camera): The camera.
        frame (Frame): The frame (view, pose, framing, lighting jitter).
        img_size (tuple[int, int]): ``(height, width)``, at least (32, 16).
        seed (int): Dataset seed (the scene texture and the noise).
        effects (bool): Apply the camera's lighting and sensor noise. With
            False the person's pixels are exactly the attribute colours
            (for checking the labels). Defaults to True.

    Returns:
        CCRender: Image, labels and the person-free background.
    """
    h, w = int(img_size[0]), int(img_size[1])
    if h < 32 or w < 16:
        raise ValueError(f'img_size must be at least (32, 16), got {img_size}')
    # keep the figure (arms included) inside tall-and-narrow frames
    p = min(camera.scale * identity.height * frame.scale * h, 2.6 * w)
    foot = (camera.foot_y + frame.shift_y) * h
    cx = w / 2 + frame.shift_x * w
    cv = _Canvas(h, w, cx, foot - p, p, mirror=frame.direction == 'left')
    _draw_figure(cv, identity, outfit, frame)

    palette = np.asarray(cv.palette, np.float64)
    person = palette[cv.parts]
    _apply_pattern(person, cv, outfit, cv.top + 0.19 * p, 0.03 * p)
    bg = _background(seed, camera, frame, h, w)
    img = np.where((cv.labels == 0)[:, :, None], bg, person)
    if effects:
        light = _lighting(camera, frame, h, w)
        noise = make_rng(seed, _STREAM_RENDER, *frame.key).standard_normal(
            (h, w, 3)) * frame.noise
        img = img * light + noise
        bg = bg * light + noise
    return CCRender(
        image=np.clip(np.round(img), 0, 255).astype(np.uint8),
        labels=cv.labels,
        background=np.clip(np.round(bg), 0, 255).astype(np.uint8))


# ---------------------------------------------------------------------------
# dataset plan


def _name(pid: int, clothes: int, camid: int, frame_no: int) -> str:
    return f'{pid:03d}_{clothes}_c{camid:02d}_{frame_no:06d}.png'


def plan_split(seed: int, split: str, pids: Sequence[int], outfits_per_id: int,
               cameras_per_outfit: int, frames_per_camera: int,
               num_cameras: int) -> Tuple[List[ImageSpec], List[Outfit]]:
    """Every image of a split, and the split's outfit pool.

    Args:
        seed (int): Dataset seed.
        split (str): ``'train'`` or ``'test'``.
        pids (Sequence[int]): The split's person ids.
        outfits_per_id (int): Outfits per person.
        cameras_per_outfit (int): Cameras seeing each outfit.
        frames_per_camera (int): Frames per (outfit, camera).
        num_cameras (int): Cameras in the dataset.

    Returns:
        tuple: ``(images, pool)``. On the test split the first frame of one
        camera per (person, outfit) goes to ``query``, the rest to ``test``
        (the gallery).
    """
    pool = sample_outfit_pool(seed, split,
                              pool_size(len(pids), outfits_per_id))
    specs = []
    for pid in pids:
        plan = assign_outfits(seed, pid, outfits_per_id, len(pool),
                              num_cameras, cameras_per_outfit)
        pick = make_rng(seed, _STREAM_ASSIGN, pid, 1)
        frame_no = 0
        for clothes, (outfit, cams) in enumerate(plan, 1):
            query_cam = cams[int(pick.integers(len(cams)))]
            for cam in cams:
                for f in range(frames_per_camera):
                    frame_no += 1
                    if split == 'train':
                        folder = 'train'
                    else:
                        folder = ('query' if
                                  (cam == query_cam and f == 0) else 'test')
                    specs.append(
                        ImageSpec(pid, clothes, outfit, cam, f, folder,
                                  _name(pid, clothes, cam, frame_no)))
    return specs, pool


# ---------------------------------------------------------------------------
# writing


def dataset_digest(root: str) -> str:
    """SHA-256 over the names and bytes of every file under
    ``<root>/LTCC_ReID`` (sorted), i.e. the generated data.

    Args:
        root (str): The SynthCC output folder.

    Returns:
        str: Hex digest.
    """
    h = hashlib.sha256()
    base = osp.join(root, DATASET_DIR)
    paths = []
    for dirpath, _, files in os.walk(base):
        paths += [osp.join(dirpath, f) for f in files]
    for path in sorted(paths):
        h.update(osp.relpath(path, base).replace(os.sep, '/').encode())
        h.update(b'\0')
        with open(path, 'rb') as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def _write_png(path: str, array: np.ndarray) -> None:
    ok, buf = cv2.imencode('.png', array)
    if not ok:  # pragma: no cover - OpenCV without a PNG codec
        raise RuntimeError(f'OpenCV failed to encode {path}')
    with open(path, 'wb') as f:
        f.write(buf.tobytes())


def _write_json(path: str, obj) -> None:
    # written beside the target and renamed: never a truncated file
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def _read_meta(root: str) -> Optional[dict]:
    path = osp.join(root, META_FILE)
    try:
        with open(path, encoding='utf-8') as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get('generator') != 'SynthCC':
        return None
    return meta


def _remove_outputs(root: str) -> None:
    """Delete what a previous generation wrote (and nothing else)."""
    base = osp.join(root, DATASET_DIR)
    for folder in SPLIT_FOLDERS:
        for name in (folder, f'{folder}-mask'):
            if osp.isdir(osp.join(base, name)):
                shutil.rmtree(osp.join(base, name))
    for name in INFO_FILES:
        path = osp.join(base, 'info', name)
        if osp.isfile(path):
            os.remove(path)
    for folder in (osp.join(base, 'info'), base):
        if osp.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
    for name in (META_FILE, README_FILE, ATTRIBUTES_FILE):
        if osp.isfile(osp.join(root, name)):
            os.remove(osp.join(root, name))


def _resolve_params(size: str, overrides: dict, seed) -> dict:
    if size not in SIZES:
        raise ValueError(f'unknown size {size!r}; choose from '
                         f'{", ".join(SIZES)}')
    params = dict(SIZES[size])
    unknown = set(overrides) - set(params)
    if unknown:
        raise TypeError(f'unknown parameters {sorted(unknown)}; SynthCC '
                        f'takes {sorted(params)}')
    params.update({k: v for k, v in overrides.items() if v is not None})
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f'seed must be an int >= 0, got {seed!r}')
    for key in ('train_ids', 'test_ids', 'outfits_per_id',
                'cameras_per_outfit', 'frames_per_camera', 'num_cameras'):
        v = params[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f'{key} must be an int >= 1, got {v!r}')
    if params['outfits_per_id'] < 2:
        raise ValueError('outfits_per_id must be >= 2: every identity '
                         'changes clothes')
    if params['cameras_per_outfit'] < 2:
        raise ValueError('cameras_per_outfit must be >= 2, so that every '
                         'query has matches in other cameras')
    if params['cameras_per_outfit'] > params['num_cameras']:
        raise ValueError(f'cameras_per_outfit ({params["cameras_per_outfit"]}'
                         f') exceeds num_cameras ({params["num_cameras"]})')
    if params['train_ids'] + params['test_ids'] > 999:
        raise ValueError('train_ids + test_ids must be <= 999 (3-digit pids '
                         'of the LTCC names)')
    if params['outfits_per_id'] > 9:
        raise ValueError('outfits_per_id must be <= 9 (one digit in the '
                         'names)')
    try:
        h, w = (int(v) for v in params['img_size'])
    except (TypeError, ValueError):
        raise ValueError('img_size must be (height, width), got '
                         f'{params["img_size"]!r}') from None
    if h < 32 or w < 16:
        raise ValueError(f'img_size must be at least (32, 16), got '
                         f'{params["img_size"]}')
    params['img_size'] = [h, w]
    params['seed'] = seed
    return params


def _readme(params: dict, counts: dict) -> str:
    lines = [
        'SynthCC: a synthetic cloth-changing person ReID dataset in the LTCC',
        'layout (LTCC_ReID/{train,query,test} + *-mask LIP label maps).',
        '',
        f'generator version: {GENERATOR_VERSION}',
        f'seed: {params["seed"]}',
        f'image size (H x W): {params["img_size"][0]} x '
        f'{params["img_size"][1]}',
        f'outfits per id: {params["outfits_per_id"]}, cameras per outfit: '
        f'{params["cameras_per_outfit"]} (of {params["num_cameras"]}), '
        f'frames per camera: {params["frames_per_camera"]}',
        '',
        'folder  ids  images',
    ]
    for folder in SPLIT_FOLDERS:
        c = counts[folder]
        lines.append(f'{folder:<6} {c["ids"]:>4} {c["images"]:>7}')
    lines += [
        '',
        'Identity lives only in clothes-independent cues (body build, skin,',
        'hair, face feature, shoes); outfits come from a pool shared by the',
        'identities of a split, so clothes never identify a person.',
        '',
        'Regenerate with:',
        f'  python tools/dataset_converters/make_synth_cc.py <root> --seed '
        f'{params["seed"]} --size {params["size"]}' +
        ''.join(f' --{k.replace("_", "-")} {params[k]}'
                for k in ('train_ids', 'test_ids')
                if params[k] != SIZES[params['size']][k]),
        '',
        'All people are synthetic; no real person is depicted.',
    ]
    others = [
        k for k in ('outfits_per_id', 'cameras_per_outfit',
                    'frames_per_camera', 'num_cameras', 'img_size')
        if list(np.atleast_1d(params[k])) != list(
            np.atleast_1d(SIZES[params['size']][k]))
    ]
    if others:
        lines.insert(
            lines.index('Regenerate with:') + 2,
            f'  (and {", ".join(others)} as in meta.json, through '
            'generate_synth_cc())')
    return '\n'.join(lines) + '\n'


def _render_identity(task: tuple) -> List[dict]:
    """Render and write every image of one identity; one record per image.

    A module-level function so that worker processes can run it.
    """
    base, seed, split, identity, specs, pool, cameras, img_size = task
    records = []
    for spec in specs:
        camera = cameras[spec.camid - 1]
        frame = sample_frame(seed, camera, spec.pid, spec.clothes, spec.frame)
        out = render_cc_view(identity, pool[spec.outfit], camera, frame,
                             img_size, seed)
        _write_png(
            osp.join(base, spec.folder, spec.name),
            np.ascontiguousarray(out.image[:, :, ::-1]))
        _write_png(
            osp.join(base, f'{spec.folder}-mask', spec.name), out.labels)
        records.append(
            dict(
                dataclasses.asdict(spec),
                split=split,
                direction=frame.direction))
    return records


def generate_synth_cc(root: str,
                      seed: int = 0,
                      size: str = 'tiny',
                      overwrite: bool = False,
                      num_workers: int = 0,
                      **overrides) -> dict:
    """Generate SynthCC under ``root`` (see the module docstring).

    The output is a function of the arguments only: the same seed and
    parameters give byte-identical files. Re-running on a complete, unchanged
    dataset made with the same arguments and generator version does
    nothing.

    Args:
        root (str): Output folder; created if missing. It must be empty or
            hold a SynthCC dataset (``meta.json``).
        seed (int): Random seed (>= 0). Defaults to 0.
        size (str): A :data:`SIZES` preset. Defaults to 'tiny'.
        overwrite (bool): Replace a SynthCC dataset made with other
            arguments. Never deletes anything SynthCC did not write.
            Defaults to False.
        num_workers (int): Worker processes (0: render in this process);
            the output does not depend on it. Defaults to 0.
        **overrides: Preset values to change: ``train_ids``, ``test_ids``,
            ``outfits_per_id``, ``cameras_per_outfit``,
            ``frames_per_camera``, ``num_cameras``, ``img_size``.

    Returns:
        dict: Counts per folder (``train``, ``query``, ``test``: ``ids``
        and ``images``) and ``'total'``, plus ``'generated'`` (False when an
        existing complete dataset was kept).

    Raises:
        FileExistsError: ``root`` is a non-empty folder that is not a
            SynthCC dataset, or one made with other arguments and
            ``overwrite`` is False.
        NotADirectoryError: ``root`` is a file.
        ValueError: An argument is out of range.
    """
    params = _resolve_params(size, overrides, seed)
    params['size'] = size
    root = osp.abspath(root)
    if osp.exists(root) and not osp.isdir(root):
        raise NotADirectoryError(f'{root} exists and is not a folder')
    if osp.isdir(root) and os.listdir(root):
        meta = _read_meta(root)
        if meta is None:
            raise FileExistsError(
                f'Refusing to write SynthCC into {root}: the folder is not '
                f'empty and is not a SynthCC dataset (it has no {META_FILE} '
                'of SynthCC). Choose an empty or new folder.')
        same = (
            meta.get('generator_version') == GENERATOR_VERSION
            and meta.get('params') == params)
        if (same and meta.get('complete')
                and meta.get('digest') == dataset_digest(root)):
            logger.info('SynthCC at %s is complete; nothing to do', root)
            return dict(meta['counts'], generated=False)
        if not same and meta.get('complete') and not overwrite:
            old = dict(
                meta.get('params', {}),
                generator_version=meta.get('generator_version'))
            new = dict(params, generator_version=GENERATOR_VERSION)
            diff = ', '.join(f'{k}: {old.get(k)!r} -> {v!r}'
                             for k, v in new.items() if old.get(k) != v)
            raise FileExistsError(
                f'{root} holds a SynthCC dataset made with other settings '
                f'({diff}). Pass overwrite=True (--overwrite) to replace it, '
                'or choose another folder.')
        # an interrupted, modified or replaced run of ours: start afresh
        _remove_outputs(root)

    os.makedirs(root, exist_ok=True)
    # written first, so an interrupted run is recognisably ours
    _write_json(
        osp.join(root, META_FILE),
        dict(
            generator='SynthCC',
            generator_version=GENERATOR_VERSION,
            seed=seed,
            params=params,
            complete=False))
    base = osp.join(root, DATASET_DIR)
    for folder in SPLIT_FOLDERS:
        os.makedirs(osp.join(base, folder), exist_ok=True)
        os.makedirs(osp.join(base, f'{folder}-mask'), exist_ok=True)
    os.makedirs(osp.join(base, 'info'), exist_ok=True)

    n_train, n_test = params['train_ids'], params['test_ids']
    split_pids = {
        'train': list(range(1, n_train + 1)),
        'test': list(range(n_train + 1, n_train + n_test + 1)),
    }
    cameras = [
        sample_camera(seed, c) for c in range(1, params['num_cameras'] + 1)
    ]
    img_size = tuple(params['img_size'])
    identities, pools, tasks = {}, {}, []
    for split, pids in split_pids.items():
        specs, pool = plan_split(seed, split, pids, params['outfits_per_id'],
                                 params['cameras_per_outfit'],
                                 params['frames_per_camera'],
                                 params['num_cameras'])
        pools[split] = pool
        for pid in pids:
            identities[pid] = sample_cc_identity(seed, pid)
            tasks.append((base, seed, split, identities[pid],
                          [sp for sp in specs
                           if sp.pid == pid], pool, cameras, img_size))
    if num_workers and num_workers > 0 and len(tasks) > 1:
        with multiprocessing.get_context().Pool(num_workers) as workers:
            # imap keeps task order: the same records as serially
            results = list(workers.imap(_render_identity, tasks, chunksize=4))
    else:
        results = [_render_identity(t) for t in tasks]
    images = [record for records in results for record in records]

    for split, pids in split_pids.items():
        with open(
                osp.join(base, 'info', f'cloth-change_id_{split}.txt'),
                'w',
                encoding='utf-8') as f:
            f.write(''.join(f'{pid}\n' for pid in pids))
        # every identity changes clothes; the files exist for LTCC tools
        open(
            osp.join(base, 'info', f'cloth-unchange_id_{split}.txt'),
            'w',
            encoding='utf-8').close()

    counts = {}
    for folder in SPLIT_FOLDERS:
        rows = [r for r in images if r['folder'] == folder]
        counts[folder] = dict(
            ids=len({r['pid']
                     for r in rows}), images=len(rows))
    counts['total'] = dict(ids=n_train + n_test, images=len(images))

    _write_json(
        osp.join(root, ATTRIBUTES_FILE),
        dict(
            generator_version=GENERATOR_VERSION,
            seed=seed,
            identities={
                str(pid): ident.cues()
                for pid, ident in identities.items()
            },
            outfit_pools={
                split: [o.to_dict() for o in pool]
                for split, pool in pools.items()
            },
            cameras=[c.to_dict() for c in cameras],
            images=images))
    with open(osp.join(root, README_FILE), 'w', encoding='utf-8') as f:
        f.write(_readme(params, counts))
    _write_json(
        osp.join(root, META_FILE),
        dict(
            generator='SynthCC',
            generator_version=GENERATOR_VERSION,
            seed=seed,
            params=params,
            counts=counts,
            digest=dataset_digest(root),
            complete=True))
    logger.info('SynthCC written to %s: %s', root, counts['total'])
    return dict(counts, generated=True)
