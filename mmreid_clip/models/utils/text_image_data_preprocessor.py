"""Data preprocessor for batches of images and/or tokenised captions."""
from typing import Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from mmreid_clip.registry import MODELS

# OpenAI CLIP statistics on the 0-255 scale (open_clip.OPENAI_DATASET_MEAN/STD)
CLIP_MEAN = (122.770938, 116.7460125, 104.09373615)
CLIP_STD = (68.5005327, 66.6321579, 70.32316305)


@MODELS.register_module()
class TextImageDataPreprocessor(BaseDataPreprocessor):
    """Move a text-image batch to the device and normalise its images.

    Input is the output of ``text_image_collate`` (see ``docs/design.md``):
    ``inputs`` is a dict with optional ``images`` (uint8, N x 3 x H x W, BGR
    as loaded by mmcv) and ``texts`` (int64 token ids).

    Args:
        mean (Sequence[float]): Per-channel mean on the 0-255 scale, in RGB
            order. Defaults to the OpenAI CLIP mean.
        std (Sequence[float]): Per-channel std on the 0-255 scale, RGB.
            Defaults to the OpenAI CLIP std.
        to_rgb (bool): Flip BGR (mmcv's loading order) to RGB. Defaults to
            True.
        non_blocking (bool, optional): Non-blocking host-to-device copies,
            which overlap the step when the dataloader pins its batches
            (``pin_memory=True``; from pageable memory they are ordinary
            copies). Defaults to True.
    """

    def __init__(self,
                 mean: Sequence[float] = CLIP_MEAN,
                 std: Sequence[float] = CLIP_STD,
                 to_rgb: bool = True,
                 non_blocking: Optional[bool] = True) -> None:
        super().__init__(non_blocking)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError('mean and std need 3 values (RGB), got '
                             f'{mean} and {std}')
        self.register_buffer('mean',
                             torch.tensor(mean).view(1, 3, 1, 1), False)
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1), False)
        self.to_rgb = to_rgb

    def forward(self, data: dict, training: bool = False) -> dict:
        """Cast to the device; normalise ``inputs['images']`` to float."""
        data = self.cast_data(data)
        inputs = dict(data['inputs'])
        images = inputs.get('images')
        if images is not None:
            if images.dim() != 4 or images.size(1) != 3:
                raise ValueError('expected images of shape N x 3 x H x W, '
                                 f'got {tuple(images.shape)}')
            if self.to_rgb:
                images = images.flip(1)
            inputs['images'] = (images.float() - self.mean) / self.std
        return dict(inputs=inputs, data_samples=data.get('data_samples'))
