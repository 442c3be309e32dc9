"""Per-class learnable text prompts (CoOp / CLIP-ReID style)."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmreid_clip.models.utils.value_checks import ValueCheck
from mmreid_clip.registry import MODELS


@MODELS.register_module()
class PromptLearner(BaseModule):
    """One learnt prompt per class: ``"A photo of a X1 .. XM person."``.

    arXiv 2211.13977; ``docs/methods/ccaf.md`` §3 (CLIP-ReID's prompt
    learner): the template is
    tokenised once; the embeddings of the tokens before the ``M``
    placeholders (``prefix``) and after them (``suffix``) are fixed
    buffers, and every class ``y`` owns ``M`` learnt vectors
    ``ctx[y] ∈ R^{M x width}`` (normal init, std 0.02) that replace the
    placeholders. The text tower encodes the spliced embeddings with its
    causal mask and pools at the end-of-text token:
    ``t_y = proj(ln_final(Transformer(E_y + pos))[eot])``, unnormalised.

    Used twice by CCAF: identity prompts (``"... person."``, one per
    training identity) and clothes prompts (``"... clothes."``, one per
    training clothes label).

    Args:
        num_classes: Number of prompts (identities or clothes labels).
        text_encoder: The text tower the prompts are written for (an
            :class:`OpenCLIPTextTransformer`); only its token embedding is
            read here, to build the fixed prefix/suffix. It is *not* stored,
            so the tower is owned (and frozen) by the retriever.
        template: Prompt text with one ``{}`` where the learnt tokens go.
        num_ctx: ``M``, learnt tokens per class.
        placeholder: A word that is a single BPE token, written ``M`` times
            into the template to find the positions to replace.
        init_std: Std of the normal initialisation of ``ctx``.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 num_classes: int,
                 text_encoder: nn.Module,
                 template: str = 'A photo of a {} person.',
                 num_ctx: int = 4,
                 placeholder: str = 'X',
                 init_std: float = 0.02,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self._value_check = ValueCheck()
        from mmreid_clip.datasets.tokenizers import OpenCLIPTokenizer
        if num_classes < 1 or num_ctx < 1:
            raise ValueError(f'num_classes ({num_classes}) and num_ctx '
                             f'({num_ctx}) must be >= 1')
        if template.count('{}') != 1:
            raise ValueError(f'template must hold exactly one "{{}}", got '
                             f'{template!r}')
        tokenizer = OpenCLIPTokenizer(
            context_length=text_encoder.context_length)
        ph_ids = tokenizer.encode(placeholder)
        if len(ph_ids) != 1:
            raise ValueError(f'placeholder {placeholder!r} is {len(ph_ids)} '
                             'BPE tokens; it must be exactly one')
        text = template.format(' '.join([placeholder] * num_ctx))
        ids = tokenizer(text, truncation='error')[0]
        hits = (ids == ph_ids[0]).nonzero().flatten()
        start = int(hits[0]) if hits.numel() else -1
        if hits.numel() != num_ctx or not torch.equal(
                hits, torch.arange(start, start + num_ctx)):
            raise ValueError(
                f'template {template!r} must put the {num_ctx} placeholders '
                f'next to each other and contain {placeholder!r} nowhere '
                'else')
        eot = int(ids.argmax())
        with torch.no_grad():
            # Only the positions up to the end-of-text token: under the
            # causal mask later (padding) positions cannot change the EOT
            # output, so dropping them is exact and ~6x cheaper for a
            # 12-token prompt in a 77-token context.
            embed = text_encoder.token_embedding(ids[None, :eot + 1])
            embed = embed.float()[0]
        # fixed, not learnt, and not in checkpoints: forward re-reads them
        # from the tower it is given, so weights loaded into the tower after
        # this constructor ran (a checkpoint, a converted release) are used
        self.register_buffer('template_ids', ids[:eot + 1].clone(),
                             persistent=False)
        self.register_buffer('prefix', embed[:start].clone(), persistent=False)
        self.register_buffer(
            'suffix', embed[start + num_ctx:].clone(), persistent=False)
        self.eot_index = eot
        self.ctx_start = start
        self.num_classes = num_classes
        self.num_ctx = num_ctx
        self.template = template
        self.ctx = nn.Parameter(
            torch.empty(num_classes, num_ctx, embed.shape[1]))
        nn.init.normal_(self.ctx, std=init_std)

    def forward(self,
                text_encoder: nn.Module,
                labels: Optional[torch.Tensor] = None,
                chunk_size: Optional[int] = None) -> torch.Tensor:
        """Text features of the prompts of ``labels`` (all classes if None).

        Args:
            text_encoder: The tower with ``encode_embeddings`` (frozen;
                gradients still reach ``ctx`` through it).
            labels: ``B`` class indices, or None for all classes in order.
            chunk_size: Encode at most this many prompts at a time (CLIP-ReID
                precomputes ``T_id`` in chunks of 64); None: one pass.

        Returns:
            ``B x embed_dim`` features (``num_classes`` rows for None).
        """
        ctx = self.ctx if labels is None else self.ctx[labels]
        checked = (labels is not None and labels.numel()
                   and self._value_check.due(labels))
        if checked and (int(labels.min()) < 0
                        or int(labels.max()) >= self.num_classes):
            raise ValueError(f'prompt labels must be in [0, '
                             f'{self.num_classes}), got {labels.tolist()}')
        self._refresh_template(text_encoder)
        n = ctx.shape[0]
        step = chunk_size or max(n, 1)
        outs = []
        for i in range(0, n, step):
            c = ctx[i:i + step]
            b = c.shape[0]
            x = torch.cat([
                self.prefix.to(c.dtype).expand(b, -1, -1), c,
                self.suffix.to(c.dtype).expand(b, -1, -1)
            ], dim=1)
            eot = torch.full((b, ), self.eot_index, device=c.device)
            outs.append(text_encoder.encode_embeddings(x, eot))
        if not outs:
            return self.ctx.new_zeros(0, text_encoder.embed_dim)
        return torch.cat(outs)

    @torch.no_grad()
    def _refresh_template(self, text_encoder: nn.Module) -> None:
        """Re-read ``prefix``/``suffix`` from the tower's token embedding
        (the tower is frozen; a lookup of the template's few tokens)."""
        embed = text_encoder.token_embedding(
            self.template_ids[None]).float()[0]
        start = self.ctx_start
        self.prefix = embed[:start].to(self.prefix)
        self.suffix = embed[start + self.num_ctx:].to(self.suffix)
