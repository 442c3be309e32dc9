"""Packing a text-image item into model inputs and a ``DataSample``."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmpretrain.structures import DataSample

from mmreid_clip.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackTextImageInputs(BaseTransform):
    """Pack an item as in ``docs/design.md`` ("Text-image data").

    Output::

        {'inputs': {'images': uint8 Tensor[3, H, W],   # items with an image
                    'texts': int64 Tensor[L]},         # items with a caption
         'data_samples': DataSample}

    The image stays BGR and uint8 (as ``LoadImageFromFile`` reads it): the
    data preprocessor flips and normalises it on the device, which keeps
    the DataLoader's shared-memory batches four times smaller than float.
    ``DataSample.gt_label`` is the pid; the metainfo holds ``pid``,
    ``image_id``, ``caption_id``, ``has_image``, ``has_text``, ``img_path``
    (or None) and ``caption`` (or None), plus any ``meta_keys`` present.

    An item that names an image (``img_path``) must have been loaded
    (``img``), and one with a ``caption`` must have been tokenised
    (``text``); anything else is a pipeline mistake and raises.

    Args:
        meta_keys (Sequence[str]): Extra result keys copied into the
            metainfo when present (e.g. ``('ori_shape', 'img_shape',
            'flip')``). Defaults to ().
    """

    def __init__(self, meta_keys: Sequence[str] = ()) -> None:
        self.meta_keys = tuple(meta_keys)

    @staticmethod
    def _image_tensor(img: np.ndarray, where: str) -> torch.Tensor:
        if not isinstance(img, np.ndarray):
            raise TypeError(f'{where}: results["img"] must be an HWC numpy '
                            f'array, got {type(img).__name__}')
        if img.ndim == 2:
            # a grey image read with color_type='grayscale': CLIP needs 3
            img = np.repeat(img[..., None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f'{where}: expected an H x W x 3 image, got '
                             f'shape {img.shape}')
        if img.dtype != np.uint8:
            raise TypeError(
                f'{where}: images are packed as uint8 (0-255) and '
                f'normalised by the data preprocessor, got {img.dtype}; '
                'drop to_float32/Normalize from the pipeline')
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

    @staticmethod
    def _text_tensor(text, where: str) -> torch.Tensor:
        text = torch.as_tensor(text)
        if text.dim() != 1:
            raise ValueError(f'{where}: results["text"] must be 1-D token ids,'
                             f' got shape {tuple(text.shape)}')
        if text.dtype != torch.int64:
            if text.is_floating_point():
                raise TypeError(f'{where}: token ids must be integers, got '
                                f'{text.dtype}')
            text = text.long()
        return text

    def transform(self, results: dict) -> dict:
        """Pack ``results`` into ``inputs`` and ``data_samples``."""
        where = (f'item {results.get("sample_idx", "?")} '
                 f'(img_path={results.get("img_path")!r}, '
                 f'caption_id={results.get("caption_id")})')
        if 'img_path' in results and 'img' not in results:
            raise KeyError(f'{where} names an image but has no "img": the '
                           'dataset pipeline must start with '
                           'LoadImageFromFile')
        if 'caption' in results and 'text' not in results:
            raise KeyError(f'{where} has a caption but no "text": add '
                           'TokenizeCaption to the text_pipeline')
        inputs = {}
        if 'img' in results:
            inputs['images'] = self._image_tensor(results['img'], where)
        if 'text' in results:
            inputs['texts'] = self._text_tensor(results['text'], where)
        if not inputs:
            raise KeyError(f'{where} has neither an image nor a caption')

        sample = DataSample()
        pid = results.get('pid')
        if pid is not None:
            sample.set_gt_label(int(pid))
        sample.set_metainfo(
            dict(
                pid=-1 if pid is None else int(pid),
                image_id=int(results.get('image_id', -1)),
                caption_id=int(results.get('caption_id', -1)),
                has_image='images' in inputs,
                has_text='texts' in inputs,
                img_path=results.get('img_path'),
                caption=results.get('caption')))
        extra = {k: results[k] for k in self.meta_keys if k in results}
        if extra:
            sample.set_metainfo(extra)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
