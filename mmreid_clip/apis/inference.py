"""Build a model from a config and turn images and captions into features.

The features are exactly those of ``tools/test.py``: images go through the
config's test image pipeline (``test_dataloader.dataset.pipeline``),
captions through its ``text_pipeline`` (the tokenizer), both through the
dataset's packing transform and the dataloader's collate function, and the
model's ``test_step`` (data preprocessor + ``predict``) returns
``img_feat`` / ``text_feat`` on each data sample (``docs/design.md``).
Nothing here is specific to one retriever: any model whose ``predict`` sets
``img_feat`` can encode images, and ``text_feat`` captions.
"""
import contextlib
import copy
import hashlib
import json
import logging
import os
import os.path as osp
import weakref
from functools import partial
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple, Union)

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config, ConfigDict
from mmengine.dataset import Compose
from mmengine.logging import MMLogger
from mmengine.registry import FUNCTIONS as ROOT_FUNCTIONS
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import _load_checkpoint
from PIL import Image

from mmreid_clip.compat import apply_patches
from mmreid_clip.datasets.transforms import PackReIDInputs
from mmreid_clip.datasets.utils import IMG_EXTENSIONS, is_image_file
from mmreid_clip.engine.progress import progress
from mmreid_clip.registry import MODELS, TRANSFORMS
from mmreid_clip.utils.pretrained import drop_missing_pretrained
from mmreid_clip.utils.setup_env import missing_files, register_all_modules

__all__ = [
    'ImageInput', 'init_model', 'load_model_weights',
    'encode_images', 'encode_texts', 'model_fingerprint', 'eval_dataset_cfg',
    'list_images'
]

#: A path, a PIL image, or an ``H x W x 3`` uint8 array (see
#: :func:`encode_images` for the channel order).
ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray]

# Prefixes a checkpoint's keys get from wrappers (DDP, EMA-averaged copies).
_WRAPPER_PREFIXES = ('module.', )


def _load_config(config: Union[str, Config],
                 cfg_options: Optional[dict]) -> Config:
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        if not osp.isfile(path):
            raise FileNotFoundError(f'config file {path!r} does not exist')
        cfg = Config.fromfile(path)
    elif isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        raise TypeError('config must be a file path or a Config, got '
                        f'{type(config).__name__}')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise KeyError(f'config {getattr(cfg, "filename", "")!r} has no '
                       '"model" entry')
    return cfg


def eval_dataset_cfg(cfg: Config) -> ConfigDict:
    """The dataset config whose pipelines inference reuses.

    ``test_dataloader.dataset``, else ``val_dataloader.dataset``; a dataset
    wrapper's inner ``dataset`` is followed. A config that trains without
    evaluation (e.g. ``clip-pretrain_synthpedes-tiny.py``, whose val and
    test loaders are None) still has the dataset configs' top-level
    ``test_pipeline`` (and ``text_pipeline``) variables: those are used,
    with the training dataset's ``pack`` if it sets one.

    Raises:
        KeyError: Neither loader has a dataset and there is no top-level
            ``test_pipeline``.
    """
    for key in ('test_dataloader', 'val_dataloader'):
        loader = cfg.get(key)
        if loader and loader.get('dataset'):
            ds = loader['dataset']
            while 'pipeline' not in ds and isinstance(ds.get('dataset'), dict):
                ds = ds['dataset']
            return ds
    if isinstance(cfg.get('test_pipeline'), (list, tuple)):
        ds = ConfigDict(pipeline=copy.deepcopy(cfg.test_pipeline))
        if isinstance(cfg.get('text_pipeline'), (list, tuple)):
            ds.text_pipeline = copy.deepcopy(cfg.text_pipeline)
        train = (cfg.get('train_dataloader') or {}).get('dataset') or {}
        if train.get('pack'):
            ds.pack = copy.deepcopy(train['pack'])
        return ds
    raise KeyError('the config has neither test_dataloader.dataset nor '
                   'val_dataloader.dataset (nor a top-level test_pipeline): '
                   'inference takes its image pipeline and tokenizer from '
                   'there')


def _eval_loader_cfg(cfg: Config) -> ConfigDict:
    for key in ('test_dataloader', 'val_dataloader'):
        if cfg.get(key) and cfg[key].get('dataset'):
            return cfg[key]
    # no evaluation loader (see eval_dataset_cfg): the training loader's
    # collate function batches the same packed items
    train = cfg.get('train_dataloader')
    if train and train.get('collate_fn'):
        return ConfigDict(collate_fn=copy.deepcopy(train['collate_fn']))
    return ConfigDict()


