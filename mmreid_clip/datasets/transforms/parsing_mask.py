"""Human-parsing masks: loading them, and a crop that keeps them aligned.

CCAF (arXiv 2406.09198; ``docs/methods/ccaf.md`` §6.3, joint augmentation)
needs the LIP label
map of every training image to go through the same geometric ops as the
image. mmcv's ``Resize`` (nearest for ``gt_seg_map``) and ``RandomFlip``
already move ``gt_seg_map`` with ``img``; this file adds what mmcv and
mmpretrain lack: a loader for the mask files and a pad-and-random-crop that
crops both identically.
"""
import math
from numbers import Number
from typing import Optional, Sequence, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmpretrain.datasets.transforms import RandomCrop

from mmreid_clip.registry import TRANSFORMS
from .loading import check_image_pixels


def _item_name(results: dict) -> str:
    return (f'item {results.get("sample_idx", "?")} '
            f'(img_path={results.get("img_path")!r})')


@TRANSFORMS.register_module()
class LoadParsingMask(BaseTransform):
    """Load a human-parsing label PNG (LIP ids) into ``gt_seg_map``.

    Why not mmcv's ``LoadAnnotations(with_seg=True)``: it reads
    ``seg_map_path`` (our items carry ``mask_path``), decodes with OpenCV by
    default, which expands SCHP's palette PNGs into BGR colours instead of
    label ids, and checks neither the mask's size against the image's nor
    its label range. This loader always decodes with Pillow, so palette
    ('P'), grey ('L') and 3-channel grey PNGs all give the raw label ids.

    **Required keys:** ``mask_path``, ``img`` (run ``LoadImageFromFile``
    first). **Added keys:** ``gt_seg_map`` (uint8, H x W, same H, W as
    ``img``), which mmcv's ``Resize`` / ``RandomFlip`` and
    :class:`JointRandomCrop` then transform along with the image.

    Args:
        resize_to_image (bool): When the mask's size differs from the
            image's, resize it to the image's size with nearest-neighbour
            interpolation instead of raising. Defaults to False.
        num_classes (int, optional): Labels must be below this (20 for LIP,
            see ``docs/methods/datasets.md`` §3); a larger value usually
            means a colourised visualisation was saved instead of the label
            ids. None skips the check. Defaults to 20.
        backend_args (dict, optional): mmengine file backend arguments, as
            for ``LoadImageFromFile``. Defaults to None.

    Raises:
        KeyError: ``mask_path`` is missing or None, or ``img`` is absent.
        FileNotFoundError: The mask file cannot be read.
        ValueError: The file is not a decodable image, is not a single-channel
            label map, has labels ``>= num_classes``, or its size differs from
            the image's (with ``resize_to_image=False``).
    """

    def __init__(self,
                 resize_to_image: bool = False,
                 num_classes: Optional[int] = 20,
                 backend_args: Optional[dict] = None) -> None:
        if num_classes is not None and not 1 <= num_classes <= 256:
            raise ValueError('num_classes must be in 1..256 (uint8 labels), '
                             f'got {num_classes}')
        self.resize_to_image = resize_to_image
        self.num_classes = num_classes
        self.backend_args = backend_args

    def _read(self, path: str) -> np.ndarray:
        try:
            data = fileio.get(path, backend_args=self.backend_args)
        except (OSError, ValueError) as err:
            raise FileNotFoundError(
                f'parsing mask {path!r} cannot be read ({err}); run the '
                'parser over this split or fix the mask folder') from err
        check_image_pixels(data, f'parsing mask {path!r}')
        try:
            mask = mmcv.imfrombytes(data, flag='unchanged', backend='pillow')
        except Exception as err:  # Pillow raises several unrelated types
            raise ValueError(f'parsing mask {path!r} is not a readable '
                             f'image: {err}') from err
        if mask.ndim == 3:
            # some tools write label maps as 3 identical grey channels
            if mask.shape[2] >= 3 and all(
                    np.array_equal(mask[..., 0], mask[..., c])
                    for c in range(1, 3)):
                mask = mask[..., 0]
            else:
                raise ValueError(
                    f'parsing mask {path!r} has {mask.shape[2]} differing '
                    'channels: expected a single-channel label map (raw '
                    'parser label ids), not a colourised visualisation')
        if not np.issubdtype(mask.dtype, np.integer):
            raise ValueError(f'parsing mask {path!r} has dtype {mask.dtype}, '
                             'expected integer label ids')
        if mask.dtype != np.uint8:
            if mask.size and (mask.min() < 0 or mask.max() > 255):
                raise ValueError(
                    f'parsing mask {path!r} has labels outside 0..255')
            mask = mask.astype(np.uint8)
        return np.ascontiguousarray(mask)

    def transform(self, results: dict) -> dict:
        """Read ``results['mask_path']`` into ``results['gt_seg_map']``."""
        path = results.get('mask_path')
        if path is None:
            raise KeyError(
                f'{_item_name(results)} has no mask_path: build the dataset '
                'with with_mask=True (and precomputed parsing masks)')
        if results.get('img') is None:
            raise KeyError(f'{_item_name(results)}: LoadParsingMask needs '
                           '"img" to check the mask size; put it after '
                           'LoadImageFromFile')
        mask = self._read(path)
        if self.num_classes is not None and mask.size:
            top = int(mask.max())
            if top >= self.num_classes:
                raise ValueError(
                    f'parsing mask {path!r} has label {top} >= num_classes='
                    f'{self.num_classes}')
        img_hw = tuple(results['img'].shape[:2])
        if mask.shape != img_hw:
            if not self.resize_to_image:
                raise ValueError(
                    f'parsing mask {path!r} is {mask.shape[0]}x'
                    f'{mask.shape[1]} (HxW) but its image '
                    f'{results.get("img_path")!r} is {img_hw[0]}x{img_hw[1]}'
                    '; regenerate the mask or set resize_to_image=True')
            mask = mmcv.imresize(
                mask, (img_hw[1], img_hw[0]), interpolation='nearest')
        results['gt_seg_map'] = mask
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(resize_to_image='
                f'{self.resize_to_image}, num_classes={self.num_classes}, '
                f'backend_args={self.backend_args})')


