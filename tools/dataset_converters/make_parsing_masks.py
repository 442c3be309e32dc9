"""Write the LIP human-parsing masks that CCAF reads, with a local
``transformers`` semantic-segmentation checkpoint.

    # a cloth-changing dataset: masks where its loader looks for them
    python tools/dataset_converters/make_parsing_masks.py data/LTCC_ReID \
        --layout ltcc --model checkpoints/segformer_b2_clothes \
        [--splits train] [--batch-size 16] [--device cuda] \
        [--preview work_dirs/ltcc_masks.jpg]

    # any image tree: a mirrored tree of masks
    python tools/dataset_converters/make_parsing_masks.py data/imgs \
        --layout folder --output data/imgs-mask --model <checkpoint dir>

Layouts (``--layout``) and where the masks go (the rules of our loaders,
``docs/methods/datasets.md`` §3.1; ``--mask-dir`` overrides the template as a
config's ``mask_dir`` does):

=============== ===========================================================
``ltcc``        ``LTCC_ReID/{train,query,test}-mask/<stem>.png``
``synthcc``     the same, under ``<root>/LTCC_ReID`` (SynthCC uses LTCC's
                layout; ``root`` may be either folder)
``prcc``        ``prcc/mask/{train,val,test}/...`` mirroring ``prcc/rgb/``
``vcclothes``   ``VC-Clothes/{train,query,gallery}-mask/<stem>.png``
``deepchange``  ``DeepChangeDataset/<list folder>-mask/<rel path>.png``
``folder``      ``--output/<rel dir>/<stem>.png`` for every image under
                ``root`` (recursively)
=============== ===========================================================

The dataset layouts list their images with the dataset classes of
``mmreid_clip.datasets`` themselves, so a mask lands exactly where
``with_mask=True`` looks for it; images the loader does not read (names
that do not parse) are counted and logged, not masked.

Masks are uint8 single-channel PNGs of LIP ids (0 Background, 1 Hat, 2
Hair, 3 Glove, 4 Sunglasses, 5 UpperClothes, 6 Dress, 7 Coat, 8 Socks, 9
Pants, 10 Jumpsuits, 11 Scarf, 12 Skirt, 13 Face, 14 Left-arm, 15
Right-arm, 16 Left-leg, 17 Right-leg, 18 Left-shoe, 19 Right-shoe), of the
image's size: the model's logits are upsampled bilinearly to the image
size before the argmax, and the argmax's class is mapped to LIP.

Checkpoints: any folder with ``config.json``, the weights and a
``preprocessor_config.json`` that ``AutoModelForSemanticSegmentation`` /
``AutoImageProcessor`` load offline and whose processor resizes the whole
image (SegFormer, UperNet, ...; a centre crop is switched off). The
model's ``config.id2label`` names are matched, case- and
punctuation-insensitively, against the known label sets:

* **LIP** (20 classes, e.g. SCHP-style LIP parsers): the identity.
* **ATR** (18 classes: Background, Hat, Hair, Sunglasses, Upper-clothes,
  Skirt, Pants, Dress, Belt, Left-shoe, Right-shoe, Face, Left-leg,
  Right-leg, Left-arm, Right-arm, Bag, Scarf), the label set of the
  SegFormer "clothes" parsers on the Hugging Face hub
  (``mattmdjaga/segformer_b2_clothes`` and fine-tunes keeping its labels)
  and of SCHP's ATR model. Every ATR class but two has a LIP class of
  the same meaning. The two without one:

  - **Belt -> 9 Pants.** LIP has no belt class; a belt sits on the
    waistband of the lower garment, most often trousers, so it is taken as
    part of it. Both candidates (Pants, UpperClothes) are in CCAF's default
    clothes set, so the choice does not change what is shielded.
  - **Bag -> 0 Background.** LIP labels only the body and what it wears
    and has no bag class, so a carried bag is background there. Mapping it
    to a clothes class would shield it as clothes, to a body class would
    claim it is part of the person.

  LIP classes an ATR model never predicts: 3 Glove, 7 Coat (an ATR model
  calls a coat Upper-clothes, so it comes out as 5), 8 Socks and 10
  Jumpsuits.

Any other label set (or a checkpoint with generic ``LABEL_0`` ... names) is
an error naming the labels without a LIP counterpart; give them with
``--label-map map.json``: a JSON object from the model's label names (or
ids, as strings) to LIP ids or LIP class names, e.g. ``{"torso-skin": 0,
"glasses": "Sunglasses"}``. Its entries take precedence over the tables.

Runs are resumable: an image whose mask exists and is valid (a readable
single-channel uint8 PNG of the image's size with LIP ids) is skipped,
anything else is (re)written; ``--overwrite`` redoes everything. Masks are
written to a temporary file and renamed, so a killed run never leaves a
truncated PNG. The summary counts written, skipped and failed images, the
failures by reason; the exit status is 1 when any image failed.
``--preview sheet.jpg`` draws sampled (image | colour-coded mask) pairs to
check by eye.
"""
import argparse
import dataclasses
import json
import logging
import os
import os.path as osp
import re
import sys
import tempfile
from typing import (Any, Callable, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Tuple)