def _strip_wrappers(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    out = {}
    for key, value in state_dict.items():
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def checkpoint_state_dict(checkpoint: str) -> Dict[str, Any]:
    """The tensors of a checkpoint (safe loader), wrapper prefixes removed."""
    apply_patches()
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise ValueError(f'checkpoint {checkpoint} holds a '
                         f'{type(ckpt).__name__}, not a state dict')
    state_dict = ckpt.get('state_dict', ckpt)
    return _strip_wrappers({
        k: v
        for k, v in state_dict.items() if isinstance(v, torch.Tensor)
    })


def load_model_weights(model: nn.Module, checkpoint: str) -> dict:
    """Load a checkpoint into ``model`` through the project's safe loader.

    Weights are read with mmengine's checkpoint loader, which
    :func:`mmreid_clip.compat.apply_patches` routes through
    :func:`~mmreid_clip.compat.safe_torch_load` (plain weights and the
    mmengine training state only; other pickles are refused).

    Args:
        model (nn.Module): The model built from the checkpoint's config.
        checkpoint (str): An mmengine checkpoint (``{'state_dict': ...,
            'meta': ...}``) or a bare state dict.

    Returns:
        dict: The checkpoint's ``meta`` (empty for a bare state dict).

    Raises:
        ValueError: The checkpoint lacks some of the model's parameters or
            has them with other shapes: the config does not match it. The
            message names the first keys concerned.
    """
    apply_patches()
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise ValueError(f'checkpoint {checkpoint} holds a '
                         f'{type(ckpt).__name__}, not a state dict')
    state_dict = ckpt.get('state_dict', ckpt)
    state_dict = _strip_wrappers({
        k: v
        for k, v in state_dict.items() if isinstance(v, torch.Tensor)
    })
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    mismatched = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)}, model '
        f'{tuple(v.shape)}' for k, v in own.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or mismatched:
        parts = []
        if missing:
            parts.append(f'{len(missing)} parameters missing (e.g. '
                         f'{", ".join(missing[:5])})')
        if mismatched:
            parts.append(f'{len(mismatched)} with other shapes (e.g. '
                         f'{"; ".join(mismatched[:3])})')
        raise ValueError(
            f'checkpoint {checkpoint} does not fit the model of this config: '
            f'{" and ".join(parts)}. Use the config the checkpoint was '
            'trained with (or fix it with cfg_options).')
    unexpected = [k for k in state_dict if k not in own]
    model.load_state_dict({k: state_dict[k] for k in own}, strict=True)
    meta = ckpt.get('meta', {}) if 'state_dict' in ckpt else {}
    if unexpected:
        meta = dict(meta, unexpected_keys=unexpected)
    return meta


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: Union[str, torch.device] = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a model from a config and load its checkpoint for inference.

    The model is built as the Runner builds it (``MODELS.build`` of
    ``cfg.model`` under the config's ``default_scope``, then
    ``init_weights``), the checkpoint is loaded with
    :func:`load_model_weights`, and the model is put in eval mode on
    ``device``. The config is kept as ``model.cfg``: :func:`encode_images`
    and :func:`encode_texts` read its pipelines from there.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): Checkpoint file; None keeps the
            initial weights (the ``pretrained`` ones, or random).
        device (str | torch.device): Defaults to 'cpu'.
        cfg_options (dict, optional): Overrides merged into the config
            (``{'model.text_encoder.context_length': 64}``).

    Returns:
        nn.Module: The model, in eval mode.

    Raises:
        FileNotFoundError: The config or the checkpoint does not exist,
            or (without a checkpoint) a ``pretrained`` weights file the
            config names. With a checkpoint, towers whose pretrained file
            is missing are built without it
            (:func:`~mmreid_clip.utils.pretrained.drop_missing_pretrained`):
            the checkpoint must then hold all their weights.
    """
    apply_patches()
    register_all_modules(init_scope=False)
    cfg = _load_config(config, cfg_options)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    if checkpoint is not None:
        # the checkpoint holds every weight: pretrained files that are not
        # there are not needed (load_model_weights checks it has them all)
        for note in drop_missing_pretrained(
                cfg.model, lambda: checkpoint_state_dict(checkpoint)):
            MMLogger.get_current_instance().info(note)
    problems = missing_files(cfg, loaders=())
    if problems:
        raise FileNotFoundError(
            'The config names files that are not there:\n  - ' +
            '\n  - '.join(problems) +
            '\nSee README.md ("CLIP weights"), or override the paths with '
            'cfg_options.')
    scope = cfg.get('default_scope', 'mmreid_clip')
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    if hasattr(model, 'init_weights'):
        # as the Runner does; its per-parameter INFO report is noise here
        with _log_level(logging.WARNING):
            model.init_weights()
    model.checkpoint_meta = ({} if checkpoint is None else load_model_weights(
        model, checkpoint))
    model.cfg = cfg
    model.checkpoint_path = (None if checkpoint is None else
                             osp.abspath(checkpoint))
    return model.to(torch.device(device)).eval()


@contextlib.contextmanager
def _log_level(level: int) -> Iterator[None]:
    logger = MMLogger.get_current_instance()
    old = logger.level
    logger.setLevel(max(level, old))
    try:
        yield
    finally:
        logger.setLevel(old)


class _Pipelines:
    """The config's inference transforms for one model (built once)."""

    def __init__(self, cfg: Config) -> None:
        ds = eval_dataset_cfg(cfg)
        scope = cfg.get('default_scope', 'mmreid_clip')
        with DefaultScope.overwrite_default_scope(scope):
            image_tf = [self._build(t) for t in ds.get('pipeline', [])]
            text_tf = [self._build(t) for t in ds.get('text_pipeline', [])]
            if image_tf and type(image_tf[-1]).__name__.startswith('Pack'):
                # an mmpretrain-style pipeline packs by itself
                pack = None
            else:
                pack = self._build(
                    ds.get('pack', dict(type='PackTextImageInputs')))
        # arrays skip the loading transforms at the head of the pipeline
        skip = 0
        while skip < len(image_tf) and type(
                image_tf[skip]).__name__.startswith('LoadImage'):
            skip += 1
        self.has_image_pipeline = 'pipeline' in ds
        self.has_text_pipeline = bool(text_tf)
        self.image_from_file = Compose(image_tf)
        self.image_from_array = Compose(image_tf[skip:])
        self.text = Compose(text_tf)
        self.pack = pack
        # image-ReID pipelines pack identity/camera/outfit labels, which a
        # free image has not: it gets _UNLABELLED_REID_ITEM
        self.reid_items = any(
            isinstance(t, PackReIDInputs) for t in image_tf + [pack])
        self.collate = self._collate(_eval_loader_cfg(cfg))

    @staticmethod
    def _build(t):
        return TRANSFORMS.build(t) if isinstance(t, dict) else t

    @staticmethod
    def _collate(loader_cfg: ConfigDict) -> Callable:
        cfg = dict(loader_cfg.get('collate_fn', dict(type='pseudo_collate')))
        fn = cfg.pop('type')
        if isinstance(fn, str):
            name = fn
            fn = ROOT_FUNCTIONS.get(name)
            if fn is None:
                raise KeyError(f'collate_fn {name!r} of the config is not '
                               'registered in FUNCTIONS')
        return partial(fn, **cfg) if cfg else fn

    def finish(self, results: Optional[dict], where: str) -> dict:
        if results is None:
            raise ValueError(f'{where}: the pipeline dropped the item')
        return self.pack(results) if self.pack is not None else results


