"""Build a model from a config and turn images and captions into features.

The features are exactly those of ``tools/test.py``: images go through the
config's test image pipeline (``test_dataloader.dataset.pipeline``),
captions through its ``text_pipeline`` (the tokenizer), both through the
dataset's packing transform and the dataloader's collate function, and the
model's ``test_step`` (data preprocessor + ``predict``) returns
``img_feat`` / ``text_feat`` on each data sample (``docs/design.md``).
Nothing here is specific to one retriever: any model whose ``predict`` sets
``img_feat`` can encode images, and ``text_feat`` captions.

This module encodes (:func:`encode_images`, :func:`encode_texts`); beside
it are :mod:`.model_loading` (:func:`init_model` and the checkpoint
loaders), :mod:`.inference_pipelines` (the config's transforms),
:mod:`.fingerprint` (:func:`model_fingerprint`) and :mod:`.image_files`
(:func:`list_images`). Every name stays importable from here.
"""
import os
import os.path as osp
from typing import Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from mmreid_clip.engine.progress import progress
from .fingerprint import _digest, _plain, model_fingerprint  # noqa: F401
from .image_files import list_images
from .inference_pipelines import (_PIPELINES,  # noqa: F401
                                  _UNLABELLED_REID_ITEM, _eval_loader_cfg,
                                  _pipelines, _Pipelines, eval_dataset_cfg)
from .model_loading import (_WRAPPER_PREFIXES,  # noqa: F401
                            _load_config, _log_level, _strip_wrappers,
                            checkpoint_state_dict, init_model,
                            load_model_weights)

__all__ = [
    'ImageInput', 'init_model', 'load_model_weights',
    'encode_images', 'encode_texts', 'model_fingerprint', 'eval_dataset_cfg',
    'list_images'
]

#: A path, a PIL image, or an ``H x W x 3`` uint8 array (see
#: :func:`encode_images` for the channel order).
ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray]


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
