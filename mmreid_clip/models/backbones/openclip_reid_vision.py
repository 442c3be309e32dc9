"""CLIP-ReID's image encoder: the open_clip ViT with layer-11/12/proj CLS."""
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn

from mmreid_clip.models.utils.value_checks import ValueCheck
from mmreid_clip.registry import MODELS
from .openclip_vision import OpenCLIPVisionTransformer


@MODELS.register_module()
class OpenCLIPReIDVisionTransformer(OpenCLIPVisionTransformer):
    """CLIP ViT image encoder with CLIP-ReID's three CLS features.

    Implements the modified visual forward of CLIP-ReID (arXiv 2211.13977;
    ``docs/methods/ccaf.md`` §2): patch embedding, CLS prepended, optional SIE
    camera embedding
    added to the CLS token, positional embedding (resized to the ReID
    grid with ``interpolation``, CLIP-ReID uses bilinear), ``ln_pre``, then

    * ``f11``: CLS after the first ``L - 1`` blocks (no ``ln_post``),
    * ``f12``: CLS after the last block and ``ln_post`` (tower width),
    * ``fp``: ``f12 @ proj`` (the CLIP joint space).

    Args:
        arch: open_clip model name or tiny arch, see
            :class:`OpenCLIPVisionTransformer`.
        pretrained: Weights, see :func:`build_open_clip`.
        img_size: Input ``(H, W)``; CLIP-ReID uses ``(256, 128)``.
        stride: Patch-embedding stride; None keeps the patch size. A smaller
            stride gives CLIP-ReID's overlapping patches ("OLP", e.g. 12 for
            ViT-B/16: a 21x10 grid at 256x128); the trained positional
            embedding is resized once, straight from its own grid (14x14)
            to the new one, as CLIP-ReID does.
        sie_cameras: Number of cameras for SIE (side-information embedding,
            a learnt ``num_cams x width`` table added to the CLS token); 0
            disables it (CLIP-ReID's and CCAF's default).
        sie_coef: Factor on the SIE embedding (CLIP-ReID ``SIE_COE``). The
            default 3.0 is the official code's default; the commands of
            CLIP-ReID's README that produced the published SIE numbers pass
            1.0, which the SIE configs of this zoo set.
        interpolation: Positional-embedding resize; ``'bilinear'`` as
            CLIP-ReID.
        quick_gelu: MLP activation; None picks what the weights need.
        frozen: Stop gradients and keep the tower in eval mode.
        resize_in_file_dtype: Resize the positional embedding in the
            weights file's dtype (fp16 for OpenAI's archive), as CLIP-ReID
            does; False resizes in float32 (one fp16 rounding step more
            exact). The CLIP-ReID/CCAF configs set True.
        init_cfg: mmengine init config.

    Attributes:
        width (int): Size of ``f11`` and ``f12``.
        embed_dim (int): Size of ``fp``.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'ViT-B-16',
                 pretrained: Optional[str] = None,
                 img_size: Union[int, Sequence[int], None] = (256, 128),
                 stride: Optional[int] = None,
                 sie_cameras: int = 0,
                 sie_coef: float = 3.0,
                 interpolation: str = 'bilinear',
                 quick_gelu: Optional[bool] = None,
                 frozen: bool = False,
                 resize_in_file_dtype: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            arch=arch,
            pretrained=pretrained,
            img_size=img_size,
            with_proj=True,
            output_attn=False,
            quick_gelu=quick_gelu,
            interpolation=interpolation,
            frozen=False,
            stride=stride,
            resize_in_file_dtype=resize_in_file_dtype,
            init_cfg=init_cfg)
        self._value_check = ValueCheck()
        self.stride = stride
        self.sie_coef = sie_coef
        self.sie_cameras = sie_cameras
        if sie_cameras < 0:
            raise ValueError(f'sie_cameras must be >= 0, got {sie_cameras}')
        if sie_cameras:
            self.sie_embed = nn.Parameter(torch.zeros(sie_cameras,
                                                      self.width))
            nn.init.trunc_normal_(self.sie_embed, std=0.02)
        else:
            self.sie_embed = None
        self.frozen = frozen
        if frozen:
            for param in self.parameters():
                param.requires_grad_(False)
            self.train(False)

    def forward(self,
                x: torch.Tensor,
                camids: Optional[torch.Tensor] = None,
                with_sie: bool = True) -> Dict[str, torch.Tensor]:
        """Encode images.

        Args:
            x: ``B x 3 x H x W`` normalised images, ``(H, W) == img_size``.
            camids: ``B`` camera ids, required when SIE is on.
            with_sie: Add the SIE camera embedding when SIE is on. False
                encodes as if SIE were off (no ``camids`` needed), which is
                how CLIP-ReID's stage 1 builds its feature cache.

        Returns:
            dict: ``'f11'``, ``'f12'`` (``B x width``), ``'fp'`` and its
            alias ``'global'`` (``B x embed_dim``).
        """
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(
                f'input size {tuple(x.shape[-2:])} differs from img_size '
                f'{self.img_size} the positional embedding was built for')
        visual = self.visual
        x = visual.conv1(x).flatten(2).transpose(1, 2)  # B x N x W
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        if self.sie_embed is not None and with_sie:
            if camids is None:
                raise ValueError('SIE is on (sie_cameras > 0): pass camids')
            if self._value_check.due(camids) and (
                    int(camids.max()) >= self.sie_cameras
                    or int(camids.min()) < 0):
                raise ValueError(
                    f'camera ids {camids.tolist()} outside [0, '
                    f'{self.sie_cameras}) of the SIE table')
            cls = cls + self.sie_coef * self.sie_embed[camids].unsqueeze(1)
        x = torch.cat([cls, x], dim=1)
        x = x + visual.positional_embedding.to(x.dtype)
        x = visual.patch_dropout(x)
        x = visual.ln_pre(x)
        blocks = visual.transformer.resblocks
        if not getattr(visual.transformer, 'batch_first', True):
            raise NotImplementedError('open_clip towers are batch-first')
        for block in blocks[:-1]:
            x = block(x)
        f11 = x[:, 0]
        x = blocks[-1](x)
        f12 = visual.ln_post(x[:, 0])
        fp = f12 @ visual.proj
        return {'f11': f11, 'f12': f12, 'fp': fp, 'global': fp}
