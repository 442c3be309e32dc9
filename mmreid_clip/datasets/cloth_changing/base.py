"""Base class of the cloth-changing (CC) person ReID datasets.

PRCC, LTCC, VC-Clothes and DeepChange keep their labels in file and folder
names (DeepChange also in list files). Each subclass only walks its layout
and parses the names into raw samples (:class:`RawSample`);
:class:`ClothChangingDataset` does everything they share: relabelling of the
train split, ``pid2clothes``, clothes ids of test splits, mask paths,
counted skipping of bad samples, and the item dicts fixed by the CC data
contract (``docs/design.md``; ``docs/methods/datasets.md`` §2).
"""
import collections
import dataclasses
import os
import os.path as osp
from typing import (Callable, Dict, List, Optional, Sequence, Set, Tuple,
                    Union)

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmreid_clip.registry import DATASETS
from ..pid_access import PidAccessMixin
from ..bad_samples import (AnnotationError, image_file_problem,
                           raise_or_skip_bad_image)
from ..utils import compose_pipeline, is_image_file, log_skipped

# The name this module used before compose_pipeline moved to ..utils; the
# CLIP-ReID equivalence harness (docs/methods/fidelity.md) imports it.
_compose = compose_pipeline

__all__ = ['MASK_EXTENSION', 'RawSample', 'ClothChangingDataset']

#: Extension of the human-parsing masks (uint8 LIP label PNGs).
MASK_EXTENSION = '.png'


@dataclasses.dataclass
class RawSample:
    """One image as a subclass parsed it, before relabelling.

    Attributes:
        img_path (str): Absolute image path.
        folder (str): Name of the image folder of the split that holds it
            (e.g. ``'train'``, ``'query'``, ``'test-set-gallery'``); the
            ``{folder}`` of ``mask_dir``.
        rel_path (str): Path of the image relative to that folder (used to
            place its mask in the mask folder).
        pid (int): The dataset's person id.
        camid (int): Camera index.
        clothes_key (str): The dataset's outfit label (e.g. LTCC
            ``'001_1'``), relabelled to an int clothes id.
        subset (str): ``'train'``, ``'query'``, ``'gallery'``, ...
        tracklet_id (int, optional): DeepChange's tracklet id.
    """
    img_path: str
    folder: str
    rel_path: str
    pid: int
    camid: int
    clothes_key: str
    subset: str
    tracklet_id: Optional[int] = None


def _listed(path: str, listings: Dict[str, Set[str]]) -> bool:
    """Whether the file ``path`` exists, from one directory listing per
    folder, cached in ``listings`` across calls: a stat per file is slow on
    network disks (MSMT17 lists 126k images)."""
    folder = osp.dirname(path)
    if folder not in listings:
        listings[folder] = (
            set(os.listdir(folder)) if osp.isdir(folder) else set())
    return osp.basename(path) in listings[folder]


