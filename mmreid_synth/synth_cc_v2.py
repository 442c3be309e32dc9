"""SynthCC v2: a generated cloth-changing ReID benchmark in the LTCC layout,
with LIP parsing masks, designed so that it can tell a method that learns
clothes-independent identity cues from one that matches clothes.

Design (each point is measured by ``tools/analysis/synth_cc_probe.py`` and
the numbers are recorded in the README):

* **Framing like a detector box.** The person is drawn at four times the
  output size, boxed like a detector would box them (tight box, jittered
  margins, at most 3.2 : 1) and area-downsampled to 128 x 64 without
  keeping the aspect ratio; the person covers about half of the pixels.
* **No camera shortcut.** Every frame draws its background from a pool of
  scenes shared by all cameras (offset, zoom and flip per frame); a camera
  only adds a mild colour cast and its noise level, and the walking
  direction does not depend on the camera.
* **Identity cues that survive a change of clothes**: skin tone (face,
  neck, hands, and arms / legs with short sleeves, sleeveless tops, shorts
  and skirts), hair colour and style (with volume, visible from every side
  in most frames), head size, body build and leg length, shoes (a person
  keeps one pair) and a face feature. Most outfits bare the arms (short
  sleeves or none, about 70%) or the legs (shorts or skirts, about 60%),
  so the shielding view (clothes pixels blanked) keeps a sixth of the
  image: as much as the identity cues.
* **A real clothes shortcut.** Each training identity wears 3 or 4 outfits
  of its own (no two training outfits alike), unevenly: about 60 / 25 / 15
  % of its images (55 / 22 / 13 / 10 with four), so clothes identify a
  training person. The test identities wear 3 unseen outfits each (none
  like a training outfit), and some pairs of test identities share a
  look-alike outfit: matching clothes finds the same outfit in other
  cameras (general mode) but never the person in other clothes
  (cloth-changing mode), where only the identity cues work.

Layout (exactly LTCC's, so ``LTCC(data_root=<root>/LTCC_ReID,
with_mask=True)`` reads it unchanged; the same as SynthCC v1)::

    <root>/
      LTCC_ReID/
        train/PPP_C_cKK_FFFFFF.png   # pid, clothes index of that person,
        query/...                    # camera, frame
        test/...                     # the gallery
        train-mask/<same name>.png   # uint8 LIP labels of every pixel
        query-mask/... test-mask/...
        info/cloth-change_id_{train,test}.txt      # every id (one a line)
        info/cloth-unchange_id_{train,test}.txt    # empty: all ids change
      README.txt                     # version, seed, counts, design and
                                     # the acceptance numbers
      meta.json                      # manifest: version, seed, parameters,
                                     # counts, content digest
      synth_cc_attributes.json       # identities, outfits, cameras, scenes
                                     # and every image's parameters

Masks use LIP ids as v1's (0 background, 1 hat, 2 hair, 5 upper-clothes, 7
coat, 9 pants, 12 skirt, 13 face, 14/15 arms, 16/17 legs, 18/19 shoes); a
pixel's label is the part covering most of it at the render scale.

Test split: per identity, outfit and camera, frame 0 of
``queries_per_outfit`` of the outfit's cameras is a query, the rest is the
gallery; every query has same-clothes matches (the outfit in other
cameras) and cloth-changing matches (the other outfits in other cameras).

Everything is a function of the seed and the parameters; the random
streams are keyed by ``(seed, stream, ...)`` (:mod:`.seeding`). Bump
:data:`GENERATOR_VERSION` whenever the output for a seed changes.
"""
import dataclasses
import logging
import math
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from .renderer import RGB, CCRender, check_img_size, jitter
from .renderer_v2 import (RENDER_SCALE, Scene, render_cc_v2_view, sample_scene)
from .seeding import (CC2_STREAM_CAMERA, CC2_STREAM_FRAME, CC2_STREAM_IDENTITY,
                      CC2_STREAM_OUTFIT, CC2_STREAM_PLAN, make_rng)
from .writer import (DatasetFolder, check_int, map_tasks, readme_text,
                     tree_digest, write_image, write_json)

__all__ = [
    'GENERATOR_VERSION', 'SIZES', 'ACCEPTANCE', 'RECORDED_DIGESTS',
    'GARMENT_COLOURS', 'OUTFIT_SHARES', 'IdentityV2', 'OutfitV2', 'CameraV2',
    'FrameV2', 'ImageSpec', 'sample_identity_v2', 'sample_camera_v2',
    'plan_dataset', 'sample_frame_v2', 'render_image', 'generate_synth_cc_v2',
    'dataset_digest'
]

#: Bumped whenever the output for a given seed changes.
GENERATOR_VERSION = '2.0.0'