import cv2
import numpy as np

logger = logging.getLogger('make_parsing_masks')

# ---------------------------------------------------------------------------
# label sets and the mapping to LIP

#: LIP's 20 classes, in id order (the target of every mapping).
LIP_CLASSES: Tuple[str, ...] = (
    'Background', 'Hat', 'Hair', 'Glove', 'Sunglasses', 'UpperClothes',
    'Dress', 'Coat', 'Socks', 'Pants', 'Jumpsuits', 'Scarf', 'Skirt', 'Face',
    'Left-arm', 'Right-arm', 'Left-leg', 'Right-leg', 'Left-shoe',
    'Right-shoe')
NUM_LIP_CLASSES = len(LIP_CLASSES)

#: Known source label sets: label name -> LIP id (see the module docstring
#: for the choices). Names are compared after :func:`norm_label`.
LABEL_SETS: Dict[str, Dict[str, int]] = {
    # identity (SCHP spells 'Upper-clothes', the LIP paper 'UpperClothes')
    'LIP': {name: i
            for i, name in enumerate(LIP_CLASSES)},
    # SCHP's ATR model and the SegFormer "clothes" parsers
    'ATR': {
        'Background': 0,
        'Hat': 1,
        'Hair': 2,
        'Sunglasses': 4,
        'Upper-clothes': 5,
        'Skirt': 12,
        'Pants': 9,
        'Dress': 6,
        'Belt': 9,  # no LIP belt: on the waistband of the lower garment
        'Left-shoe': 18,
        'Right-shoe': 19,
        'Face': 13,
        'Left-leg': 16,
        'Right-leg': 17,
        'Left-arm': 14,
        'Right-arm': 15,
        'Bag': 0,  # carried, not worn: background in LIP
        'Scarf': 11,
    },
}


def norm_label(name: str) -> str:
    """A label name reduced to lower-case letters and digits
    (``'Upper-clothes'``, ``'upper_clothes'`` and ``'UpperClothes'`` are
    one name)."""
    return re.sub(r'[^a-z0-9]', '', str(name).lower())


def _lip_id(value: Any, where: str) -> int:
    """A LIP id given as an int (or digit string) or a LIP class name."""
    if isinstance(value, bool):
        value = None  # json true/false: not an id
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and 0 <= value < NUM_LIP_CLASSES:
        return value
    if isinstance(value, str):
        names = {norm_label(n): i for i, n in enumerate(LIP_CLASSES)}
        if norm_label(value) in names:
            return names[norm_label(value)]
    raise ValueError(f'{where}: {value!r} is not a LIP id (0..'
                     f'{NUM_LIP_CLASSES - 1}) or LIP class name '
                     f'({", ".join(LIP_CLASSES)})')


