"""The image tower of an open_clip CLIP model, returning every token."""
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from open_clip.transformer import VisionTransformer

from mmreid_clip.registry import MODELS
from mmreid_clip.models.utils.freeze import freeze
from .openclip_attention import run_transformer, supports_attn_output
from .openclip_factory import build_open_clip


@MODELS.register_module()
class OpenCLIPVisionTransformer(BaseModule):
    """CLIP ViT image encoder built with open_clip, with all output tokens.

    Keeps only open_clip's ``visual`` tower. Unlike ``model.visual(x)``,
    which returns the projected CLS feature (and, optionally, unprojected
    patch tokens), the forward returns every token after ``ln_post``,
    projected or not, and optionally the last block's CLS attention, as
    ``docs/design.md`` specifies (``docs/methods/cfine.md`` §2).

    Args:
        arch: open_clip model name (``'ViT-B-16'``), a tiny arch of
            :data:`TINY_ARCHS` (``'clip-tiny'``, ``'clip-micro'``) or a dict
            of open_clip ``CLIP`` arguments.
        pretrained: None (random init), a weights file (OpenAI TorchScript
            archive, open_clip state dict, ``.safetensors``) or an open_clip
            pretrained tag; see :func:`build_open_clip`.
        img_size: Input ``(H, W)``, e.g. ``(384, 128)``; an int means
            square, None the arch's. The positional embedding of the weights
            is interpolated to this grid.
        with_proj: Project tokens to the joint embedding space with
            ``visual.proj``. When False the projection is deleted, so it is
            neither used nor optimised, and outputs have the tower width.
        output_attn: Also return the last block's attention of the CLS
            query (``'attn'``).
        quick_gelu: MLP activation; None picks what the weights need
            (QuickGELU for OpenAI weights).
        interpolation: Positional-embedding resize, ``'bicubic'`` (open_clip)
            or ``'bilinear'`` (CLIP-ReID).
        frozen: Stop gradients and keep the tower in eval mode.
        stride: Patch-embedding stride; None keeps the patch size. A
            smaller stride overlaps the patches; the trained positional
            embedding is resized once, straight to the resulting grid
            (see ``build_open_clip``'s ``patch_stride``).
        resize_in_file_dtype: Resize the positional embedding in the
            weights file's dtype (fp16 for OpenAI's archive) as CLIP-ReID
            does, instead of float32; see ``build_open_clip``.
        init_cfg: mmengine init config, applied by ``init_weights`` after
            the CLIP weights are loaded here.

    Attributes:
        embed_dim (int): Size of ``'global'`` (and of every token).
        width (int): Transformer width.
        img_size (tuple[int, int]): Expected input size.
        grid_size (tuple[int, int]): Patch grid.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'ViT-B-16',
                 pretrained: Optional[str] = None,
                 img_size: Union[int, Sequence[int], None] = None,
                 with_proj: bool = True,
                 output_attn: bool = False,
                 quick_gelu: Optional[bool] = None,
                 interpolation: str = 'bicubic',
                 frozen: bool = False,
                 stride: Optional[int] = None,
                 resize_in_file_dtype: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        model = build_open_clip(
            arch,
            pretrained,
            img_size=img_size,
            quick_gelu=quick_gelu,
            interpolation=interpolation,
            tower='visual',
            patch_stride=stride,
            resize_in_file_dtype=resize_in_file_dtype)
        visual = model.visual
        if not isinstance(visual, VisionTransformer):
            raise NotImplementedError(
                f'{type(visual).__name__} image towers are not supported; '
                'use an open_clip ViT arch')
        if (visual.attn_pool is not None or visual.pool_type != 'tok'
                or visual.final_ln_after_pool):
            raise NotImplementedError(
                'only CLS-token ViTs (pool_type="tok", ln_post on all '
                'tokens, no attentional pooler) are supported')
        if output_attn and not supports_attn_output(visual.transformer):
            raise NotImplementedError(
                'output_attn needs nn.MultiheadAttention blocks; this arch '
                'uses custom attention blocks')
        if with_proj and visual.proj is None:
            raise ValueError('with_proj=True but the arch has no visual '
                             'projection')
        if not with_proj:
            # None unregisters the parameter: optimizers never see it.
            visual.proj = None
        self.visual = visual
        self.with_proj = with_proj
        self.output_attn = output_attn
        self.frozen = frozen
        self.img_size = tuple(visual.image_size)
        self.grid_size = tuple(visual.grid_size)
        self.width = visual.transformer.width
        self.embed_dim = (visual.proj.shape[1] if with_proj else self.width)
        if frozen:
            freeze(self)
            self.train(False)

    def train(self, mode: bool = True) -> 'OpenCLIPVisionTransformer':
        """Set train mode; a frozen tower stays in eval mode."""
        return super().train(mode and not self.frozen)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Encode images.

        Args:
            x: ``B x 3 x H x W`` normalised images, ``(H, W) == img_size``.

        Returns:
            dict: ``'global'`` ``B x D`` (the CLS token), ``'tokens'``
            ``B x (1+N) x D`` (CLS first, then the N patches row by row),
            and with ``output_attn`` ``'attn'`` ``B x (1+N)``: the CLS
            query's attention over all tokens in the last block, averaged
            over heads (rows sum to 1). ``D`` is :attr:`embed_dim`.
        """
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(
                f'input size {tuple(x.shape[-2:])} differs from img_size '
                f'{self.img_size} the positional embedding was built for')
        visual = self.visual
        x = visual.conv1(x)  # B x W x gh x gw
        x = x.flatten(2).transpose(1, 2)  # B x N x W
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        x = x + visual.positional_embedding.to(x.dtype)
        x = visual.patch_dropout(x)
        x = visual.ln_pre(x)
        # the [CLS] row of the last attention (CFine's token selection)
        x, attn = run_transformer(
            visual.transformer,
            x,
            return_last_attn=self.output_attn,
            attn_query=x.new_zeros(x.shape[0], dtype=torch.long))
        tokens = visual.ln_post(x)
        if self.with_proj:
            tokens = tokens @ visual.proj
        out = {'global': tokens[:, 0], 'tokens': tokens}
        if self.output_attn:
            out['attn'] = attn
        return out