#: Size presets. ``study``: the benchmark (48 train ids x 24 images = 1152
#: train images in 3-4 outfits each; 30 test ids x 3 outfits x 3 cameras x
#: 3 frames = 810 test images: 270 queries, 540 gallery; 6 cameras; 128 x
#: 64). ``tiny``: a few seconds to generate, for the tests.
SIZES: Dict[str, dict] = {
    'study':
    dict(
        train_ids=48,
        test_ids=30,
        train_images_per_id=24,
        frames_per_visit=3,
        test_outfits_per_id=3,
        cameras_per_outfit=3,
        frames_per_camera=3,
        queries_per_outfit=3,
        lookalike_pairs=4,
        num_cameras=6,
        num_scenes=48,
        img_size=(128, 64)),
    'tiny':
    dict(
        train_ids=6,
        test_ids=10,
        train_images_per_id=12,
        frames_per_visit=2,
        test_outfits_per_id=3,
        cameras_per_outfit=3,
        frames_per_camera=2,
        queries_per_outfit=2,
        lookalike_pairs=1,
        num_cameras=6,
        num_scenes=24,
        img_size=(128, 64)),
}

#: Share of an identity's training images per outfit, by number of outfits.
OUTFIT_SHARES: Dict[int, Tuple[float, ...]] = {
    3: (0.60, 0.25, 0.15),
    4: (0.55, 0.22, 0.13, 0.10),
}

#: Acceptance numbers measured by ``tools/analysis/synth_cc_probe.py`` on
#: the dataset of a (preset, seed), copied from its output; the README of
#: that dataset quotes them (see also README.md, "SynthCC v2").
#: The content digest of each recorded dataset.
RECORDED_DIGESTS: Dict[Tuple[str, int], str] = {
    ('study', 0):
    'a4253b12f52e02d14195b08fa6a39fdd4bd3afbe1c6a9c3a60361a9b193a9169',
}
ACCEPTANCE: Dict[Tuple[str, int], Tuple[str, ...]] = {
    ('study', 0): (
        'framing: person 48.7% of the pixels (>= 45); shielding view keeps '
        '16.5% (>= 15);',
        '  hair visible in 96.7% of images; head 29.5 px tall; 19.6 whole '
        '8x8 patches',
        '  of identity cues per image (3.3 of 16x16)',
        'ReIDMetric, LTCC protocol, test (270 queries, 540 gallery): '
        'general R@1 / mAP,',
        '  cloth-changing R@1 / mAP',
        '  chance (random ranking)  2.6 / 3.7   1.9 / 3.0  (R@1 std 0.9, '
        '0.7)',
        '  raw-pixel               59.6 / 18.2  4.8 / 5.5',
        '  background-only (hist)   1.9 / 3.7   1.1 / 3.0  (<= chance + 2)',
        '  background-only (grid)   4.1 / 3.8   2.6 / 3.2  (<= chance + 2)',
        '  clothes-only            90.7 / 27.1  1.5 / 3.4  (>= 80; <= '
        'chance + 3)',
        '  identity-cue-only       98.1 / 85.0 95.6 / 83.1 (cc >= 80)',
        'cameras: raw-pixel top-1 among other people from the query\'s '
        'camera 17.0%',
        '  (every image as query 18.1%; chance 16.8%, <= chance + 5); '
        'camera from the',
        '  colour of the top 20% of rows 17.8% (chance 21.1%)',
        'train: 24 ids with 3 outfits (58/25/17% of their images), 24 with '
        '4',
        '  (54/21/12/12%); clothes-only R@1 train vs train 93.3 (>= 90)',
        'content digest of LTCC_ReID/ (meta.json):',
        '  a4253b12f52e02d14195b08fa6a39fdd4bd3afbe1c6a9c3a60361a9b193a9169',
    ),
}

DATASET_DIR = 'LTCC_ReID'
META_FILE = 'meta.json'
README_FILE = 'README.txt'
ATTRIBUTES_FILE = 'synth_cc_attributes.json'
SPLIT_FOLDERS = ('train', 'query', 'test')
INFO_FILES = ('cloth-change_id_train.txt', 'cloth-change_id_test.txt',
              'cloth-unchange_id_train.txt', 'cloth-unchange_id_test.txt')
_SPLIT_CODE = {'train': 1, 'test': 2}

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# vocabularies (yapf: disable)

#: Skin tones: identity cue.
_SKINS: Tuple[RGB, ...] = ((250, 222, 198), (236, 196, 162), (212, 164, 124),
                           (176, 122, 84), (132, 88, 58), (96, 64, 44))
#: Hair colours: identity cue.
_HAIRS: Tuple[RGB, ...] = ((20, 18, 18), (70, 44, 28), (128, 84, 46),
                           (220, 186, 116), (176, 176, 170), (160, 62, 28),
                           (60, 60, 110))
HAIR_STYLES = ('bald', 'buzz', 'short', 'curly', 'medium', 'long',
               'ponytail', 'bun')
