"""Packing an image ReID item (one or more views) into a ``DataSample``."""
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmpretrain.structures import DataSample

from mmreid_clip.registry import TRANSFORMS

# pipeline key -> key in ``inputs``
DEFAULT_VIEW_KEYS: Dict[str, str] = {
    'img': 'images',
    'shield_img': 'shield_images',
    'clothes_img': 'clothes_images',
}


@TRANSFORMS.register_module()
class PackReIDInputs(BaseTransform):
    """Pack a (cloth-changing) ReID item into inputs and a ``DataSample``.

    Output (the CC-ReID data contract)::

        {'inputs': {'images': uint8 Tensor[3, H, W],          # from 'img'
                    'shield_images': uint8 Tensor[3, H, W],   # if present
                    'clothes_images': uint8 Tensor[3, H, W]}, # if present
         'data_samples': DataSample}

    Every view stays BGR and uint8 as loaded; ``ReIDDataPreprocessor`` flips
    and normalises on the device (four times smaller DataLoader batches than
    float). A float32 view on the same 0-255 scale is packed as float32
    (``RandomErasing(impl='timm')`` fills beyond 0-255); an item that went
    through a ``Normalize`` transform is refused, so nothing is normalised
    twice. ``gt_label`` is the pid; the metainfo holds ``pid``, ``camid``,
    ``clothes_id``, ``subset``, ``img_path``, ``tracklet_id`` when the item
    has one, and any ``meta_keys`` present.

    Args:
        meta_keys (Sequence[str]): Extra result keys copied into the
            metainfo when present (e.g. ``('flip', 'img_shape')``).
            Defaults to ().
        view_keys (dict, optional): Pipeline key -> ``inputs`` key of the
            image views to pack; ``img`` must be among them and is required,
            the others are packed when present. Defaults to
            ``{'img': 'images', 'shield_img': 'shield_images',
            'clothes_img': 'clothes_images'}``.

    Raises:
        KeyError: ``img`` or one of ``pid``, ``camid``, ``clothes_id``,
            ``subset`` is missing.
        TypeError / ValueError: A view is not a uint8 or float32 H x W x 3
            array, the item was normalised in the pipeline, or the views
            differ in shape.
    """

    REQUIRED_KEYS = ('pid', 'camid', 'clothes_id', 'subset')

    def __init__(self,
                 meta_keys: Sequence[str] = (),
                 view_keys: Optional[Dict[str, str]] = None) -> None:
        self.meta_keys = tuple(meta_keys)
        self.view_keys = dict(DEFAULT_VIEW_KEYS if view_keys is
                              None else view_keys)
        if 'img' not in self.view_keys:
            raise ValueError('view_keys must map "img" (the raw image), got '
                             f'{self.view_keys}')

    @staticmethod
    def _image_tensor(img, key: str, where: str) -> torch.Tensor:
        if not isinstance(img, np.ndarray):
            raise TypeError(f'{where}: results[{key!r}] must be an HWC numpy '
                            f'array, got {type(img).__name__}')
        if img.ndim == 2:
            # a grey image read with color_type='grayscale': CLIP needs 3
            img = np.repeat(img[..., None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f'{where}: results[{key!r}] should be H x W x 3,'
                             f' got shape {img.shape}')
        if img.dtype not in (np.uint8, np.float32):
            raise TypeError(
                f'{where}: results[{key!r}] is {img.dtype}; views are packed '
                'as uint8 (or float32) on the 0-255 scale and normalised by '
                'ReIDDataPreprocessor')
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

    def transform(self, results: dict) -> dict:
        """Pack ``results`` into ``inputs`` and ``data_samples``."""
        where = (f'item {results.get("sample_idx", "?")} '
                 f'(img_path={results.get("img_path")!r})')
        if results.get('img') is None:
            raise KeyError(f'{where} has no "img": the pipeline must start '
                           'with LoadImageFromFile')
        if 'img_norm_cfg' in results:
            raise ValueError(
                f'{where} was normalised in the pipeline (img_norm_cfg is '
                'set); ReIDDataPreprocessor normalises, drop Normalize')
        missing = [k for k in self.REQUIRED_KEYS if results.get(k) is None]
        if missing:
            raise KeyError(f'{where} lacks {missing}; ReID items need '
                           f'{list(self.REQUIRED_KEYS)}')
        inputs = {}
        for src, dst in self.view_keys.items():
            if results.get(src) is not None:
                inputs[dst] = self._image_tensor(results[src], src, where)
        shapes = {k: tuple(v.shape) for k, v in inputs.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(
                f'{where}: the views differ in shape ({shapes}); build '
                'shield/clothes images after every geometric transform')

        sample = DataSample()
        sample.set_gt_label(int(results['pid']))
        meta = dict(
            pid=int(results['pid']),
            camid=int(results['camid']),
            clothes_id=int(results['clothes_id']),
            subset=str(results['subset']),
            img_path=results.get('img_path'))
        if results.get('tracklet_id') is not None:
            meta['tracklet_id'] = int(results['tracklet_id'])
        meta.update({k: results[k] for k in self.meta_keys if k in results})
        sample.set_metainfo(meta)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(meta_keys={self.meta_keys}, '
                f'view_keys={self.view_keys})')
