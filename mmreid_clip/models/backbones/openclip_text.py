"""The text tower of an open_clip CLIP model, returning every token."""
from typing import Dict, Optional, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmreid_clip.registry import MODELS
from mmreid_clip.models.utils.freeze import freeze
from .openclip_attention import run_transformer, supports_attn_output
from .openclip_factory import build_open_clip

# open_clip's SimpleTokenizer pads with 0 and starts every text with
# <start_of_text>; its <end_of_text> has the largest id, so argmax finds it.
PAD_ID = 0


@MODELS.register_module()
class OpenCLIPTextTransformer(BaseModule):
    """CLIP text encoder built with open_clip, with all output tokens.

    Keeps only the text parts of an open_clip model (token and positional
    embeddings, the causal transformer, ``ln_final``, ``text_projection``),
    from either layout: ``CLIP`` inlines them, ``CustomTextCLIP`` keeps them
    in ``model.text``. The forward matches ``model.encode_text`` for the
    global feature and also returns every token (``docs/design.md``).

    Args:
        arch: open_clip model name, a tiny arch of :data:`TINY_ARCHS` or a
            dict of open_clip ``CLIP`` arguments.
        pretrained: None (random init), a weights file or an open_clip
            pretrained tag; see :func:`build_open_clip`.
        context_length: Longest input accepted; None keeps the arch's (77).
            With weights it may only be shorter than the trained context.
        with_proj: Project tokens with ``text_projection``. When False the
            projection is deleted (not used, not optimised).
        output_attn: Also return the last layer's attention of the EOT
            query (``'attn'``).
        quick_gelu: MLP activation; None picks what the weights need.
        frozen: Stop gradients and keep the tower in eval mode.
        init_cfg: mmengine init config, applied by ``init_weights`` after
            the CLIP weights are loaded here.

    Attributes:
        embed_dim (int): Size of ``'global'`` (and of every token).
        width (int): Transformer width.
        context_length (int): Number of positional embeddings.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'ViT-B-16',
                 pretrained: Optional[str] = None,
                 context_length: Optional[int] = None,
                 with_proj: bool = True,
                 output_attn: bool = False,
                 quick_gelu: Optional[bool] = None,
                 frozen: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        model = build_open_clip(
            arch,
            pretrained,
            quick_gelu=quick_gelu,
            context_length=context_length,
            tower='text')
        # CustomTextCLIP keeps a TextTransformer in .text; CLIP inlines it.
        src = getattr(model, 'text', model)
        pool_type = getattr(src, 'pool_type',
                            getattr(model, 'text_pool_type', None))
        if not hasattr(src, 'token_embedding'):
            raise NotImplementedError(
                f'{type(src).__name__} text towers are not supported')
        if pool_type != 'argmax' or getattr(src, 'cls_emb', None) is not None:
            raise NotImplementedError(
                'only CLIP-style text towers (EOT pooling by argmax, no '
                f'class token) are supported, got pool_type={pool_type!r}')
        if getattr(src, 'attn_mask', None) is None:
            raise NotImplementedError(
                'only causal text towers are supported (this arch sets '
                'no_causal_mask)')
        if output_attn and not supports_attn_output(src.transformer):
            raise NotImplementedError(
                'output_attn needs nn.MultiheadAttention blocks; this arch '
                'uses custom attention blocks')
        if with_proj and src.text_projection is None:
            raise ValueError('with_proj=True but the arch has no text '
                             'projection')

        self.token_embedding = src.token_embedding
        self.positional_embedding = src.positional_embedding
        self.transformer = src.transformer
        self.ln_final = src.ln_final
        # None unregisters the parameter: optimizers never see it.
        self.text_projection = src.text_projection if with_proj else None
        self.context_length = self.positional_embedding.shape[0]
        # Our own causal mask, passed to every block explicitly: open_clip's
        # Transformer.forward(x) without attn_mask is bidirectional.
        causal = torch.full((self.context_length, self.context_length),
                            float('-inf')).triu_(1)
        self.register_buffer('attn_mask', causal, persistent=False)

        self.with_proj = with_proj
        self.output_attn = output_attn
        self.frozen = frozen
        self.width = self.transformer.width
        if not with_proj:
            self.embed_dim = self.width
        elif isinstance(self.text_projection, nn.Linear):
            self.embed_dim = self.text_projection.out_features
        else:
            self.embed_dim = self.text_projection.shape[1]
        if frozen:
            freeze(self)
            self.train(False)

    def train(self, mode: bool = True) -> 'OpenCLIPTextTransformer':
        """Set train mode; a frozen tower stays in eval mode."""
        return super().train(mode and not self.frozen)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        if self.text_projection is None:
            return x
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(x)
        return x @ self.text_projection

    def encode_embeddings(self, x: torch.Tensor,
                          eot_index: torch.Tensor) -> torch.Tensor:
        """Encode token *embeddings* (prompt learning) to global features.

        CoOp / CLIP-ReID prompt learners replace some token embeddings by
        learnt vectors, so they enter the tower after ``token_embedding``
        (``docs/methods/ccaf.md`` §3): positional embedding, the causal
        transformer (mask passed explicitly), ``ln_final``, the EOT row,
        the projection.

        Args:
            x: ``B x L x width`` token embeddings, ``L <= context_length``.
            eot_index: ``B`` positions of the end-of-text token.

        Returns:
            ``B x embed_dim`` text features (not normalised).
        """
        length = x.shape[1]
        if length > self.context_length:
            raise ValueError(f'{length} embeddings but the tower has '
                             f'{self.context_length} positions')
        x = x + self.positional_embedding[:length].to(x.dtype)
        x, _ = run_transformer(
            self.transformer, x, attn_mask=self.attn_mask[:length, :length])
        rows = torch.arange(x.shape[0], device=x.device)
        return self._project(self.ln_final(x[rows, eot_index]))

    def forward(self, text: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Encode tokenised texts.

        Args:
            text: ``B x L`` token ids from open_clip's tokenizer
                (``<start_of_text> ... <end_of_text>``, 0-padded), with
                ``L <= context_length``; shorter inputs use the first ``L``
                positional embeddings.

        Returns:
            dict: ``'global'`` ``B x D`` (the EOT token, at
            ``text.argmax(-1)``), ``'tokens'`` ``B x L x D`` (every
            position), ``'mask'`` ``B x L`` bool (True on real tokens,
            <start_of_text> included), and with ``output_attn`` ``'attn'``
            ``B x L``: the EOT query's last-layer attention, averaged over
            heads (zero after the EOT, by the causal mask).
        """
        if text.dim() != 2:
            raise ValueError(f'text must be B x L token ids, got shape '
                             f'{tuple(text.shape)}')
        length = text.shape[1]
        if length > self.context_length:
            raise ValueError(f'text has {length} tokens but the tower has '
                             f'{self.context_length} positions; tokenize with '
                             f'context_length<={self.context_length}')
        rows = torch.arange(text.shape[0], device=text.device)
        eot = text.argmax(dim=-1)
        x = self.token_embedding(text)
        x = x + self.positional_embedding[:length].to(x.dtype)
        x, attn = run_transformer(
            self.transformer,
            x,
            attn_mask=self.attn_mask[:length, :length],
            return_last_attn=self.output_attn,
            attn_query=eot)
        tokens = self._project(self.ln_final(x))
        mask = text != PAD_ID
        mask[:, 0] = True
        out = {'global': tokens[rows, eot], 'tokens': tokens, 'mask': mask}
        if self.output_attn:
            out['attn'] = attn
        return out