_HAIR_STYLE_W = (3, 10, 22, 10, 16, 18, 12, 9)
FACE_FEATURES = ('plain', 'beard', 'moustache', 'mark')
_FACE_W = (50, 20, 15, 15)
SHOE_KINDS = ('shoes', 'sneakers', 'boots')
_SHOE_COLOURS: Tuple[RGB, ...] = ((24, 24, 26), (236, 236, 232), (112, 70, 38),
                                  (128, 128, 132), (190, 36, 40),
                                  (40, 80, 190), (212, 192, 150),
                                  (40, 130, 60))
#: Garment colours: fourteen well-separated ones (salient clothes).
GARMENT_COLOURS: Tuple[RGB, ...] = (
    (28, 28, 32), (236, 236, 232), (128, 128, 132), (200, 32, 38),
    (240, 142, 178), (240, 128, 32), (238, 210, 44), (118, 74, 40),
    (40, 142, 62), (20, 140, 150), (44, 92, 204), (26, 36, 88),
    (116, 56, 152), (212, 192, 152))
UPPER_PATTERNS = ('plain', 'stripes', 'band', 'two-tone', 'checks')
_PATTERN_W = (40, 20, 12, 16, 12)
SLEEVES = ('none', 'short', 'long')
_SLEEVES_W = (22, 52, 26)
LOWER_KINDS = ('trousers', 'shorts', 'skirt')
_LOWER_W = (32, 36, 32)
HAT_KINDS = ('cap', 'beanie')
_COAT_P = 0.08
_COAT_OPEN_P = 0.5
_HAT_P = 0.12
DIRECTIONS = ('front', 'back', 'left', 'right')
_DIRECTION_W = (32, 32, 18, 18)
# yapf: enable

# ---------------------------------------------------------------------------
# attributes