def load_label_map(path: str) -> Dict[str, int]:
    """Read a ``--label-map`` JSON file.

    Args:
        path (str): A JSON object from source label names (or ids as
            strings) to LIP ids or LIP class names.

    Returns:
        dict[str, int]: The raw keys to LIP ids.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Not a JSON object, or a value is not a LIP class (the
            message names the file and the key).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'--label-map {path} does not exist')
    with open(path, encoding='utf-8') as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'--label-map {path} is not valid JSON: '
                             f'{err}') from err
    if not isinstance(data, dict):
        raise ValueError(f'--label-map {path} must hold a JSON object '
                         '{"source label": LIP id or name, ...}, got '
                         f'{type(data).__name__}')
    return {
        str(k): _lip_id(v, f'--label-map {path}, key {k!r}')
        for k, v in data.items()
    }


def detect_label_set(names: Iterable[str]) -> Optional[str]:
    """The first known label set holding every one of ``names``."""
    wanted = {norm_label(n) for n in names}
    for set_name, table in LABEL_SETS.items():
        if wanted <= {norm_label(n) for n in table}:
            return set_name
    return None


def build_lut(id2label: Mapping[Any, str],
              label_map: Optional[Mapping[str, int]] = None,
              source: str = 'the model') -> np.ndarray:
    """The source-id -> LIP-id lookup table of a model's labels.

    A label is mapped by ``label_map`` (keyed by label name, matched like
    the tables, or by id as a string) if it is there, else by the known
    label set that holds all the model's labels, else by any known table
    that has the name.

    Args:
        id2label (Mapping): The model's ``config.id2label`` (ids as ints or
            strings, ids ``0..N-1``).
        label_map (Mapping[str, int], optional): User entries
            (``--label-map``), which take precedence.
        source (str): Named in errors (e.g. the checkpoint folder).

    Returns:
        np.ndarray: uint8 array of length N, ``lut[source_id] = LIP id``.

    Raises:
        ValueError: Some labels have no mapping (they are named), the ids
            are not ``0..N-1``, or a ``label_map`` key matches no label.
    """
    labels = {int(k): str(v) for k, v in id2label.items()}
    if sorted(labels) != list(range(len(labels))):
        raise ValueError(f'{source}: id2label ids must be 0..N-1, got '
                         f'{sorted(labels)}')
    user = {}
    for key, lip in (label_map or {}).items():
        hits = [i for i, n in labels.items()
                if norm_label(n) == norm_label(key) or str(i) == str(key)]
        if not hits:
            raise ValueError(
                f'--label-map key {key!r} names no label of {source} '
                f'(its labels: {", ".join(labels.values())})')
        for i in hits:
            user[i] = lip
    set_name = detect_label_set(labels.values())
    tables = ([LABEL_SETS[set_name]]
              if set_name else list(LABEL_SETS.values()))
    lut = np.zeros(len(labels), np.uint8)
    missing = []
    for i, name in labels.items():
        if i in user:
            lut[i] = user[i]
            continue
        for table in tables:
            found = {norm_label(n): v for n, v in table.items()}
            if norm_label(name) in found:
                lut[i] = found[norm_label(name)]
                break
        else:
            missing.append(f'{name!r} (id {i})')
    if missing:
        known = '; '.join(f'{k} ({", ".join(v)})'
                          for k, v in LABEL_SETS.items())
        raise ValueError(
            f'{source}: no LIP mapping for the labels {", ".join(missing)}. '
            f'Known label sets: {known}. Pass --label-map map.json mapping '
            'these names (or ids) to LIP ids or LIP class names')
    logger.info('label mapping (%s): %s', set_name or 'custom',
                ', '.join(f'{labels[i]}->{LIP_CLASSES[lut[i]]}'
                          for i in range(len(labels))))
    return lut


# ---------------------------------------------------------------------------
# where the masks go

#: ``--layout`` -> (dataset class of mmreid_clip.datasets, subfolder of the
#: root that is its data_root when present). ``folder`` has no class.
LAYOUTS: Dict[str, Tuple[Optional[str], Optional[str]]] = {
    'ltcc': ('LTCC', None),
    'synthcc': ('LTCC', 'LTCC_ReID'),
    'prcc': ('PRCC', None),
    'vcclothes': ('VCClothes', None),
    'deepchange': ('DeepChange', None),
    'folder': (None, None),
}


@dataclasses.dataclass
class Job:
    """One image and the mask path its loader expects."""
    img_path: str
    mask_path: str


def list_jobs(layout: str,
              root: str,
              splits: Optional[Sequence[str]] = None,
              mask_dir: Optional[str] = None,
              output: Optional[str] = None) -> Tuple[List[Job], dict]:
    """The images of a dataset and the mask path of each.

    Dataset layouts read the image lists with the dataset class (its
    ``_read_split``) and place masks with its ``mask_dir`` rule, the same
    code that ``with_mask=True`` runs, so the two cannot drift apart.

    Args:
        layout (str): A key of :data:`LAYOUTS`.
        root (str): The dataset folder (or image tree for ``folder``).
        splits (Sequence[str], optional): Dataset splits; all by default
            (then a split whose folders are missing is logged and left
            out; named splits must exist).
        mask_dir (str, optional): The loader's ``mask_dir`` template;
            the dataset's default if None.
        output (str, optional): The mask tree of the ``folder`` layout.

    Returns:
        tuple[list[Job], dict]: The jobs (one per image, in loader order)
        and ``{'ignored': {kind: [paths]}, 'missing_splits': {split:
        reason}}``.
    """
    from mmreid_clip.datasets.cloth_changing import MASK_EXTENSION
    if layout not in LAYOUTS:
        raise ValueError(f'unknown --layout {layout!r}; choose from '
                         f'{", ".join(LAYOUTS)}')
    if not osp.isdir(root):
        raise FileNotFoundError(f'dataset folder {root} does not exist')
    report: dict = dict(ignored={}, missing_splits={})
    cls_name, sub = LAYOUTS[layout]
    if cls_name is None:
        if not output:
            raise ValueError('--layout folder needs --output (the mask tree)')
        if splits or mask_dir:
            raise ValueError('--splits and --mask-dir are for the dataset '
                             'layouts; --layout folder writes to --output')
        return _folder_jobs(root, output, MASK_EXTENSION), report
    if output:
        raise ValueError(f'--output is for --layout folder; --layout '
                         f'{layout} writes where its loader reads (change '
                         'it with --mask-dir, e.g. /abs/path/{folder}-mask)')
    from mmreid_clip.datasets import cloth_changing
    cls = getattr(cloth_changing, cls_name)
    if sub and osp.isdir(osp.join(root, sub)):
        root = osp.join(root, sub)
    unknown = [s for s in splits or () if s not in cls.SPLITS]
    if unknown:
        raise ValueError(f'{cls.DATASET_NAME} has no split(s) '
                         f'{", ".join(unknown)}; it has '
                         f'{", ".join(cls.SPLITS)}')
    jobs: List[Job] = []
    owner: Dict[str, str] = {}  # mask path -> the image it belongs to
    for split in splits or cls.SPLITS:
        # 'skip': images the loader would not read are counted, not masked
        ds = cls(data_root=root, split=split, mask_dir=mask_dir,
                 on_bad_sample='skip', lazy_init=True)
        try:
            samples = ds._read_split()
        except FileNotFoundError as err:
            if splits:
                raise
            report['missing_splits'][split] = str(err)
            logger.warning('split %r left out: %s', split, err)
            continue
        for kind, paths in ds._skipped.items():
            report['ignored'].setdefault(kind, []).extend(paths)
        ds._folders = {s.folder for s in samples}
        for s in samples:
            # the path rule of ClothChangingDataset._attach_masks
            mask = osp.join(ds._mask_folder(s.folder),
                            osp.splitext(s.rel_path)[0] + MASK_EXTENSION)
            # a mask_dir without {folder} can send two splits' images of
            # one name to one mask: the second would overwrite the first
            if owner.setdefault(mask, s.img_path) != s.img_path:
                raise ValueError(
                    f'mask_dir={ds.mask_dir!r} gives {owner[mask]} and '
                    f'{s.img_path} the same mask {mask}; use a template '
                    "with {folder}, e.g. '{folder}-mask'")
            jobs.append(Job(s.img_path, mask))
    return jobs, report


def _folder_jobs(root: str, output: str, ext: str) -> List[Job]:
    try:  # the loaders' own image-extension rule
        from mmreid_clip.datasets.utils import is_image_file
    except ImportError:  # older tree: it lived with the CC datasets
        from mmreid_clip.datasets.cloth_changing import is_image_file
    root, output = osp.abspath(root), osp.abspath(output)
    jobs = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        # never descend into the output tree when it is inside the input
        dirnames[:] = [
            d for d in dirnames if osp.abspath(osp.join(dirpath, d)) != output
        ]
        for name in sorted(filenames):
            if is_image_file(name):
                rel = osp.relpath(osp.join(dirpath, name), root)
                jobs.append(
                    Job(
                        osp.join(root, rel),
                        osp.join(output,
                                 osp.splitext(rel)[0] + ext)))
    return jobs


# ---------------------------------------------------------------------------
# mask files


def read_rgb(path: str) -> np.ndarray:
    """An image as an ``HxWx3`` uint8 RGB array.

    Raises:
        ValueError: The file cannot be read or decoded.
    """
    data = np.fromfile(path, np.uint8) if osp.isfile(path) else None
    img = None
    if data is not None and data.size:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError('missing' if data is None else
                         'empty' if not data.size else 'not decodable')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def mask_problem(mask_path: str, hw: Tuple[int, int]) -> Optional[str]:
    """Why an existing mask is not valid (None when it is).

    Valid: a fully decodable single-channel uint8 PNG of size ``hw`` whose
    values are LIP ids.
    """
    if not osp.isfile(mask_path):
        return 'missing'
    data = np.fromfile(mask_path, np.uint8)
    mask = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if mask is None:
        return 'unreadable'
    if mask.ndim != 2 or mask.dtype != np.uint8:
        return f'not single-channel uint8 ({mask.dtype}, shape {mask.shape})'
    if mask.shape != tuple(hw):
        return f'size {mask.shape} != image size {tuple(hw)}'
    if mask.size and int(mask.max()) >= NUM_LIP_CLASSES:
        return f'label {int(mask.max())} is not a LIP id'
    return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_mask(mask_path: str, mask: np.ndarray) -> None:
    """Write a uint8 label PNG atomically (temp file + ``os.replace``)."""
    if mask.dtype != np.uint8 or mask.ndim != 2:
        raise ValueError(f'{mask_path}: a mask must be a 2-D uint8 array, '
                         f'got {mask.dtype} {mask.shape}')
    ok, buf = cv2.imencode('.png', mask)
    if not ok:
        raise ValueError(f'{mask_path}: PNG encoding failed')
    folder = osp.dirname(mask_path) or '.'
    os.makedirs(folder, exist_ok=True)
    # the temp name has no image extension: a loader never picks it up
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(mask_path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(buf.tobytes())
        # mkstemp makes the file private (0600); give the mask the mode an
        # ordinary file gets, so a shared dataset stays readable
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, mask_path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


# ---------------------------------------------------------------------------
# the model


class Parser:
    """A semantic-segmentation model and its processor: RGB images in,
    source-label maps of the images' sizes out.

    Args:
        model: A ``transformers`` segmentation model (or any callable
            ``model(pixel_values=...)`` returning an object with
            ``logits`` of shape ``B x C x h x w``) with ``config.id2label``.
        processor: Its image processor (``processor(images=[...],
            return_tensors='pt')['pixel_values']``).
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to 'cpu'.
    """

    def __init__(self, model: Any, processor: Any, device: str = 'cpu'):
        import torch
        self.torch = torch
        self.device = torch.device(device)
        if hasattr(model, 'to'):
            model = model.to(self.device)
        if hasattr(model, 'eval'):
            model.eval()
        self.model = model
        self.processor = processor
        self.id2label = dict(model.config.id2label)

    def predict(self, images: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Label maps (source ids, int64) of ``HxWx3`` RGB uint8 images.

        The logits are upsampled bilinearly to each image's own size before
        the argmax: an argmax at the model's resolution followed by a
        nearest-neighbour resize would give blocky boundaries.
        """
        torch = self.torch
        F = torch.nn.functional
        with torch.inference_mode():
            pixels = self.processor(
                images=list(images), return_tensors='pt')['pixel_values']
            logits = self.model(pixel_values=pixels.to(self.device)).logits
            if logits.shape[1] != len(self.id2label):
                raise ValueError(
                    f'the model gives {logits.shape[1]} logit channels but '
                    f'its config.id2label has {len(self.id2label)} labels')
            out = []
            for i, img in enumerate(images):
                up = F.interpolate(
                    logits[i:i + 1].float(),
                    size=img.shape[:2],
                    mode='bilinear',
                    align_corners=False)
                out.append(up[0].argmax(0).cpu().numpy())
        return out


