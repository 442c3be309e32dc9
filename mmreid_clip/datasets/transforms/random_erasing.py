"""Random erasing: mmpretrain's, or timm's as the ReID codebases use it."""
from typing import Optional

import numpy as np
import torch
from mmpretrain.datasets.transforms import \
    RandomErasing as _MMPretrainRandomErasing
from timm.data.random_erasing import RandomErasing as _TimmRandomErasing

from mmreid_clip.registry import TRANSFORMS

#: Implementations of :class:`RandomErasing`.
IMPLS = ('mmpretrain', 'timm')


@TRANSFORMS.register_module()
class RandomErasing(_MMPretrainRandomErasing):
    """mmpretrain's ``RandomErasing``, or timm's (``impl='timm'``).

    Random erasing (Zhong et al., AAAI 2020, arXiv 1708.04896) comes in two
    flavours that differ in what a user of the ReID codebases gets:

    * ``impl='mmpretrain'`` (default; mmpretrain's transform, unchanged):
      on the uint8 image, a rectangle that does not fit is clipped to the
      image, and a normal fill (``mode='rand'`` with ``fill_std``) is
      rounded and clipped to 0-255.
    * ``impl='timm'``: timm's ``RandomErasing``, which CLIP-ReID (and the
      strong-baseline family) apply to the *normalised* image tensor. Up to
      10 rectangles are drawn (area uniform in ``[min, max]`` of the image,
      log-uniform aspect) until one fits strictly inside; if none does,
      nothing is erased. The fill is normal in normalised units, unclipped:
      ``mode='pixel'`` per pixel, ``'rand'`` per channel, ``'const'`` zero.
      Here the image is normalised with ``fill_color`` / ``fill_std`` (set
      them to the data preprocessor's mean / std), erased by timm's own
      code, and mapped back to the 0-255 scale as **float32** (always, so
      that a batch stacks), so after the data preprocessor the erased
      pixels are exactly timm's N(0, 1) values.

    This class is registered in mmreid_clip's scope under mmpretrain's name;
    with the default ``impl`` it is mmpretrain's transform.

    Args:
        erase_prob (float): Probability of erasing. Defaults to 0.5.
        min_area_ratio (float): Minimum erased area / image area.
        max_area_ratio (float): Maximum erased area / image area.
        aspect_range (float | tuple): Aspect ratio range (h / w).
        mode (str): ``'const'`` or ``'rand'`` (mmpretrain); ``'const'``,
            ``'rand'`` or ``'pixel'`` (timm, see above).
        fill_color (tuple): mmpretrain: the constant fill or the normal's
            mean; timm: the normalisation mean (0-255, image channel order).
        fill_std (tuple, optional): mmpretrain: the normal's std; timm: the
            normalisation std (required).
        impl (str): ``'mmpretrain'`` or ``'timm'``.
    """

    def __init__(self,
                 erase_prob: float = 0.5,
                 min_area_ratio: float = 0.02,
                 max_area_ratio: float = 0.4,
                 aspect_range=(3 / 10, 10 / 3),
                 mode: str = 'const',
                 fill_color=(128, 128, 128),
                 fill_std=None,
                 impl: str = 'mmpretrain') -> None:
        if impl not in IMPLS:
            raise ValueError(f'impl must be one of {IMPLS}, got {impl!r}')
        self.impl = impl
        self._timm: Optional[_TimmRandomErasing] = None
        if impl == 'mmpretrain':
            super().__init__(erase_prob, min_area_ratio, max_area_ratio,
                             aspect_range, mode, fill_color, fill_std)
            return
        if mode not in ('const', 'rand', 'pixel'):
            raise ValueError("impl='timm' takes mode 'const', 'rand' or "
                             f"'pixel', got {mode!r}")
        if fill_std is None:
            raise ValueError("impl='timm' erases in normalised units: pass "
                             'fill_color and fill_std = the data '
                             "preprocessor's mean and std")
        # mmpretrain's checks of the shared arguments ('pixel' aside)
        super().__init__(erase_prob, min_area_ratio, max_area_ratio,
                         aspect_range, 'rand', fill_color, fill_std)
        self.mode = mode
        self._timm = _TimmRandomErasing(
            probability=erase_prob,
            min_area=min_area_ratio,
            max_area=max_area_ratio,
            min_aspect=self.aspect_range[0],
            max_aspect=self.aspect_range[1],
            mode=mode,
            device='cpu')
        self._mean = np.asarray(self.fill_color, np.float32)
        self._std = np.asarray(self.fill_std, np.float32)

    def transform(self, results: dict) -> dict:
        """Erase a rectangle of ``results['img']`` (or nothing)."""
        if self._timm is None:
            return super().transform(results)
        img = results['img']
        if img.ndim != 3 or img.shape[2] != len(self._mean):
            raise ValueError(f"RandomErasing(impl='timm') expects an H x W x "
                             f'{len(self._mean)} image, got {img.shape}')
        norm = (img.astype(np.float32) - self._mean) / self._std
        chw = torch.from_numpy(np.ascontiguousarray(norm.transpose(2, 0, 1)))
        self._timm(chw)  # in place, timm's own sampling
        out = chw.numpy().transpose(1, 2, 0) * self._std + self._mean
        results['img'] = np.ascontiguousarray(out, dtype=np.float32)
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', impl={self.impl!r})'
