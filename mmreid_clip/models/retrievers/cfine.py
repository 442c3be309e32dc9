"""CFine: CLIP-driven fine-grained text-image person re-identification."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample

from mmreid_clip.models.utils import compile_submodules
from mmreid_clip.registry import MODELS
from .clip_text_image import assign_features, pids_from_samples


@MODELS.register_module()
class CFine(BaseModel):
    """CFine (Yan et al., IEEE TIP 2023), assembled from registry parts.

    arXiv 2210.10276; ``docs/methods/cfine.md`` §1 (sections below are of
    that page): token-level image and text encoders that return last-layer
    attention; the ``neck`` (:class:`MGF`) selects the most attended tokens
    and builds the multi-grained, BN-necked levels; ``cfr`` (S_c, §5) and
    ``fcd`` (S_f, §6) are training-only similarity matrices whose sum feeds
    the ``sim_losses`` (the triplet ranking loss, §7.4); ``losses`` (CMPM,
    CMPC, diversity, §7.1-7.3) act on the levels. Inference (§9) runs the
    encoders and the neck only and returns
    ``L2norm(concat(levels))``.

    Every part is a config entry, so the ablations of cfine.md §10 are config
    changes: ``neck=dict(type='MGF', num_groups=0)`` is the baseline (BN on
    the global features), ``cfr=None`` / ``fcd=None`` drop a module.

    Args:
        image_encoder (dict): Image backbone config; must return ``tokens``
            and, when the neck selects tokens, ``attn``
            (``with_proj=False, output_attn=True`` for the open_clip tower).
        text_encoder (dict): Text backbone config (BERT, or open_clip's
            text tower for the "CFine-CLIPtext" variant).
        neck (dict): The MGF neck.
        cfr (dict, optional): Cross-grained refinement, S_c. Defaults to
            None.
        fcd (dict, optional): Fine-grained correspondence discovery, S_f.
            Defaults to None.
        losses (Sequence[dict]): Level losses, called as
            ``loss(img_levels, text_levels, pids)`` (B x L x W each).
        sim_losses (Sequence[dict]): Losses on S = S_c + S_f, called as
            ``loss(S, pids)``; need ``cfr`` or ``fcd``.
        text_global (str): Where the text global token is: ``'cls'``
            (position 0, BERT) or ``'eot'`` (the argmax id, CLIP's text
            tower; cfine.md §2). Defaults to 'cls'.
        data_preprocessor (dict, optional): Defaults to
            :class:`TextImageDataPreprocessor` with the ImageNet statistics
            the official code uses (cfine.md §2).
        init_cfg (dict, optional): Defaults to None.
        compile_encoders (dict, optional): ``torch.compile`` keyword
            arguments for the image and text encoders (compiled in place,
            checkpoints unchanged; see :func:`compile_submodules`). None
            (default) runs them eagerly.
    """

    def __init__(self,
                 image_encoder: dict,
                 text_encoder: dict,
                 neck: dict,
                 cfr: Optional[dict] = None,
                 fcd: Optional[dict] = None,
                 losses: Sequence[dict] = (),
                 sim_losses: Sequence[dict] = (),
                 text_global: str = 'cls',
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 compile_encoders: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(
                type='TextImageDataPreprocessor',
                mean=(123.675, 116.28, 103.53),
                std=(58.395, 57.12, 57.375))
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if text_global not in ('cls', 'eot'):
            raise ValueError(f"text_global must be 'cls' or 'eot', got "
                             f'{text_global!r}')
        self.text_global = text_global
        self.image_encoder = MODELS.build(image_encoder)
        self.text_encoder = MODELS.build(text_encoder)
        compile_submodules(self, compile_encoders)
        self.neck = MODELS.build(neck)
        self.cfr = MODELS.build(cfr) if cfr else None
        self.fcd = MODELS.build(fcd) if fcd else None
        self.losses = nn.ModuleList(MODELS.build(c) for c in losses)
        self.sim_losses = nn.ModuleList(MODELS.build(c) for c in sim_losses)
        needs_selection = self.cfr is not None or self.fcd is not None
        if needs_selection and self.neck.num_groups == 0:
            raise ValueError('CFR and FCD work on selected tokens: they need '
                             'a neck with num_groups > 0')
        if self.sim_losses and not needs_selection:
            raise ValueError('sim_losses need cfr and/or fcd to build S')
        names = [m.loss_name for m in (*self.losses, *self.sim_losses)]
        if len(set(names)) != len(names):
            raise ValueError(f'loss names must be unique, got {names}')

    def encode_image(self, images: torch.Tensor) -> dict:
        """Backbone tokens + attention through the neck's image branch."""
        out = self.image_encoder(images)
        return self.neck.forward_image(out['tokens'], out.get('attn'))

    def encode_text(self, texts: torch.Tensor) -> dict:
        """Backbone tokens + attention through the neck's text branch."""
        out = self.text_encoder(texts)
        index = texts.argmax(dim=-1) if self.text_global == 'eot' else None
        return self.neck.forward_text(
            out['tokens'], out.get('attn'), out.get('mask'), index)

    def extract_feat(self, inputs: Dict[str, torch.Tensor]
                     ) -> Dict[str, Optional[torch.Tensor]]:
        """Retrieval features (cfine.md §9): L2norm of the concatenated levels.

        Only the encoders and the neck run; CFR and FCD never do.
        """
        images, texts = inputs.get('images'), inputs.get('texts')
        feat = self.neck.inference_feature
        return dict(
            img_feats=None if images is None else feat(
                self.encode_image(images)['levels']),
            text_feats=None if texts is None else feat(
                self.encode_text(texts)['levels']))

    def similarity(self, img: dict, txt: dict) -> torch.Tensor:
        """S = S_c + S_f (B x B, rows = images) from the neck outputs."""
        sim = 0.
        isel, tsel = img['selection'], txt['selection']
        if self.cfr is not None:
            sim = sim + self.cfr(img['global'], isel.union, txt['global'],
                                 tsel.union, isel.union_valid,
                                 tsel.union_valid)
        if self.fcd is not None:
            sim = sim + self.fcd(isel.group1, tsel.group1,
                                 isel.group_valid(0), tsel.group_valid(0))
        return sim

    def forward(self,
                inputs: Dict[str, torch.Tensor],
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor') -> Union[dict, List[DataSample]]:
        """``'tensor'``: features; ``'loss'``: losses; ``'predict'``:
        samples with ``img_feat``/``text_feat``."""
        if mode == 'tensor':
            return self.extract_feat(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            feats = self.extract_feat(inputs)
            return assign_features(data_samples, feats['img_feats'],
                                   feats['text_feats'])
        raise ValueError(f'invalid mode {mode!r}: use tensor, loss or '
                         'predict')

    def loss(self, inputs: Dict[str, torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """cfine.md §7.5: level losses + the triplet loss on S_c + S_f."""
        if 'images' not in inputs or 'texts' not in inputs:
            raise ValueError('training needs (image, caption) pairs')
        img = self.encode_image(inputs['images'])
        txt = self.encode_text(inputs['texts'])
        pids = pids_from_samples(data_samples, img['levels'].device)
        losses = {
            m.loss_name: m(img['levels'], txt['levels'], pids)
            for m in self.losses
        }
        if self.sim_losses:
            sim = self.similarity(img, txt)
            losses.update({m.loss_name: m(sim, pids) for m in self.sim_losses})
        return losses
