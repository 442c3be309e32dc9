"""Resampling a ViT positional embedding to another patch grid."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ['INTERPOLATIONS', 'resize_vision_pos_embed']

INTERPOLATIONS = ('bicubic', 'bilinear')


def resize_vision_pos_embed(pos_embed: torch.Tensor,
                            new_grid: Tuple[int, int],
                            old_grid: Optional[Tuple[int, int]] = None,
                            interpolation: str = 'bicubic',
                            num_prefix_tokens: int = 1,
                            compute_dtype: torch.dtype = torch.float32
                            ) -> torch.Tensor:
    """Interpolate a ViT positional embedding to another patch grid.

    The prefix (class) token rows are kept as they are; the patch rows are
    viewed as an ``old_grid`` image and resized to ``new_grid``, which may be
    non-square (ReID inputs such as 384x128).

    ``'bicubic'`` uses antialiasing as open_clip's own resize does when
    ``force_image_size`` is set; ``'bilinear'`` does not, as CLIP-ReID's
    ``resize_pos_embed`` (``F.interpolate(..., mode='bilinear')``). Each
    choice therefore reproduces its reference exactly.

    Args:
        pos_embed: ``(num_prefix_tokens + Ho*Wo) x W``.
        new_grid: ``(Hn, Wn)`` patches.
        old_grid: ``(Ho, Wo)``; inferred for square grids when None.
        interpolation: ``'bicubic'`` or ``'bilinear'``.
        num_prefix_tokens: Rows before the patch rows.
        compute_dtype: dtype the interpolation runs in. float32 by default
            (exact for fp16 weights); float16 rounds as CLIP-ReID does,
            which interpolates OpenAI's fp16 archive tensor as it is.

    Returns:
        ``(num_prefix_tokens + Hn*Wn) x W``, same dtype as ``pos_embed``.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f'interpolation must be one of {INTERPOLATIONS}, '
                         f'got {interpolation!r}')
    prefix, patches = (pos_embed[:num_prefix_tokens],
                       pos_embed[num_prefix_tokens:])
    num_old = patches.shape[0]
    if old_grid is None:
        side = round(num_old**0.5)
        if side * side != num_old:
            raise ValueError(
                f'cannot infer the patch grid of a positional embedding with '
                f'{num_old} patch rows (not a square); pass old_grid')
        old_grid = (side, side)
    if old_grid[0] * old_grid[1] != num_old:
        raise ValueError(f'old_grid {old_grid} does not match {num_old} '
                         'patch rows')
    new_grid = tuple(new_grid)
    if tuple(old_grid) == new_grid:
        return pos_embed
    width = pos_embed.shape[1]
    grid = patches.to(compute_dtype).reshape(1, *old_grid,
                                             width).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid,
        size=new_grid,
        mode=interpolation,
        align_corners=False,
        antialias=interpolation == 'bicubic')
    patches = grid.permute(0, 2, 3, 1).reshape(-1, width).to(pos_embed.dtype)
    return torch.cat([prefix, patches], dim=0)