def _tuplify(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclasses.dataclass(frozen=True)
class IdentityV2:
    """The clothes-independent appearance of one person.

    Attributes:
        pid (int): 1-based person id.
        build (float): Width factor, in [0.85, 1.2].
        head (float): Head size factor, in [0.88, 1.14].
        leg (float): Hip height as a fraction of the body height (longer
            legs: larger), in [0.46, 0.54].
        skin (tuple): Skin RGB.
        hair_style (str): One of :data:`HAIR_STYLES`.
        hair_colour (tuple): Hair RGB.
        face (str): One of :data:`FACE_FEATURES`.
        shoes (str): One of :data:`SHOE_KINDS`.
        shoe_colour (tuple): Shoe RGB.
    """
    pid: int
    build: float
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
        d = _tuplify(dataclasses.asdict(self))
        d.pop('pid')
        return d


@dataclasses.dataclass(frozen=True)
class OutfitV2:
    """One outfit, worn by one identity (or by two, as a test look-alike).

    Attributes:
        key (str): ``'<pid>_<clothes>'``, the LTCC clothes string.
        look (tuple): Palette indices of what is seen: ``(main top
            colour (the coat's over a top), second top colour (the
            pattern's, or the top's under an open coat; -1: none),
            lower colour)``. No two outfits share a look (but the test
            look-alikes); as far as the palette allows, no two training
            outfits share a (main, lower) pair, nor two test outfits.
        upper_colour, pattern_colour, lower_colour (tuple): RGB.
        pattern (str): One of :data:`UPPER_PATTERNS`.
        sleeves (str): One of :data:`SLEEVES`.
        lower (str): One of :data:`LOWER_KINDS`.
        coat_colour (tuple, optional): Coat RGB; None without a coat.
        coat_open (bool): The coat is open at the front.
        hat (str, optional): One of :data:`HAT_KINDS`, or None.
        hat_colour (tuple, optional): Hat RGB.
        look_alike (str, optional): The key of the outfit this one copies
            (test look-alikes), else None.
    """
    key: str
    look: tuple
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
    look_alike: Optional[str] = None

    def to_dict(self) -> dict:
        """The outfit as JSON-able values."""
        return _tuplify(dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class CameraV2:
    """A camera: a mild colour cast and a noise level, nothing else.

    Attributes:
        camid (int): 1-based camera number (``cKK`` of the names).
        gain (tuple): RGB gain (colour cast and exposure), each within
            about 7% of 1.
        noise (float): Sensor-noise standard deviation (0-255 scale).
    """
    camid: int
    gain: Tuple[float, float, float]
    noise: float

    def to_dict(self) -> dict:
        """The camera as JSON-able values."""
        return _tuplify(dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class FrameV2:
    """One image of a person in one camera.

    Attributes:
        key (tuple): ``(pid, clothes, camid, frame)``; seeds the frame.
        direction (str): One of :data:`DIRECTIONS`.
        stride, phase, swing (float): Pose (see ``pose_body``).
        box (tuple): Detector-box margins ``(top, bottom, extra width,
            left share)`` (see ``detector_box``).
        scene (int): Index of the background in the scene pool.
        bg_offset (float): Where the crop sits in the scene, in [0, 1).
        bg_zoom (float): Scale of the scene's texture.
        bg_flip (bool): Mirror the background.
        light (tuple): Per-frame RGB jitter of the lighting.
        exposure (float): Per-frame exposure.
    """
    key: Tuple[int, int, int, int]
    direction: str
    stride: float
    phase: float
    swing: float
    box: Tuple[float, float, float, float]
    scene: int
    bg_offset: float
    bg_zoom: float
    bg_flip: bool
    light: Tuple[float, float, float]
    exposure: float


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """One image of the dataset plan.

    Attributes:
        pid (int): Person id.
        clothes (int): 1-based outfit number of that person (file name).
        camid (int): Camera number.
        frame (int): 0-based frame index within (pid, clothes, camid).
        folder (str): ``'train'``, ``'query'`` or ``'test'``.
        name (str): File name, ``PPP_C_cKK_FFFFFF.png``.
    """
    pid: int
    clothes: int
    camid: int
    frame: int
    folder: str
    name: str


def _pick(rng: np.random.Generator, options: Sequence, weights=None):
    if weights is None:
        return options[int(rng.integers(len(options)))]
    w = np.asarray(weights, np.float64)
    return options[int(rng.choice(len(options), p=w / w.sum()))]


def sample_identity_v2(seed: int, pid: int) -> IdentityV2:
    """Draw the clothes-independent cues of person ``pid`` (depends on
    ``(seed, pid)`` only)."""
    rng = make_rng(seed, CC2_STREAM_IDENTITY, pid)
    build = float(rng.uniform(0.85, 1.2))
    head = float(rng.uniform(0.88, 1.14))
    leg = float(rng.uniform(0.46, 0.54))
    skin = jitter(rng, _pick(rng, _SKINS), 0.04, 8)
    hair_style = _pick(rng, HAIR_STYLES, _HAIR_STYLE_W)
    hair_colour = jitter(rng, _pick(rng, _HAIRS), 0.06, 8)
    face = _pick(rng, FACE_FEATURES, _FACE_W)
    shoes = _pick(rng, SHOE_KINDS)
    shoe_colour = jitter(rng, _pick(rng, _SHOE_COLOURS), 0.05, 8)
    return IdentityV2(pid, build, head, leg, skin, hair_style, hair_colour,
                      face, shoes, shoe_colour)


def _draw_outfit(rng: np.random.Generator, key: str) -> OutfitV2:
    n = len(GARMENT_COLOURS)
    upper = int(rng.integers(n))
    pattern = _pick(rng, UPPER_PATTERNS, _PATTERN_W)
    # a pattern in the garment's own colour would be invisible
    pat = (upper + 1 + int(rng.integers(n - 1))) % n
    sleeves = _pick(rng, SLEEVES, _SLEEVES_W)
    lower_kind = _pick(rng, LOWER_KINDS, _LOWER_W)
    lower = (upper + 1 + int(rng.integers(n - 1))) % n  # salient: differs
    coat, coat_open = None, False
    if rng.random() < _COAT_P:
        coat = int(rng.integers(n))
        coat_open = bool(rng.random() < _COAT_OPEN_P)
        if lower_kind == 'shorts':
            # the knee-length coat would hide them completely
            lower_kind = 'trousers'
    hat = hat_colour = None
    if rng.random() < _HAT_P:
        hat = _pick(rng, HAT_KINDS)
        hat_colour = jitter(rng, GARMENT_COLOURS[int(rng.integers(n))], 0.04,
                            6)
    if coat is not None:
        look = (coat, upper if coat_open else -1, lower)
    else:
        look = (upper, -1 if pattern == 'plain' else pat, lower)
    return OutfitV2(
        key=key,
        look=look,
        upper_colour=jitter(rng, GARMENT_COLOURS[upper], 0.04, 6),
        pattern=pattern,
        pattern_colour=jitter(rng, GARMENT_COLOURS[pat], 0.04, 6),
        sleeves=sleeves,
        lower=lower_kind,
        lower_colour=jitter(rng, GARMENT_COLOURS[lower], 0.04, 6),
        coat_colour=(None if coat is None else jitter(
            rng, GARMENT_COLOURS[coat], 0.04, 6)),
        coat_open=coat_open,
        hat=hat,
        hat_colour=hat_colour)


#: Draws of an outfit that must also avoid the (main, lower) colour pairs
#: already used in its split; later draws only avoid the looks.
_PAIR_ATTEMPTS = 300


def _unique_outfit(seed: int, split: str, pid: int, clothes: int,
                   looks: Set[tuple], pairs: Set[tuple]) -> OutfitV2:
    """An outfit whose look is not in ``looks`` and (while possible) whose
    (main, lower) colours are not in ``pairs``; both sets get it."""
    for attempt in range(10 * _PAIR_ATTEMPTS):
        rng = make_rng(seed, CC2_STREAM_OUTFIT, _SPLIT_CODE[split], pid,
                       clothes, attempt)
        outfit = _draw_outfit(rng, f'{pid:03d}_{clothes}')
        pair = (outfit.look[0], outfit.look[2])
        if outfit.look in looks or (attempt < _PAIR_ATTEMPTS
                                    and pair in pairs):
            continue
        looks.add(outfit.look)
        pairs.add(pair)
        return outfit
    raise RuntimeError('could not draw a unique outfit')  # pragma: no cover


def _look_alike(seed: int, original: OutfitV2, key: str) -> OutfitV2:
    """A copy of ``original`` with its own slight colour jitter."""
    rng = make_rng(seed, CC2_STREAM_OUTFIT, 3, *map(int, key.split('_')))
    return dataclasses.replace(
        original,
        key=key,
        upper_colour=jitter(rng, original.upper_colour, 0.03, 5),
        pattern_colour=jitter(rng, original.pattern_colour, 0.03, 5),
        lower_colour=jitter(rng, original.lower_colour, 0.03, 5),
        coat_colour=(None if original.coat_colour is None else jitter(
            rng, original.coat_colour, 0.03, 5)),
        hat_colour=(None if original.hat_colour is None else jitter(
            rng, original.hat_colour, 0.03, 5)),
        look_alike=original.key)


def sample_camera_v2(seed: int, camid: int) -> CameraV2:
    """Draw camera ``camid``: a mild colour cast and a noise level."""
    rng = make_rng(seed, CC2_STREAM_CAMERA, camid)
    warm = rng.uniform(-1.0, 1.0)
    bright = rng.uniform(0.96, 1.04)
    gain = (bright * (1.0 + 0.03 * warm), bright, bright * (1.0 - 0.03 * warm))
    return CameraV2(camid, tuple(float(g) for g in gain),
                    float(rng.uniform(1.5, 3.0)))


def sample_frame_v2(seed: int, pid: int, clothes: int, camid: int, index: int,
                    num_scenes: int) -> FrameV2:
    """Draw frame ``index`` of person ``pid`` in outfit ``clothes`` seen by
    camera ``camid``.

    The walking direction is shared by the frames of one (person, outfit,
    camera) visit, as in a tracklet, and does not depend on the camera;
    pose, box, background and exposure change per frame.
    """
    key = (pid, clothes, camid, index)
    visit = make_rng(seed, CC2_STREAM_FRAME, pid, clothes, camid, 1 << 20)
    direction = _pick(visit, DIRECTIONS, _DIRECTION_W)
    rng = make_rng(seed, CC2_STREAM_FRAME, *key)
    return FrameV2(
        key=key,
        direction=direction,
        stride=float(rng.uniform(0.15, 0.9)),
        phase=float(rng.uniform(-1.0, 1.0)),
        swing=float(rng.uniform(0.1, 0.9)),
        box=(float(rng.uniform(0.01, 0.04)), float(rng.uniform(0.005, 0.025)),
             float(rng.uniform(0.03, 0.14)), float(rng.uniform(0.3, 0.7))),
        scene=int(rng.integers(num_scenes)),
        bg_offset=float(rng.random()),
        bg_zoom=float(rng.uniform(0.85, 1.2)),
        bg_flip=bool(rng.random() < 0.5),
        light=tuple(float(v) for v in rng.uniform(0.97, 1.03, size=3)),
        exposure=float(rng.uniform(0.9, 1.1)))


# ---------------------------------------------------------------------------
# dataset plan


def _name(pid: int, clothes: int, camid: int, frame_no: int) -> str:
    return f'{pid:03d}_{clothes}_c{camid:02d}_{frame_no:06d}.png'


def _split_counts(total: int, shares: Sequence[float]) -> List[int]:
    """``total`` split by ``shares`` (largest remainders, at least 2
    each)."""
    raw = [total * s for s in shares]
    counts = [max(2, int(math.floor(r))) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (counts[i] - raw[i], i))
    k = 0
    while sum(counts) < total:
        counts[order[k % len(order)]] += 1
        k += 1
    while sum(counts) > total:
        i = max(range(len(counts)), key=lambda j: (counts[j], -j))
        counts[i] -= 1
    return counts


def _plan_train(seed: int, pid: int, params: dict) -> List[tuple]:
    """``(clothes, camid, frame)`` of a training identity's images."""
    rng = make_rng(seed, CC2_STREAM_PLAN, 1, pid)
    n_outfits = 3 if rng.random() < 0.5 else 4
    counts = _split_counts(params['train_images_per_id'],
                           OUTFIT_SHARES[n_outfits])
    per_visit = params['frames_per_visit']
    out = []
    for clothes, count in enumerate(counts, 1):
        # at least two visits (cameras) per outfit
        n_vis = max(2, int(math.ceil(count / per_visit)))
        cams = rng.permutation(params['num_cameras']) + 1
        sizes = [count // n_vis + (v < count % n_vis) for v in range(n_vis)]
        for v, size in enumerate(sizes):
            cam = int(cams[v % len(cams)])
            out += [(clothes, cam, f) for f in range(size)]
    return out


def _plan_test(seed: int, pid: int, params: dict) -> List[tuple]:
    """``(clothes, camid, frame, is_query)`` of a test identity's
    images."""
    rng = make_rng(seed, CC2_STREAM_PLAN, 2, pid)
    out = []
    for clothes in range(1, params['test_outfits_per_id'] + 1):
        cams = rng.choice(
            params['num_cameras'], params['cameras_per_outfit'],
            replace=False) + 1
        queries = set(cams[:params['queries_per_outfit']].tolist())
        for cam in sorted(int(c) for c in cams):
            for f in range(params['frames_per_camera']):
                out.append((clothes, cam, f, cam in queries and f == 0))
    return out


def plan_dataset(seed: int, params: dict) -> Dict[str, Any]:
    """Identities, outfits and every image of the dataset.

    Returns:
        dict: ``pids`` (per split), ``identities`` (pid -> IdentityV2),
        ``outfits`` (clothes key -> OutfitV2), ``specs`` (pid -> list of
        ImageSpec) and ``lookalikes`` (pairs of test pids).
    """
    n_train, n_test = params['train_ids'], params['test_ids']
    pids = dict(
        train=list(range(1, n_train + 1)),
        test=list(range(n_train + 1, n_train + n_test + 1)))
    identities = {
        pid: sample_identity_v2(seed, pid)
        for split in pids
        for pid in pids[split]
    }
    outfits: Dict[str, OutfitV2] = {}
    specs: Dict[int, List[ImageSpec]] = {}
    # every look is used once; (main, lower) pairs once per split
    looks: Set[tuple] = set()
    pairs: Dict[str, Set[tuple]] = dict(train=set(), test=set())
    for pid in pids['train']:
        plan = _plan_train(seed, pid, params)
        specs[pid] = []
        for k, (clothes, cam, f) in enumerate(plan, 1):
            key = f'{pid:03d}_{clothes}'
            if key not in outfits:
                outfits[key] = _unique_outfit(seed, 'train', pid, clothes,
                                              looks, pairs['train'])
            specs[pid].append(
                ImageSpec(pid, clothes, cam, f, 'train',
                          _name(pid, clothes, cam, k)))
    for pid in pids['test']:
        specs[pid] = []
        for k, (clothes, cam, f,
                query) in enumerate(_plan_test(seed, pid, params), 1):
            key = f'{pid:03d}_{clothes}'
            if key not in outfits:
                outfits[key] = _unique_outfit(seed, 'test', pid, clothes,
                                              looks, pairs['test'])
            specs[pid].append(
                ImageSpec(pid, clothes, cam, f, 'query' if query else 'test',
                          _name(pid, clothes, cam, k)))
    # look-alike pairs: one outfit of the second person of a pair copies
    # one of the first's
    rng = make_rng(seed, CC2_STREAM_PLAN, 3)
    order = rng.permutation(pids['test']).tolist()
    pairs = []
    for i in range(min(params['lookalike_pairs'], len(order) // 2)):
        a, b = int(order[2 * i]), int(order[2 * i + 1])
        ca = 1 + int(rng.integers(params['test_outfits_per_id']))
        cb = 1 + int(rng.integers(params['test_outfits_per_id']))
        kb = f'{b:03d}_{cb}'
        outfits[kb] = _look_alike(seed, outfits[f'{a:03d}_{ca}'], kb)
        pairs.append([a, b])
    return dict(
        pids=pids,
        identities=identities,
        outfits=outfits,
        specs=specs,
        lookalikes=pairs)


def render_image(seed: int, params: dict, identity: IdentityV2,
                 outfit: OutfitV2, camera: CameraV2, scenes: Sequence[Scene],
                 spec: ImageSpec) -> Tuple[CCRender, FrameV2]:
    """Render the image of ``spec``."""
    frame = sample_frame_v2(seed, spec.pid, spec.clothes, spec.camid,
                            spec.frame, len(scenes))
    out = render_cc_v2_view(identity, outfit, camera, scenes[frame.scene],
                            frame, tuple(params['img_size']), seed)
    return out, frame


def dataset_digest(root: str) -> str:
    """SHA-256 over the names and bytes of every file under
    ``<root>/LTCC_ReID`` (sorted)."""
    return tree_digest(osp.join(root, DATASET_DIR))


def _resolve_params(size: str, overrides: dict, seed: Any) -> dict:
    """The preset with ``overrides`` applied, validated."""
    if size not in SIZES:
        raise ValueError(f'unknown SynthCC v2 size {size!r}; choose from '
                         f'{", ".join(SIZES)}')
    params = dict(SIZES[size])
    unknown = set(overrides) - set(params)
    if unknown:
        raise TypeError(f'unknown parameters {sorted(unknown)}; SynthCC v2 '
                        f'takes {sorted(params)}')
    params.update({k: v for k, v in overrides.items() if v is not None})
    check_int('seed', seed, 0)
    for key in ('train_ids', 'test_ids', 'frames_per_visit',
                'test_outfits_per_id', 'cameras_per_outfit',
                'frames_per_camera', 'queries_per_outfit', 'num_cameras',
                'num_scenes'):
        check_int(key, params[key], 1)
    check_int('lookalike_pairs', params['lookalike_pairs'], 0)
    if params['train_images_per_id'] < 8:
        raise ValueError('train_images_per_id must be >= 8 (2 images of '
                         'each of up to 4 outfits)')
    if params['test_outfits_per_id'] < 2 or params['test_outfits_per_id'] > 9:
        raise ValueError('test_outfits_per_id must be in 2..9')
    if not (2 <= params['cameras_per_outfit'] <= params['num_cameras']):
        raise ValueError('cameras_per_outfit must be >= 2 and <= '
                         'num_cameras')
    if params['queries_per_outfit'] > params['cameras_per_outfit']:
        raise ValueError('queries_per_outfit exceeds cameras_per_outfit')
    if params['num_cameras'] > 99:
        raise ValueError('num_cameras must be <= 99 (cKK names)')
    if params['train_ids'] + params['test_ids'] > 999:
        raise ValueError('train_ids + test_ids must be <= 999')
    params['img_size'] = list(check_img_size(params['img_size']))
    params['seed'] = seed
    return params


def _readme(params: dict, counts: dict, stats: dict) -> str:
    size = params['size']
    preset = SIZES[size]
    regenerate = [
        '  python tools/dataset_converters/make_synth_cc.py <root> '
        f'--version 2 --seed {params["seed"]} --size {size}' +
        ''.join(f' --{k.replace("_", "-")} {params[k]}'
                for k in ('train_ids', 'test_ids') if params[k] != preset[k])
    ]
    others = [
        k for k in preset if k not in ('train_ids', 'test_ids')
        and list(np.atleast_1d(params[k])) != list(np.atleast_1d(preset[k]))
    ]
    if others:
        regenerate.append(f'  (and {", ".join(others)} as in meta.json, '
                          'through generate_synth_cc_v2())')
    # the recorded numbers hold for the preset's own parameters only
    overridden = any(
        list(np.atleast_1d(params[k])) != list(np.atleast_1d(v))
        for k, v in preset.items())
    measured = None if overridden else ACCEPTANCE.get((size, params['seed']))
    notes = [
        'Design: the person is boxed like a detector box (drawn at '
        f'{RENDER_SCALE}x, area-downsampled);',
        'backgrounds come per frame from a pool of '
        f'{params["num_scenes"]} scenes shared by all cameras (a camera',
        'adds a mild colour cast only); identity lives in skin, hair, '
        'head size, build,',
        'leg length, shoes and a face feature; each training identity '
        'wears 3-4 outfits',
        'of its own (about 60/25/15% of its images); test outfits are '
        'unseen, and',
        f'{stats["lookalike_pairs"]} pairs of test identities share a '
        'look-alike outfit.',
        f'Train outfits: {stats["train_outfits"]} '
        f'({stats["train_outfit_counts"]} identities with 3 / 4 outfits); '
        f'test outfits: {stats["test_outfits"]}.',
        '',
        'Resolution / patch: 128 x 64 with 8-pixel patches (16 x 8 '
        'tokens): the head and',
        'hair span whole patches; at 16-pixel patches they are a '
        'fraction of one.',
        '',
    ]
    if measured:
        notes += [
            'Acceptance numbers (tools/analysis/synth_cc_probe.py, '
            'recorded for this preset and seed):'
        ] + [f'  {line}' for line in measured]
    else:
        notes += [
            'Acceptance numbers: not recorded for this preset and seed; '
            'measure them with',
            '  python tools/analysis/synth_cc_probe.py <root>/LTCC_ReID'
        ]
    return readme_text(
        title=[
            'SynthCC v2: a synthetic cloth-changing person ReID benchmark '
            'in the LTCC',
            'layout (LTCC_ReID/{train,query,test} + *-mask LIP label maps).',
        ],
        version=GENERATOR_VERSION,
        seed=params['seed'],
        img_size=params['img_size'],
        settings=[
            f'preset: {size}; cameras: {params["num_cameras"]}; train: '
            f'{params["train_images_per_id"]} images per id; test: '
            f'{params["test_outfits_per_id"]} outfits x '
            f'{params["cameras_per_outfit"]} cameras x '
            f'{params["frames_per_camera"]} frames per id, '
            f'{params["queries_per_outfit"]} queries per outfit'
        ],
        table=['folder  ids  images'] + [
            f'{folder:<6} {counts[folder]["ids"]:>4} '
            f'{counts[folder]["images"]:>7}' for folder in SPLIT_FOLDERS
        ],
        notes=notes,
        regenerate=regenerate,
        disclaimer='All people are synthetic; no real person is depicted.')


def _render_identity(task: tuple) -> List[dict]:
    """Render and write every image of one identity; one record per image.

    A module-level function so that worker processes can run it.
    """
    base, seed, params, identity, specs, outfits, cameras, scenes = task
    records = []
    for spec in specs:
        out, frame = render_image(seed, params, identity,
                                  outfits[f'{spec.pid:03d}_{spec.clothes}'],
                                  cameras[spec.camid - 1], scenes, spec)
        write_image(osp.join(base, spec.folder, spec.name), out.image)
        write_image(
            osp.join(base, f'{spec.folder}-mask', spec.name), out.labels)
        records.append(
            dict(
                dataclasses.asdict(spec),
                direction=frame.direction,
                scene=frame.scene))
    return records


def generate_synth_cc_v2(root: str,
                         seed: int = 0,
                         size: str = 'study',
                         overwrite: bool = False,
                         num_workers: int = 0,
                         **overrides) -> dict:
    """Generate SynthCC v2 under ``root`` (see the module docstring).

    The output is a function of the arguments only: the same seed and
    parameters give byte-identical files. Re-running on a complete,
    unchanged dataset made with the same arguments and generator version
    does nothing. The folder is owned through ``meta.json`` as v1's
    (generator ``'SynthCC'``): a v1 dataset is replaced only with
    ``overwrite``.

    Args:
        root (str): Output folder; created if missing.
        seed (int): Random seed (>= 0). Defaults to 0.
        size (str): A :data:`SIZES` preset. Defaults to 'study'.
        overwrite (bool): Replace a SynthCC dataset made with other
            arguments or version. Defaults to False.
        num_workers (int): Worker processes (0: render in this process);
            the output does not depend on it. Defaults to 0.
        **overrides: Preset values to change (the keys of :data:`SIZES`).

    Returns:
        dict: Counts per folder (``train``, ``query``, ``test``: ``ids``
        and ``images``) and ``'total'``, plus ``'generated'``.
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
            meta.get('complete') and meta.get('digest') == dataset_digest(root)
        ))
    if kept is not None:
        return dict(kept['counts'], generated=False)

    os.makedirs(root, exist_ok=True)
    out.write_manifest(dict(seed=seed, params=params), complete=False)
    base = out.path(DATASET_DIR)
    for rel in split_dirs + [osp.join(DATASET_DIR, 'info')]:
        os.makedirs(out.path(rel), exist_ok=True)

    plan = plan_dataset(seed, params)
    cameras = [
        sample_camera_v2(seed, c) for c in range(1, params['num_cameras'] + 1)
    ]
    scenes = [sample_scene(seed, k) for k in range(params['num_scenes'])]
    tasks = []
    for split in ('train', 'test'):
        for pid in plan['pids'][split]:
            mine = {
                k: v
                for k, v in plan['outfits'].items()
                if k.startswith(f'{pid:03d}_')
            }
            tasks.append((base, seed, params, plan['identities'][pid],
                          plan['specs'][pid], mine, cameras, scenes))
    results = map_tasks(_render_identity, tasks, num_workers, chunksize=2)
    images = [record for records in results for record in records]

    for split, pids in plan['pids'].items():
        with open(
                osp.join(base, 'info', f'cloth-change_id_{split}.txt'),
                'w',
                encoding='utf-8') as f:
            f.write(''.join(f'{pid}\n' for pid in pids))
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
    counts['total'] = dict(
        ids=params['train_ids'] + params['test_ids'], images=len(images))
    train_pids = set(plan['pids']['train'])
    per_id = [
        len({s.clothes
             for s in plan['specs'][pid]}) for pid in plan['pids']['train']
    ]
    stats = dict(
        train_outfits=sum(1 for k in plan['outfits']
                          if int(k.split('_')[0]) in train_pids),
        test_outfits=sum(1 for k in plan['outfits']
                         if int(k.split('_')[0]) not in train_pids),
        train_outfit_counts=f'{per_id.count(3)} / {per_id.count(4)}',
        lookalike_pairs=len(plan['lookalikes']))

    write_json(
        out.path(ATTRIBUTES_FILE),
        dict(
            generator_version=GENERATOR_VERSION,
            seed=seed,
            identities={
                str(pid): ident.cues()
                for pid, ident in plan['identities'].items()
            },
            outfits={
                k: o.to_dict()
                for k, o in plan['outfits'].items()
            },
            lookalike_pairs=plan['lookalikes'],
            cameras=[c.to_dict() for c in cameras],
            scenes=[s.to_dict() for s in scenes],
            images=images),
        indent=1)
    with open(out.path(README_FILE), 'w', encoding='utf-8') as f:
        f.write(_readme(params, counts, stats))
    out.write_manifest(
        dict(
            seed=seed,
            params=params,
            counts=counts,
            digest=dataset_digest(root)),
        complete=True)
    logger.info('SynthCC v2 written to %s: %s', root, counts['total'])
    return dict(counts, generated=True)
