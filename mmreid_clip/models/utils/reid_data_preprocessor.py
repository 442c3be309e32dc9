"""Data preprocessor for image ReID batches with one or more image views."""
from typing import Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from mmreid_clip.registry import MODELS


@MODELS.register_module()
class ReIDDataPreprocessor(BaseDataPreprocessor):
    """Move a ReID batch to the device and normalise every image view.

    Input is the output of ``reid_collate``: ``inputs`` maps view names
    (``images``, ``shield_images``, ``clothes_images``) to uint8
    B x 3 x H x W tensors in BGR order (as mmcv loads them). Each view is
    flipped to RGB and normalised with the same mean/std, so a
    ``ShieldClothes(fill='mean')`` fill lands near 0.

    Args:
        mean (Sequence[float]): Per-channel mean on the 0-255 scale, RGB.
            Defaults to 127.5 each, i.e. CLIP-ReID's 0.5 on the 0-1 scale
            (``docs/methods/ccaf.md`` §2).
        std (Sequence[float]): Per-channel std on the 0-255 scale, RGB.
            Defaults to 127.5 each (CLIP-ReID's 0.5).
        to_rgb (bool): Flip BGR to RGB. Defaults to True.
        non_blocking (bool, optional): Non-blocking host-to-device copies,
            which overlap the step when the dataloader pins its batches
            (``pin_memory=True``; from pageable memory they are ordinary
            copies). Defaults to True.

    Returns of ``forward``: ``{'inputs': {key: float32 Tensor[B, 3, H, W]},
    'data_samples': list[DataSample]}``.
    """

    def __init__(self,
                 mean: Sequence[float] = (127.5, 127.5, 127.5),
                 std: Sequence[float] = (127.5, 127.5, 127.5),
                 to_rgb: bool = True,
                 non_blocking: Optional[bool] = True) -> None:
        super().__init__(non_blocking)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError('mean and std need 3 values (RGB), got '
                             f'{mean} and {std}')
        if any(s <= 0 for s in std):
            raise ValueError(f'std must be positive, got {std}')
        self.register_buffer('mean',
                             torch.tensor(mean).view(1, 3, 1, 1), False)
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1), False)
        self.to_rgb = to_rgb

    def forward(self, data: dict, training: bool = False) -> dict:
        """Cast to the device; normalise every tensor in ``inputs``."""
        data = self.cast_data(data)
        inputs = data['inputs']
        if not isinstance(inputs, dict) or not inputs:
            raise TypeError('ReIDDataPreprocessor expects inputs as a '
                            'non-empty dict of image views (reid_collate), '
                            f'got {type(inputs).__name__}')
        out = {}
        for key, images in inputs.items():
            if not torch.is_tensor(images) or images.dim() != 4 \
                    or images.size(1) != 3:
                shape = tuple(images.shape) if torch.is_tensor(images) \
                    else type(images).__name__
                raise ValueError(f'inputs[{key!r}] should be B x 3 x H x W, '
                                 f'got {shape}')
            if self.to_rgb:
                images = images.flip(1)
            out[key] = (images.float() - self.mean) / self.std
        return dict(inputs=out, data_samples=data.get('data_samples'))
