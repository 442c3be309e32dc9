"""Shielding (clothes-filled) and clothes-only views of a person image."""
from numbers import Number
from typing import Dict, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmreid_clip.registry import TRANSFORMS

# LIP label ids (docs/methods/datasets.md §3) that count as clothes.
CLOTHES_LABEL_PRESETS: Dict[str, Tuple[int, ...]] = {
    # default (MAPL's code, docs/methods/ccaf.md §6.1): hat, glove, sunglasses,
    # upper
    # clothes, dress, coat, socks, pants, jumpsuits, scarf, skirt
    'lip': (1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
    # variant (a): core garments only
    'lip_core': (5, 6, 7, 9, 10, 12),
    # variant (b): the default plus left/right shoes
    'lip_with_shoes': (1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18, 19),
}


def resolve_clothes_labels(
        clothes_labels: Union[str, Sequence[int]]) -> Tuple[int, ...]:
    """Turn a preset name or a list of label ids into a sorted id tuple.

    Raises:
        ValueError: Unknown preset, empty list, or ids outside 0..255.
    """
    if isinstance(clothes_labels, str):
        if clothes_labels not in CLOTHES_LABEL_PRESETS:
            raise ValueError(
                f'unknown clothes_labels preset {clothes_labels!r}; choose '
                f'one of {sorted(CLOTHES_LABEL_PRESETS)} or give label ids')
        return CLOTHES_LABEL_PRESETS[clothes_labels]
    labels = tuple(sorted({int(x) for x in clothes_labels}))
    if not labels:
        raise ValueError('clothes_labels is empty')
    bad = [x for x in labels if not 0 <= x <= 255]
    if bad:
        raise ValueError(f'clothes_labels {bad} are not uint8 label ids')
    return labels


@TRANSFORMS.register_module()
class ShieldClothes(BaseTransform):
    """Build the shielding image (and optionally the clothes-only image).

    With M the clothes mask (``gt_seg_map`` in ``clothes_labels``), x the
    image and v the fill colour, ``docs/methods/ccaf.md`` §6.2:

    * ``shield_img  = x * (1 - M) + v * M`` (clothes covered),
    * ``clothes_img = x * M + v * (1 - M)`` (only the clothes kept; the
      stage-1 input for the clothes prompts).

    The views are built in pixel space before normalisation (the data
    preprocessor normalises every view later), after the joint geometric
    ops and before the per-view random erasing (ccaf.md §6.3).
    The clothes label sets are those of ccaf.md §6.1.

    **Required keys:** ``img`` (H x W x 3), ``gt_seg_map`` (H x W).
    **Added keys:** ``shield_img``; ``clothes_img`` if
    ``with_clothes_img``. ``img`` is left untouched.

    Args:
        clothes_labels (str | Sequence[int]): A preset name, 'lip' (the
            default: {1, 3..12}), 'lip_core' ({5, 6, 7, 9, 10, 12}) or
            'lip_with_shoes' (default + {18, 19}), or explicit label ids.
            Defaults to 'lip'.
        fill (float | Sequence[float] | str): v on the 0-255 scale: one
            value, an (R, G, B) triple, or 'mean' for ``mean``, which the
            preprocessor maps to 0. Defaults to 0 (black, the default;
            -1 after Normalize(0.5, 0.5)). The views stay uint8 until the
            preprocessor, so v is rounded to integers: with mean 127.5 the
            'mean' fill becomes 128, i.e. 1/255 after normalisation, not
            exactly 0.
        mean (Sequence[float]): (R, G, B) normalisation mean on the 0-255
            scale, used by ``fill='mean'``; keep it equal to the data
            preprocessor's. Defaults to (127.5, 127.5, 127.5) (CLIP-ReID).
        with_clothes_img (bool): Also write ``clothes_img``. Defaults to
            False.
        channel_order (str): Channel order of ``img``, 'bgr' (mmcv's
            ``LoadImageFromFile``) or 'rgb'; ``fill``/``mean`` are given in
            RGB and reordered to match. Defaults to 'bgr'.
    """

    def __init__(self,
                 clothes_labels: Union[str, Sequence[int]] = 'lip',
                 fill: Union[Number, Sequence[Number], str] = 0,
                 mean: Sequence[Number] = (127.5, 127.5, 127.5),
                 with_clothes_img: bool = False,
                 channel_order: str = 'bgr') -> None:
        self.clothes_labels = resolve_clothes_labels(clothes_labels)
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError("channel_order must be 'bgr' or 'rgb', got "
                             f'{channel_order!r}')
        if len(mean) != 3:
            raise ValueError(f'mean needs 3 (R, G, B) values, got {mean}')
        if isinstance(fill, str):
            if fill != 'mean':
                raise ValueError("fill must be a number, an (R, G, B) "
                                 f"triple or 'mean', got {fill!r}")
            rgb = tuple(float(m) for m in mean)
        elif isinstance(fill, Number):
            rgb = (float(fill), ) * 3
        else:
            rgb = tuple(float(v) for v in fill)
            if len(rgb) != 3:
                raise ValueError(f'fill needs 1 or 3 values, got {fill}')
        if not all(0 <= v <= 255 for v in rgb):
            raise ValueError(f'fill {rgb} is outside the 0-255 pixel range')
        self.fill = fill
        self.mean = tuple(mean)
        self.with_clothes_img = with_clothes_img
        self.channel_order = channel_order
        ordered = rgb[::-1] if channel_order == 'bgr' else rgb
        self._fill_value = np.array(ordered, dtype=np.float64)

    def transform(self, results: dict) -> dict:
        """Add ``shield_img`` (and ``clothes_img``) to ``results``."""
        where = (f'item {results.get("sample_idx", "?")} '
                 f'(img_path={results.get("img_path")!r})')
        if results.get('gt_seg_map') is None:
            raise KeyError(f'{where} has no gt_seg_map: put LoadParsingMask '
                           'before ShieldClothes')
        img, seg = results['img'], results['gt_seg_map']
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f'{where}: ShieldClothes expects an H x W x 3 '
                             f'image, got shape {img.shape}')
        if seg.shape != img.shape[:2]:
            raise ValueError(f'{where}: gt_seg_map is {seg.shape} but img is '
                             f'{img.shape[:2]}; the masks went out of step '
                             'with the image')
        if np.issubdtype(img.dtype, np.integer):
            fill = np.round(self._fill_value).astype(img.dtype)
        else:
            fill = self._fill_value.astype(img.dtype)
        clothes = np.isin(seg, self.clothes_labels)

        shield = img.copy()
        shield[clothes] = fill
        results['shield_img'] = shield
        if self.with_clothes_img:
            only = np.empty_like(img)
            only[...] = fill
            only[clothes] = img[clothes]
            results['clothes_img'] = only
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(clothes_labels={self.clothes_labels}'
                f', fill={self.fill!r}, mean={self.mean}, with_clothes_img='
                f'{self.with_clothes_img}, channel_order='
                f'{self.channel_order!r})')