def load_parser(model_dir: str, device: str = 'cpu') -> Parser:
    """Load a local checkpoint folder offline (never downloads).

    Raises:
        FileNotFoundError: The folder or its ``config.json`` is missing.
        RuntimeError: transformers cannot load it (the cause is chained).
    """
    if not osp.isfile(osp.join(model_dir, 'config.json')):
        raise FileNotFoundError(
            f'--model {model_dir}: no config.json there; give a local '
            'checkpoint folder (config.json, weights, '
            'preprocessor_config.json), e.g. one saved with '
            'save_pretrained() or a downloaded hub snapshot')
    from transformers import (AutoImageProcessor,
                              AutoModelForSemanticSegmentation)
    try:
        model = AutoModelForSemanticSegmentation.from_pretrained(
            model_dir, local_files_only=True)
        processor = AutoImageProcessor.from_pretrained(
            model_dir, local_files_only=True)
    except (OSError, ValueError) as err:
        raise RuntimeError(f'--model {model_dir}: transformers cannot load '
                           f'it as a semantic-segmentation model with an '
                           f'image processor: {err}') from err
    if getattr(processor, 'do_center_crop', False):
        # a crop would drop image borders the mask must cover
        processor.do_center_crop = False
        logger.info('processor centre crop switched off')
    return Parser(model, processor, device)