#: Labels of an image searched through the API: no identity, camera 0 (what
#: an SIE model sees for an unlabelled image), no outfit.
_UNLABELLED_REID_ITEM = dict(pid=-1, camid=0, clothes_id=-1, subset='query')

_PIPELINES: 'weakref.WeakKeyDictionary[nn.Module, _Pipelines]' = (
    weakref.WeakKeyDictionary())


def _pipelines(model: nn.Module) -> _Pipelines:
    cfg = getattr(model, 'cfg', None)
    if not isinstance(cfg, Config):
        raise AttributeError(
            f'{type(model).__name__} has no .cfg (a mmengine Config): build '
            'it with mmreid_clip.apis.init_model, or set model.cfg to the '
            'config it was built from')
    built = _PIPELINES.get(model)
    if built is None or built.cfg is not cfg:
        built = _Pipelines(cfg)
        built.cfg = cfg
        _PIPELINES[model] = built
    return built


def _image_results(image: ImageInput, index: int,
                   array_order: str) -> Tuple[dict, bool, str]:
    """The pipeline input of one image, whether it is a file, its name."""
    if isinstance(image, (str, os.PathLike)):
        path = osp.abspath(os.fspath(image))
        if not osp.isfile(path):
            raise FileNotFoundError(f'image {path!r} does not exist')
        return dict(img_path=path, sample_idx=index), True, path
    where = f'image #{index}'
    if isinstance(image, Image.Image):
        arr = np.asarray(image.convert('RGB'))[:, :, ::-1]  # to BGR
    elif isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f'{where}: arrays must be H x W x 3 (or H x W), '
                             f'got shape {arr.shape}')
        if arr.dtype != np.uint8:
            raise TypeError(f'{where}: arrays must be uint8 (0-255), got '
                            f'{arr.dtype}')
        if array_order == 'rgb':
            arr = arr[:, :, ::-1]
        elif array_order != 'bgr':
            raise ValueError(f"array_order must be 'bgr' or 'rgb', got "
                             f'{array_order!r}')
    else:
        raise TypeError(f'{where}: expected a path, a PIL image or a numpy '
                        f'array, got {type(image).__name__}')
    arr = np.ascontiguousarray(arr)
    return dict(
        img=arr,
        img_shape=arr.shape[:2],
        ori_shape=arr.shape[:2],
        img_path=None,
        sample_idx=index), False, where