@TRANSFORMS.register_module()
class JointRandomCrop(RandomCrop):
    """Pad, then crop ``img`` and ``gt_seg_map`` at one random location.

    The CLIP-ReID recipe ``Pad(10)`` + ``RandomCrop(256, 128)``
    (``docs/methods/ccaf.md`` §9) applied to image and mask together
    (ccaf.md §6.3). Why not mmpretrain's ``RandomCrop`` as is: it
    pads and crops ``img`` only, so the mask would go out of step; and
    mmcv's ``Pad`` pads only at the bottom/right to a target size, not
    ``padding`` pixels on every side. This subclass keeps mmpretrain's
    ``padding`` / ``pad_if_needed`` semantics and its random offsets
    (``rand_crop_params``), and applies the same padding and window to
    ``gt_seg_map`` when present.

    Unlike mmpretrain's ``RandomCrop``, ``padding_mode`` applies to
    ``padding`` too (mmpretrain always pads ``padding`` with a constant),
    so image and mask are padded alike in every mode.

    **Required keys:** ``img``; ``gt_seg_map`` (optional). **Modified
    keys:** ``img``, ``img_shape``, ``gt_seg_map``.

    Args:
        crop_size (int | Sequence[int]): Output size (h, w), or an int for a
            square.
        padding (int | Sequence[int], optional): Pixels added on each border
            before cropping: an int, (left/right, top/bottom) or (left, top,
            right, bottom). Defaults to None (no padding).
        pad_if_needed (bool): Pad (centred) an image smaller than
            ``crop_size``. Defaults to False.
        pad_val (Number | Sequence[Number]): Image fill for constant padding
            (0 = black, as torchvision's ``Pad``). Defaults to 0.
        seg_pad_val (int): Mask fill for constant padding; 0 is LIP's
            background, which is what the black border is. Defaults to 0.
        padding_mode (str): 'constant', 'edge', 'reflect' or 'symmetric'.
            Defaults to 'constant'.
    """

    def __init__(self,
                 crop_size: Union[Sequence[int], int],
                 padding: Optional[Union[Sequence[int], int]] = None,
                 pad_if_needed: bool = False,
                 pad_val: Union[Number, Sequence[Number]] = 0,
                 seg_pad_val: int = 0,
                 padding_mode: str = 'constant') -> None:
        super().__init__(
            crop_size=crop_size,
            padding=padding,
            pad_if_needed=pad_if_needed,
            pad_val=pad_val,
            padding_mode=padding_mode)
        if not 0 <= seg_pad_val <= 255:
            raise ValueError(f'seg_pad_val must fit uint8, got {seg_pad_val}')
        self.seg_pad_val = seg_pad_val

    def _pad(self, img: np.ndarray, seg: Optional[np.ndarray], padding):
        # configs turn tuples into lists, which mmcv.impad rejects
        pad_val = self.pad_val
        if not isinstance(pad_val, Number):
            pad_val = tuple(pad_val)
        img = mmcv.impad(
            img,
            padding=padding,
            pad_val=pad_val,
            padding_mode=self.padding_mode)
        if seg is not None:
            seg = mmcv.impad(
                seg,
                padding=padding,
                pad_val=self.seg_pad_val,
                padding_mode=self.padding_mode)
        return img, seg

    def transform(self, results: dict) -> dict:
        """Pad and crop ``img`` (and ``gt_seg_map``) with one window."""
        img = results['img']
        seg = results.get('gt_seg_map')
        if seg is not None and seg.shape[:2] != img.shape[:2]:
            raise ValueError(
                f'{_item_name(results)}: gt_seg_map is {seg.shape[:2]} but '
                f'img is {img.shape[:2]}; every geometric transform before '
                'JointRandomCrop must move the mask with the image')
        if self.padding is not None:
            img, seg = self._pad(img, seg, self.padding)
        if self.pad_if_needed:
            h_pad = math.ceil(max(0, self.crop_size[0] - img.shape[0]) / 2)
            w_pad = math.ceil(max(0, self.crop_size[1] - img.shape[1]) / 2)
            if h_pad or w_pad:
                img, seg = self._pad(img, seg, (w_pad, h_pad, w_pad, h_pad))

        top, left, h, w = self.rand_crop_params(img)
        results['img'] = img[top:top + h, left:left + w]
        results['img_shape'] = results['img'].shape[:2]
        if seg is not None:
            results['gt_seg_map'] = seg[top:top + h, left:left + w]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(crop_size={self.crop_size}, '
                f'padding={self.padding}, pad_if_needed={self.pad_if_needed}'
                f', pad_val={self.pad_val}, seg_pad_val={self.seg_pad_val}, '
                f'padding_mode={self.padding_mode})')