# ---------------------------------------------------------------------------
# the run


@dataclasses.dataclass
class Summary:
    """Counts of a run; ``failed`` maps a reason to the image paths."""
    total: int = 0
    written: int = 0
    replaced_invalid: int = 0
    skipped: int = 0
    failed: Dict[str, List[str]] = dataclasses.field(default_factory=dict)

    @property
    def num_failed(self) -> int:
        return sum(len(v) for v in self.failed.values())

    def fail(self, reason: str, path: str) -> None:
        self.failed.setdefault(reason, []).append(path)

    def line(self) -> str:
        """The one-line summary."""
        text = (f'{self.total} images: {self.written} masks written '
                f'({self.replaced_invalid} replacing invalid masks), '
                f'{self.skipped} skipped (valid mask present), '
                f'{self.num_failed} failed')
        if self.failed:
            text += ': ' + '; '.join(
                f'{len(v)} {k} (e.g. {", ".join(v[:3])})'
                for k, v in self.failed.items())
        return text


def _progress(total: int) -> Tuple[Callable[[int], None], Callable[[], None]]:
    """``(update(n), close())`` of a progress bar, silent without a TTY."""
    if not sys.stderr.isatty():
        return (lambda n: None), (lambda: None)
    try:
        from tqdm import tqdm
    except ImportError:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(total)
        return (lambda n: [bar.update() for _ in range(n)]), (lambda: None)
    bar = tqdm(total=total, unit='img', dynamic_ncols=True)
    return bar.update, bar.close