class _ImageItems(torch.utils.data.Dataset):
    """Transformed, packed images, made when the loader asks for them."""

    def __init__(self, images: Sequence[ImageInput], pipes: '_Pipelines',
                 array_order: str) -> None:
        self.images, self.pipes, self.array_order = (images, pipes,
                                                     array_order)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        results, from_file, where = _image_results(self.images[i], i,
                                                   self.array_order)
        pipeline = (
            self.pipes.image_from_file
            if from_file else self.pipes.image_from_array)
        if self.pipes.reid_items:
            for key, value in _UNLABELLED_REID_ITEM.items():
                results.setdefault(key, value)
        try:
            results = pipeline(results)
        except Exception as err:  # mmcv raises several types on bad files
            raise ValueError(f'cannot load or transform {where}: '
                             f'{type(err).__name__}: {err}') from err
        return self.pipes.finish(results, where)


class _TextItems(torch.utils.data.Dataset):
    """Tokenised, packed captions."""

    def __init__(self, texts: Sequence[str], pipes: '_Pipelines') -> None:
        self.texts, self.pipes = texts, pipes

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> dict:
        results = self.pipes.text(
            dict(caption=self.texts[i], caption_id=i, sample_idx=i))
        return self.pipes.finish(results, f'text #{i}')


def _run_batches(model: nn.Module, items: torch.utils.data.Dataset,
                 batch_size: int, num_workers: int, key: str, flag: str,
                 what: str) -> torch.Tensor:
    """Collate, ``test_step`` and gather ``key`` of every sample.

    Items are transformed batch by batch (in ``num_workers`` processes when
    > 0), so a large folder never has all its images in memory at once.
    """
    if int(batch_size) < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if len(items) == 0:
        return torch.empty(0, 0)
    loader = torch.utils.data.DataLoader(
        items,
        batch_size=int(batch_size),
        shuffle=False,
        num_workers=int(num_workers),
        collate_fn=_pipelines(model).collate)
    feats = []
    model.eval()
    with torch.no_grad():
        for batch in progress(loader, desc=f'encoding {what}s'):
            for sample in model.test_step(batch):
                feat = sample.get(key) if hasattr(sample, 'get') else None
                if feat is None:
                    raise ValueError(
                        f'{type(model).__name__}.predict did not set {key!r} '
                        f'on {what} #{len(feats)}: this model cannot encode '
                        f'{what}s (its predict must set {key} on samples '
                        f'with {flag})')
                feats.append(torch.as_tensor(feat).reshape(1, -1).float())
    out = torch.cat(feats).cpu()
    # cosine similarity needs unit rows; a no-op for the zoo's models
    return F.normalize(out, dim=1)


def encode_images(model: nn.Module,
                  paths_or_arrays: Sequence[ImageInput],
                  batch_size: int = 32,
                  array_order: str = 'bgr',
                  num_workers: int = 0) -> torch.Tensor:
    """Image features, as the model computes them for its test gallery.

    Args:
        model (nn.Module): A model from :func:`init_model` (it needs
            ``model.cfg``); its ``predict`` must set ``img_feat``.
        paths_or_arrays (Sequence): Image files, PIL images, or ``H x W x
            3`` uint8 arrays. Arrays are taken as BGR, the order
            ``cv2.imread`` and mmcv's loader give (``array_order='rgb'``
            for arrays from PIL / Gradio); PIL images are converted.
        batch_size (int): Images per forward pass. Defaults to 32.
        array_order (str): ``'bgr'`` or ``'rgb'``. Defaults to 'bgr'.
        num_workers (int): Processes that load and transform images
            (0: this one). Defaults to 0.

    Returns:
        Tensor: ``N x D`` float32, L2-normalised rows, on the CPU.

    Raises:
        FileNotFoundError: A path does not exist.
        ValueError: An image cannot be read or transformed (the message
            names it), or the model does not produce ``img_feat``.
    """
    if isinstance(paths_or_arrays,
                  (str, os.PathLike, np.ndarray, Image.Image)):
        paths_or_arrays = [paths_or_arrays]
    if array_order not in ('bgr', 'rgb'):
        raise ValueError(f"array_order must be 'bgr' or 'rgb', got "
                         f'{array_order!r}')
    pipes = _pipelines(model)
    if not pipes.has_image_pipeline:
        raise ValueError('the config\'s test dataset has no image "pipeline"')
    # a missing file is reported before any work, not mid-way
    for i, image in enumerate(paths_or_arrays):
        if isinstance(image, (str, os.PathLike)) and not osp.isfile(image):
            path = osp.abspath(os.fspath(image))
            if osp.islink(path):
                raise FileNotFoundError(
                    f'image #{i} {path!r} is a broken symbolic link (to '
                    f'{os.readlink(path)!r})')
            what = 'is not a file' if osp.exists(path) else 'does not exist'
            raise FileNotFoundError(f'image #{i} {path!r} {what}')
    return _run_batches(model, _ImageItems(paths_or_arrays, pipes,
                                           array_order), batch_size,
                        num_workers, 'img_feat', 'has_image', 'image')


