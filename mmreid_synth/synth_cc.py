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
("left" is the person's left). They match the pixels exactly: figures are
drawn without anti-aliasing, every shape into the image and the label map
at once (:func:`~.renderer.render_cc_view`), and the camera effects
(lighting, sensor noise) act per pixel; a background pixel is exactly the
camera's background.

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
import json
import logging
import math
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .pedestrian import COLOURS
from .renderer import (EYE_COLOUR, FAR_SHADE, LIP_LABELS, MARK_COLOUR, RGB,
                       SOLE_COLOURS, CCRender, check_img_size, jitter,
                       render_cc_view)
from .seeding import (CC_STREAM_ASSIGN, CC_STREAM_CAMERA, CC_STREAM_FRAME,
                      CC_STREAM_IDENTITY, CC_STREAM_OUTFIT, make_rng)
from .writer import (DatasetFolder, check_int, map_tasks, readme_text,
                     tree_digest, write_image, write_json)

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

#: The labels SynthCC uses for clothes (a subset of CCAF's default set).
CLOTHES_LABELS: Tuple[int, ...] = (1, 5, 7, 9, 12)

DATASET_DIR = 'LTCC_ReID'
META_FILE = 'meta.json'
README_FILE = 'README.txt'
ATTRIBUTES_FILE = 'synth_cc_attributes.json'
SPLIT_FOLDERS = ('train', 'query', 'test')
INFO_FILES = ('cloth-change_id_train.txt', 'cloth-change_id_test.txt',
              'cloth-unchange_id_train.txt', 'cloth-unchange_id_test.txt')

logger = logging.getLogger(__name__)

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


def _pick(rng: np.random.Generator, options: Sequence, weights=None):
    if weights is None:
        return options[int(rng.integers(len(options)))]
    w = np.asarray(weights, np.float64)
    return options[int(rng.choice(len(options), p=w / w.sum()))]


def _jitter(rng: np.random.Generator, rgb: RGB, amount: float) -> RGB:
    return jitter(rng, rgb, amount, offset=8)


def sample_cc_identity(seed: int, pid: int) -> CCIdentity:
    """Draw the clothes-independent cues of person ``pid``.

    Args:
        seed (int): Dataset seed.
        pid (int): 1-based person id; the cues depend on ``(seed, pid)``
            only.

    Returns:
        CCIdentity: The person.
    """
    rng = make_rng(seed, CC_STREAM_IDENTITY, pid)
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
    rng = make_rng(seed, CC_STREAM_OUTFIT, _SPLIT_CODE[split], index)
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
    rng = make_rng(seed, CC_STREAM_ASSIGN, pid)
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
    rng = make_rng(seed, CC_STREAM_CAMERA, camid)
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
    visit = make_rng(seed, CC_STREAM_FRAME, pid, clothes, camera.camid,
                     1 << 20)
    kind = _pick(visit, ('front', 'back', 'side'), camera.directions)
    if kind == 'side':
        kind = 'left' if visit.random() < 0.5 else 'right'
    rng = make_rng(seed, CC_STREAM_FRAME, *key)
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
        pick = make_rng(seed, CC_STREAM_ASSIGN, pid, 1)
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


def dataset_digest(root: str) -> str:
    """SHA-256 over the names and bytes of every file under
    ``<root>/LTCC_ReID`` (sorted), i.e. the generated data.

    Args:
        root (str): The SynthCC output folder.

    Returns:
        str: Hex digest.
    """
    return tree_digest(osp.join(root, DATASET_DIR))


def _resolve_params(size: str, overrides: dict, seed: Any) -> dict:
    """The preset with ``overrides`` applied, validated."""
    if size not in SIZES:
        raise ValueError(f'unknown size {size!r}; choose from '
                         f'{", ".join(SIZES)}')
    params = dict(SIZES[size])
    unknown = set(overrides) - set(params)
    if unknown:
        raise TypeError(f'unknown parameters {sorted(unknown)}; SynthCC '
                        f'takes {sorted(params)}')
    params.update({k: v for k, v in overrides.items() if v is not None})
    check_int('seed', seed, 0)
    for key in ('train_ids', 'test_ids', 'outfits_per_id',
                'cameras_per_outfit', 'frames_per_camera', 'num_cameras'):
        check_int(key, params[key], 1)
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
    params['img_size'] = list(check_img_size(params['img_size']))
    params['seed'] = seed
    return params


def _readme(params: dict, counts: dict) -> str:
    preset = SIZES[params['size']]
    regenerate = [
        f'  python tools/dataset_converters/make_synth_cc.py <root> --seed '
        f'{params["seed"]} --size {params["size"]}' +
        ''.join(f' --{k.replace("_", "-")} {params[k]}'
                for k in ('train_ids', 'test_ids') if params[k] != preset[k])
    ]
    others = [
        k for k in ('outfits_per_id', 'cameras_per_outfit',
                    'frames_per_camera', 'num_cameras', 'img_size')
        if list(np.atleast_1d(params[k])) != list(np.atleast_1d(preset[k]))
    ]
    if others:
        # the CLI sets only the ids; the rest takes the Python API
        regenerate.append(f'  (and {", ".join(others)} as in meta.json, '
                          'through generate_synth_cc())')
    return readme_text(
        title=[
            'SynthCC: a synthetic cloth-changing person ReID dataset in the '
            'LTCC',
            'layout (LTCC_ReID/{train,query,test} + *-mask LIP label maps).',
        ],
        version=GENERATOR_VERSION,
        seed=params['seed'],
        img_size=params['img_size'],
        settings=[
            f'outfits per id: {params["outfits_per_id"]}, cameras per '
            f'outfit: {params["cameras_per_outfit"]} (of '
            f'{params["num_cameras"]}), frames per camera: '
            f'{params["frames_per_camera"]}'
        ],
        table=['folder  ids  images'] + [
            f'{folder:<6} {counts[folder]["ids"]:>4} '
            f'{counts[folder]["images"]:>7}' for folder in SPLIT_FOLDERS
        ],
        notes=[
            'Identity lives only in clothes-independent cues (body build, '
            'skin,',
            'hair, face feature, shoes); outfits come from a pool shared by '
            'the',
            'identities of a split, so clothes never identify a person.',
        ],
        regenerate=regenerate,
        disclaimer='All people are synthetic; no real person is depicted.')


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
        write_image(osp.join(base, spec.folder, spec.name), out.image)
        write_image(
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
    split_dirs = [
        osp.join(DATASET_DIR, name) for folder in SPLIT_FOLDERS
        for name in (folder, f'{folder}-mask')
    ]
    out = DatasetFolder(
        root,
        'SynthCC',
        GENERATOR_VERSION,
        META_FILE,
        dirs=split_dirs,
        files=[osp.join(DATASET_DIR, 'info', name) for name in INFO_FILES] +
        [META_FILE, README_FILE, ATTRIBUTES_FILE],
        prune=[osp.join(DATASET_DIR, 'info'), DATASET_DIR],
        indent=1)
    root = out.root
    kept = out.prepare(
        params, overwrite, lambda meta: bool(
            meta.get('complete')
            and meta.get('digest') == dataset_digest(root)))
    if kept is not None:
        return dict(kept['counts'], generated=False)

    os.makedirs(root, exist_ok=True)
    out.write_manifest(dict(seed=seed, params=params), complete=False)
    base = out.path(DATASET_DIR)
    for rel in split_dirs + [osp.join(DATASET_DIR, 'info')]:
        os.makedirs(out.path(rel), exist_ok=True)

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
    results = map_tasks(_render_identity, tasks, num_workers, chunksize=4)
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

    write_json(
        out.path(ATTRIBUTES_FILE),
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
            images=images),
        indent=1)
    with open(out.path(README_FILE), 'w', encoding='utf-8') as f:
        f.write(_readme(params, counts))
    out.write_manifest(
        dict(
            seed=seed,
            params=params,
            counts=counts,
            digest=dataset_digest(root)),
        complete=True)
    logger.info('SynthCC written to %s: %s', root, counts['total'])
    return dict(counts, generated=True)