def make_masks(jobs: Sequence[Job],
               parser: Parser,
               lut: np.ndarray,
               batch_size: int = 8,
               overwrite: bool = False) -> Summary:
    """Write the LIP mask of every job's image.

    Args:
        jobs (Sequence[Job]): Images and their mask paths.
        parser (Parser): The model.
        lut (np.ndarray): Source id -> LIP id (:func:`build_lut`).
        batch_size (int): Images per forward pass. Defaults to 8.
        overwrite (bool): Redo valid existing masks. Defaults to False.

    Returns:
        Summary: The counts; per-image failures (unreadable image, write
        error) are recorded, not raised. Model errors are raised.
    """
    if batch_size < 1:
        raise ValueError(f'--batch-size must be >= 1, got {batch_size}')
    summary = Summary(total=len(jobs))
    update, close = _progress(len(jobs))
    todo: List[Tuple[Job, np.ndarray, bool]] = []
    found_invalid = 0

    def flush() -> None:
        preds = parser.predict([img for _, img, _ in todo])
        for (job, img, invalid), pred in zip(todo, preds):
            try:
                write_mask(job.mask_path, lut[pred])
            except (OSError, ValueError) as err:
                summary.fail(f'write errors ({type(err).__name__})',
                             f'{job.mask_path}: {err}')
                continue
            summary.written += 1
            summary.replaced_invalid += invalid
        update(len(todo))
        todo.clear()

    try:
        for job in jobs:
            try:
                img = read_rgb(job.img_path)
            except ValueError as err:
                summary.fail(f'unreadable images ({err})', job.img_path)
                update(1)
                continue
            invalid = False
            if not overwrite and osp.exists(job.mask_path):
                problem = mask_problem(job.mask_path, img.shape[:2])
                if problem is None:
                    summary.skipped += 1
                    update(1)
                    continue
                invalid = True
                found_invalid += 1
                if found_invalid <= 5:  # the rest are only counted
                    logger.info('redoing %s: %s', job.mask_path, problem)
            todo.append((job, img, invalid))
            if len(todo) >= batch_size:
                flush()
        if todo:
            flush()
    finally:
        close()
    return summary