def encode_texts(model: nn.Module,
                 texts: Sequence[str],
                 batch_size: int = 64) -> torch.Tensor:
    """Caption features, tokenised by the config's ``text_pipeline``.

    Args:
        model (nn.Module): A model from :func:`init_model`; its ``predict``
            must set ``text_feat``.
        texts (Sequence[str]): Captions (a single string is one caption).
            Long ones follow the tokenizer's truncation policy (logged).
        batch_size (int): Captions per forward pass. Defaults to 64.

    Returns:
        Tensor: ``N x D`` float32, L2-normalised rows, on the CPU.

    Raises:
        ValueError: An empty caption, a config without ``text_pipeline``,
            or a model that does not produce ``text_feat``.
    """
    if isinstance(texts, str):
        texts = [texts]
    pipes = _pipelines(model)
    if not pipes.has_text_pipeline:
        raise ValueError(
            'the config\'s test dataset has no "text_pipeline" (tokenizer): '
            'this model cannot encode text queries')
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f'text #{i} must be a non-empty string, got '
                             f'{text!r}')
    return _run_batches(model, _TextItems(list(texts), pipes), batch_size, 0,
                        'text_feat', 'has_text', 'text')


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def _digest(obj: Any) -> str:
    text = json.dumps(_plain(obj), sort_keys=True)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


def model_fingerprint(model: nn.Module) -> Dict[str, str]:
    """What the features of ``model`` depend on, as short hashes.

    Keys: ``weights`` (every tensor of the state dict: names, dtypes,
    shapes and values), ``model_cfg`` (``cfg.model``), ``image_pipeline``
    and ``text_pipeline`` (the inference transforms of the config), plus
    ``model_type``. Two models with equal fingerprints give equal features,
    so an index made by one can be searched with the other.

    Args:
        model (nn.Module): A model from :func:`init_model`.

    Returns:
        dict[str, str]: The fingerprint.
    """
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f'{name}|{t.dtype}|{tuple(t.shape)}'.encode('utf-8'))
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    cfg = getattr(model, 'cfg', None)
    out = dict(model_type=type(model).__name__, weights=h.hexdigest())
    if isinstance(cfg, Config):
        ds = eval_dataset_cfg(cfg)
        out.update(
            model_cfg=_digest(cfg.model),
            image_pipeline=_digest(ds.get('pipeline', [])),
            text_pipeline=_digest(ds.get('text_pipeline', [])))
    return out


def list_images(folder: str,
                recursive: bool = True,
                extensions: Sequence[str] = IMG_EXTENSIONS) -> List[str]:
    """Image files under ``folder``, as sorted paths relative to it.

    Args:
        folder (str): The folder.
        recursive (bool): Descend into sub-folders. Defaults to True.
        extensions (Sequence[str]): File endings to keep (any case).

    Returns:
        list[str]: Relative paths with ``/`` separators, sorted.

    Raises:
        NotADirectoryError: ``folder`` is not a folder.
    """
    if not osp.isdir(folder):
        raise NotADirectoryError(f'image folder {folder!r} does not exist '
                                 'or is not a folder')
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        if not recursive:
            dirnames[:] = []
        for name in filenames:
            # hidden files are left out too: macOS writes ``._x.jpg``
            # resource forks next to every image copied from it
            if is_image_file(name, extensions) and not name.startswith('.'):
                rel = osp.relpath(osp.join(dirpath, name), folder)
                found.append(rel.replace(os.sep, '/'))
    return sorted(found)