@DATASETS.register_module()
class ClothChangingDataset(PidAccessMixin, BaseDataset):
    """Common logic of the cloth-changing ReID datasets.

    Subclasses implement :meth:`_read_split`, which walks the split's
    folders and returns :class:`RawSample` objects (reporting unparseable
    names through :meth:`_bad_sample`). This class then builds one item per
    image (``get_data_info``):

    =============== ========================================================
    key             value
    =============== ========================================================
    ``img_path``    str, absolute
    ``pid``         int: ``0..N_id-1`` in sorted order of the raw ids on
                    train-format splits, the dataset's own id otherwise
    ``camid``       int, camera index (per dataset, see the subclass)
    ``clothes_id``  int: ``0..N_clo-1`` in sorted order of the clothes
                    strings on train-format splits; on test splits an int
                    unique per (pid, outfit) within the split, for the
                    metric only (never feed it to a model)
    ``subset``      str: ``'train'`` (``'val'`` for PRCC val), or on test
                    splits ``'query'`` / ``'gallery'`` (PRCC:
                    ``'query_sc'``, ``'query_cc'``, ``'gallery'``)
    ``mask_path``   str, the image's LIP label PNG when ``with_mask=True``;
                    None otherwise
    ``tracklet_id`` int, DeepChange only
    =============== ========================================================

    Test splits hold the query items first, then the gallery items.

    ``metainfo``: ``dataset_name``, ``split``, ``num_images``,
    ``num_skipped`` (bad samples skipped, by kind) and, on train-format
    splits, ``num_pids``, ``num_clothes`` and ``pid2clothes`` (bool
    ``N_id x N_clo``: which clothes ids each identity wears); on test
    splits ``num_identities`` and ``subset_sizes``.

    Masks: the mask of ``<image folder>/<rel dir>/<stem>.<ext>`` is
    ``<mask folder>/<rel dir>/<stem>.png``, where the mask folder is
    ``mask_dir`` with ``{folder}`` replaced by the image folder's name,
    relative to ``data_root`` unless absolute.

    Files: only files with an image extension
    (:data:`~mmreid_clip.datasets.utils.IMG_EXTENSIONS`, case-insensitive)
    are read as images; other files (``Thumbs.db``,
    ``.DS_Store``, text files) are ignored. An image whose name does not
    follow the dataset's naming rule, a subfolder where the layout has
    none, or a missing mask when ``with_mask=True``, is an error naming the
    path, or with ``on_bad_sample='skip'`` a skip that is counted, logged
    with examples and recorded in ``metainfo['num_skipped']``. A missing
    split folder (or mask folder, or list file) is always an error naming
    the path.

    Args:
        data_root (str): The dataset folder (e.g. ``.../LTCC_ReID``).
        split (str): One of the dataset's ``SPLITS``. Defaults to 'train'.
        pipeline (Sequence[dict | Callable]): Transforms (mmcv / mmpretrain
            / ours), built through the ``mmreid_clip`` registry.
            Defaults to ().
        with_mask (bool): Give every item the path of its human-parsing
            mask, checking at load time that it exists. Defaults to False.
        mask_dir (str, optional): Mask folder template (see above).
            Defaults to the dataset's ``DEFAULT_MASK_DIR``.
        on_bad_sample (str): ``'error'`` (raise on the first bad sample) or
            ``'skip'`` (count, log and drop bad samples). Defaults to
            'error'. It also covers an image that cannot be read or
            decoded when it is loaded (empty, corrupt, over the pixel
            limit): :class:`BadImageError` naming the file and the item,
            or on train splits with ``'skip'`` a counted, logged skip
            (mmengine then draws another item); evaluation splits always
            raise, since dropping an item would change the protocol.
        test_mode (bool, optional): mmengine's test mode (no refetching of
            failed items). Defaults to True on evaluation splits, False on
            train-format splits.
        metainfo (dict, optional): Extra meta information.
        indices (int | Sequence[int], optional): Keep only these items
            (mmengine's subset option). Defaults to None.
        serialize_data (bool): mmengine's shared-memory item storage.
            Defaults to True.
        lazy_init (bool): Defer reading the folders. Defaults to False.
        max_refetch (int): mmengine's retries when a train pipeline returns
            None. Defaults to 1000.
    """

    #: Name used in messages.
    DATASET_NAME: str = 'cloth-changing dataset'
    #: The splits this dataset has.
    SPLITS: Tuple[str, ...] = ('train', 'test')
    #: Splits read in train format (relabelled, with ``pid2clothes``).
    TRAIN_SPLITS: Tuple[str, ...] = ('train', )
    #: Default ``mask_dir``.
    DEFAULT_MASK_DIR: str = '{folder}-mask'
    #: Expected on-disk layout, quoted in error messages.
    LAYOUT: str = ''
    #: How many example paths the log of skipped samples lists.
    NUM_EXAMPLES_SHOWN: int = 5

    def __init__(self,
                 data_root: str = '',
                 split: str = 'train',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 with_mask: bool = False,
                 mask_dir: Optional[str] = None,
                 on_bad_sample: str = 'error',
                 test_mode: Optional[bool] = None,
                 metainfo: Optional[dict] = None,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 serialize_data: bool = True,
                 lazy_init: bool = False,
                 max_refetch: int = 1000) -> None:
        if split not in self.SPLITS:
            raise ValueError(f'{self.DATASET_NAME} has no {split!r} split; '
                             f'it has {", ".join(self.SPLITS)}')
        if on_bad_sample not in ('error', 'skip'):
            raise ValueError("on_bad_sample must be 'error' or 'skip', got "
                             f'{on_bad_sample!r}')
        if not data_root:
            raise ValueError(f'{type(self).__name__} needs data_root (the '
                             f'dataset folder: {self.LAYOUT})')
        self.split = split
        self.with_mask = bool(with_mask)
        self.mask_dir = self.DEFAULT_MASK_DIR if mask_dir is None else mask_dir
        self.on_bad_sample = on_bad_sample
        self._pids: Optional[np.ndarray] = None
        self._skipped: Dict[str, List[str]] = {}
        self._folders: Set[str] = set()
        #: Train items whose image failed to load and were skipped (counted
        #: per process: each DataLoader worker holds its own copy).
        self.num_bad_images = 0
        if test_mode is None:
            test_mode = split not in self.TRAIN_SPLITS
        super().__init__(
            ann_file='',
            metainfo=metainfo,
            data_root=osp.abspath(data_root),
            indices=indices,
            serialize_data=serialize_data,
            pipeline=[],  # built below through our registry
            test_mode=test_mode,
            lazy_init=True,
            max_refetch=max_refetch)
        self.pipeline = compose_pipeline(pipeline)
        if not lazy_init:
            self.full_init()

    # ------------------------------------------------------------------
    # helpers for the subclasses

    @property
    def is_train_format(self) -> bool:
        """Whether the split is relabelled (pid / clothes ids from 0)."""
        return self.split in self.TRAIN_SPLITS

    def _path(self, *parts: str) -> str:
        return osp.join(self.data_root, *parts)

    def _require_dir(self, path: str, what: str = 'folder') -> None:
        if not osp.isdir(path):
            parent = osp.dirname(path)
            there = ''
            if osp.isdir(parent):
                entries = sorted(os.listdir(parent))[:12]
                there = f' ({parent} holds: {entries or "nothing"})'
            raise FileNotFoundError(
                f'{self.DATASET_NAME} {self.split}: {what} {path} does not '
                f'exist{there}. Expected layout: {self.LAYOUT}')

    def _require_file(self, path: str, what: str = 'file') -> None:
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{self.DATASET_NAME} {self.split}: {what} {path} does not '
                f'exist. Expected layout: {self.LAYOUT}')

    def _list_images(self, folder: str, subfolders: bool = False) -> List[str]:
        """Sorted names of the image files directly in ``folder``.

        Args:
            folder (str): The folder.
            subfolders (bool): Whether the layout has subfolders here; if
                not, a subfolder is a bad sample (its images would
                otherwise be dropped without a word).
        """
        self._require_dir(folder)
        with os.scandir(folder) as it:
            entries = sorted((e.name, e.is_dir()) for e in it)
        if not subfolders:
            for name, is_dir in entries:
                if is_dir:
                    self._bad_sample(
                        'unexpected folders', osp.join(folder, name),
                        f'unexpected folder {osp.join(folder, name)}: '
                        f'{folder} should hold only image files. Expected '
                        f'layout: {self.LAYOUT}')
        return [
            name for name, is_dir in entries
            if not is_dir and is_image_file(name)
        ]

    def _inside(self, folder: str, rel: str, where: str) -> Optional[str]:
        """``folder/rel`` normalised; a path from a list file that is
        absolute or climbs out of ``folder`` with ``..`` is a bad sample
        (an error naming the line, or a counted skip) and gives None."""
        norm = osp.normpath(rel)
        if (osp.isabs(norm) or norm == os.pardir
                or norm.startswith(os.pardir + os.sep)):
            self._bad_sample(
                'paths outside the dataset', f'{where}: {rel}',
                f'{where}: {rel!r} points outside {folder} (an absolute '
                'path or one climbing out with ..); list files must name '
                'images inside the dataset folder')
            return None
        return osp.join(folder, norm)

    def _listed_image(self, folder: str, rel: str, where: str,
                      listings: Dict[str, Set[str]]) -> Optional[str]:
        """The existing image ``folder/rel`` named by a list file, or None
        after reporting a path outside ``folder`` or a missing file as a
        bad sample (:meth:`_bad_sample`). ``listings``: see :func:`_listed`.
        """
        img_path = self._inside(folder, rel, where)
        if img_path is None:
            return None
        if not _listed(img_path, listings):
            self._bad_sample(
                'missing images', img_path,
                f'{where} lists {osp.relpath(img_path, folder)!r}, but '
                f'{img_path} does not exist', FileNotFoundError)
            return None
        return img_path

    def _list_dirs(self, folder: str) -> List[str]:
        """Sorted names of the subfolders of ``folder``."""
        self._require_dir(folder)
        with os.scandir(folder) as it:
            return sorted(e.name for e in it if e.is_dir())

    def _bad_sample(self,
                    kind: str,
                    path: str,
                    message: str,
                    error: type = AnnotationError) -> None:
        """Raise ``error(message)``, or with ``on_bad_sample='skip'`` count
        ``path`` as a skipped sample of ``kind``."""
        if self.on_bad_sample == 'error':
            raise error(f'{self.DATASET_NAME} {self.split}: {message} (pass '
                        "on_bad_sample='skip' to drop such samples)")
        self._skipped.setdefault(kind, []).append(path)

    def _read_split(self) -> List[RawSample]:
        """Walk the split's folders and parse every image.

        Returns:
            list[RawSample]: The split's images, query before gallery on
            test splits.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------
    # items

    def _mask_folder(self, folder: str) -> str:
        template = self.mask_dir
        if '{folder}' not in template and len(self._folders) > 1:
            raise ValueError(
                f'{self.DATASET_NAME} {self.split}: mask_dir={template!r} '
                f'has no {{folder}} placeholder, but the split reads several '
                f'image folders ({", ".join(sorted(self._folders))}); '
                "use e.g. '{folder}-mask'")
        mask_root = template.replace('{folder}', folder)
        return mask_root if osp.isabs(mask_root) else self._path(mask_root)

    def _attach_masks(self, samples: List[RawSample]) -> List[Tuple]:
        """Pair every sample with its mask path (None without masks)."""
        if not self.with_mask:
            return [(s, None) for s in samples]
        self._folders = {s.folder for s in samples}
        checked: Set[str] = set()
        # one listing per folder (_listed)
        listed: Dict[str, Set[str]] = {}
        out = []
        for s in samples:
            mask_folder = self._mask_folder(s.folder)
            if mask_folder not in checked:
                self._require_dir(
                    mask_folder,
                    f'mask folder of {s.folder!r} (with_mask=True; '
                    f'mask_dir={self.mask_dir!r})')
                checked.add(mask_folder)
            rel = osp.splitext(s.rel_path)[0] + MASK_EXTENSION
            mask_path = osp.join(mask_folder, rel)
            if not _listed(mask_path, listed):
                self._bad_sample(
                    'missing mask', s.img_path,
                    f'no mask for image {s.img_path}: expected {mask_path} '
                    f'(with_mask=True, mask_dir={self.mask_dir!r})',
                    FileNotFoundError)
                continue
            out.append((s, mask_path))
        return out

    def load_data_list(self) -> List[dict]:
        """Read the split's folders and build its items."""
        self._skipped = {}
        samples = self._read_split()
        pairs = self._attach_masks(samples)
        if not pairs:
            skipped = sum(len(v) for v in self._skipped.values())
            raise FileNotFoundError(
                f'{self.DATASET_NAME} {self.split}: no images found under '
                f'{self.data_root} ({skipped} bad samples skipped). '
                f'Expected layout: {self.LAYOUT}')

        raw_pids = sorted({s.pid for s, _ in pairs})
        clothes_keys = sorted({s.clothes_key for s, _ in pairs})
        clothes_map = {c: i for i, c in enumerate(clothes_keys)}
        if self.is_train_format:
            pid_map = {p: i for i, p in enumerate(raw_pids)}
        else:
            pid_map = {p: p for p in raw_pids}

        items = []
        for s, mask_path in pairs:
            item = dict(
                img_path=s.img_path,
                pid=pid_map[s.pid],
                camid=s.camid,
                clothes_id=clothes_map[s.clothes_key],
                subset=s.subset,
                mask_path=mask_path)
            if s.tracklet_id is not None:
                item['tracklet_id'] = s.tracklet_id
            items.append(item)

        num_skipped = {k: len(v) for k, v in self._skipped.items()}
        meta = dict(
            dataset_name=self.DATASET_NAME,
            split=self.split,
            num_images=len(items),
            num_skipped=num_skipped)
        subset_sizes = dict(collections.Counter(i['subset'] for i in items))
        if self.is_train_format:
            pid2clothes = np.zeros((len(raw_pids), len(clothes_keys)), bool)
            for item in items:
                pid2clothes[item['pid'], item['clothes_id']] = True
            meta.update(
                num_pids=len(raw_pids),
                num_clothes=len(clothes_keys),
                pid2clothes=pid2clothes)
        else:
            meta.update(
                num_identities=len(raw_pids), subset_sizes=subset_sizes)
        self._metainfo.update(meta)

        log_skipped(f'{self.DATASET_NAME} {self.split}', self._skipped,
                    self.NUM_EXAMPLES_SHOWN)
        subsets = ', '.join(f'{k} {v}' for k, v in subset_sizes.items())
        print_log(
            f'{self.DATASET_NAME} {self.split}: {len(items)} images '
            f'({subsets}), {len(raw_pids)} identities, {len(clothes_keys)} '
            f'clothes ids, from {self.data_root}' +
            (' (with masks)' if self.with_mask else ''),
            logger='current')
        return items

    # ------------------------------------------------------------------
    # access

    def prepare_data(self, idx: int) -> Optional[dict]:
        """Run the pipeline on item ``idx``; a bad image file is named.

        Returns:
            dict | None: The transformed item, or None when a transform
            drops it or, with ``on_bad_sample='skip'`` on a train split,
            its image cannot be loaded (mmengine then draws another item).

        Raises:
            BadImageError: the item's image is missing, empty, not
                decodable or over the pixel limit (and not skipped); the
                message names the file and the item.
        """
        results = self.get_data_info(idx)
        try:
            return self.pipeline(results)
        except Exception as err:
            problem = image_file_problem(results['img_path'])
            if problem is None:
                raise  # the file is fine: a pipeline error, not data
            return self._bad_image(idx, results, problem, err)

    def _bad_image(self, idx: int, info: dict, problem: str,
                   err: Exception) -> None:
        """Raise :class:`BadImageError`, or count and log a train skip."""
        message = (f'{self.DATASET_NAME} {self.split}: item {idx} (pid='
                   f'{info.get("pid")}, camid={info.get("camid")}): image '
                   f'{info["img_path"]}: {problem} '
                   f'[{type(err).__name__}: {err}]')
        raise_or_skip_bad_image(self, message, err, self.NUM_EXAMPLES_SHOWN)

    def __repr__(self) -> str:
        size = len(self) if self._fully_initialized else 'not loaded'
        return (f'{type(self).__name__}(split={self.split!r}, '
                f'data_root={self.data_root!r}, with_mask={self.with_mask}, '
                f'items={size})')