# ---------------------------------------------------------------------------
# preview

#: LIP colours (RGB) of the preview: the usual PASCAL-style palette of the
#: LIP / SCHP visualisations, fixed so sheets compare across runs.
LIP_PALETTE = np.array(
    [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128),
     (128, 0, 128), (0, 128, 128), (128, 128, 128), (64, 0, 0), (192, 0, 0),
     (64, 128, 0), (192, 128, 0), (64, 0, 128), (192, 0, 128),
     (64, 128, 128), (192, 128, 128), (0, 64, 0), (128, 64, 0), (0, 192, 0),
     (128, 192, 0)], np.uint8)


def colorize(mask: np.ndarray) -> np.ndarray:
    """A LIP mask as an RGB image of :data:`LIP_PALETTE`."""
    return LIP_PALETTE[np.clip(mask, 0, NUM_LIP_CLASSES - 1)]


def write_preview(jobs: Sequence[Job],
                  out_path: str,
                  num: int = 16,
                  height: int = 128,
                  columns: int = 8,
                  seed: int = 0) -> int:
    """Draw a sheet of sampled (image | mask overlay) pairs and a legend.

    Args:
        jobs (Sequence[Job]): Candidates; those without a valid mask are
            passed over.
        out_path (str): The sheet (any OpenCV format, e.g. ``.jpg``).
        num (int): Pairs drawn. Defaults to 16.
        height (int): Tile height in pixels. Defaults to 128.
        columns (int): Pairs per row. Defaults to 8.
        seed (int): Sampling seed. Defaults to 0.

    Returns:
        int: Pairs drawn.
    """
    order = np.random.default_rng(seed).permutation(len(jobs))
    tiles = []
    for idx in order:
        if len(tiles) == num:
            break
        job = jobs[idx]
        try:
            img = read_rgb(job.img_path)
        except ValueError:
            continue
        if mask_problem(job.mask_path, img.shape[:2]) is not None:
            continue
        mask = cv2.imread(job.mask_path, cv2.IMREAD_UNCHANGED)
        overlay = img.copy()
        person = mask > 0
        overlay[person] = (0.4 * img[person] +
                           0.6 * colorize(mask)[person]).astype(np.uint8)
        pair = np.concatenate([img, overlay], axis=1)
        width = max(1, round(pair.shape[1] * height / pair.shape[0]))
        tiles.append(
            cv2.resize(pair, (width, height), interpolation=cv2.INTER_NEAREST))
    if not tiles:
        raise ValueError(f'--preview {out_path}: no image has a valid mask')
    gap = 4
    tile_w = max(t.shape[1] for t in tiles)
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    sheet = np.full((len(rows) * (height + gap) + gap,
                     min(columns, len(tiles)) * (tile_w + gap) + gap, 3), 255,
                    np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            y, x = gap + r * (height + gap), gap + c * (tile_w + gap)
            sheet[y:y + height, x:x + tile.shape[1]] = tile
    sheet = np.concatenate([sheet, _legend(sheet.shape[1])], axis=0)
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    if not cv2.imwrite(out_path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise ValueError(f'--preview {out_path}: OpenCV cannot write it '
                         '(check the extension)')
    return len(tiles)


def _legend(width: int) -> np.ndarray:
    """Swatches of the LIP colours with their names, ``width`` wide."""
    cell_w, cell_h = 120, 18
    per_row = max(1, width // cell_w)
    rows = -(-NUM_LIP_CLASSES // per_row)
    legend = np.full((rows * cell_h + 4, width, 3), 255, np.uint8)
    for i, name in enumerate(LIP_CLASSES):
        y, x = 2 + (i // per_row) * cell_h, (i % per_row) * cell_w + 4
        colour = tuple(int(v) for v in LIP_PALETTE[i])
        cv2.rectangle(legend, (x, y + 2), (x + 12, y + 14), colour, -1)
        cv2.putText(legend, f'{i} {name}', (x + 16, y + 13),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return legend


# ---------------------------------------------------------------------------
# command line


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description='Write LIP human-parsing masks (uint8 PNGs) for a '
        'cloth-changing dataset with a local transformers segmentation '
        'checkpoint, where our loaders read them.')
    parser.add_argument('root', help='dataset folder (image tree for '
                        '--layout folder)')
    parser.add_argument('--layout', required=True, choices=list(LAYOUTS))
    parser.add_argument(
        '--model',
        required=True,
        help='local checkpoint folder (config.json, weights, '
        'preprocessor_config.json); never downloaded')
    parser.add_argument(
        '--splits', nargs='+', help='dataset splits (default: all present)')
    parser.add_argument(
        '--mask-dir',
        help="mask folder template as the loader's mask_dir (default: the "
        "dataset's, e.g. '{folder}-mask'; absolute paths allowed)")
    parser.add_argument(
        '--output', help='mask tree of --layout folder (mirrors root)')
    parser.add_argument(
        '--label-map',
        help='JSON object: model label name (or id) -> LIP id or name, '
        'for labels the built-in tables do not know')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument(
        '--overwrite', action='store_true', help='redo valid masks too')
    parser.add_argument(
        '--preview', help='write a sheet of sampled image | mask pairs here')
    parser.add_argument(
        '--preview-num', type=int, default=16, help='pairs on the sheet')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None,
         parser: Optional[Parser] = None) -> Summary:
    """Run the tool.

    Args:
        argv (Sequence[str], optional): Arguments (``sys.argv`` if None).
        parser (Parser, optional): Use this model instead of loading
            ``--model`` (tests).

    Returns:
        Summary: The run's counts.
    """
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format='%(message)s')
    logger.setLevel(logging.INFO)
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError('--device cuda: no CUDA device is available')
    if args.batch_size < 1:
        raise ValueError(f'--batch-size must be >= 1, got {args.batch_size}')
    label_map = load_label_map(args.label_map) if args.label_map else None
    jobs, report = list_jobs(args.layout, args.root, args.splits,
                             args.mask_dir, args.output)
    for kind, paths in report['ignored'].items():
        logger.warning(
            '%d images not read by the %s loader, so not masked: %s (e.g. '
            '%s)', len(paths), args.layout, kind, ', '.join(paths[:3]))
    if not jobs:
        raise FileNotFoundError(f'no images found under {args.root} '
                                f'(--layout {args.layout})')
    if parser is None:
        parser = load_parser(args.model, args.device)
    lut = build_lut(parser.id2label, label_map, source=args.model)
    summary = make_masks(jobs, parser, lut, args.batch_size, args.overwrite)
    ignored = sum(len(v) for v in report['ignored'].values())
    logger.info('%s%s', summary.line(),
                f'; {ignored} images not read by the loader' if ignored
                else '')
    if args.preview:
        drawn = write_preview(jobs, args.preview, args.preview_num)
        logger.info('preview of %d images: %s', drawn, args.preview)
    return summary


if __name__ == '__main__':
    sys.exit(1 if main().num_failed else 0)
