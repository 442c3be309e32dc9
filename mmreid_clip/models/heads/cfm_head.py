"""CFM: Clothes Feature Minimization (CCAF's negative path).

A head in mmpretrain's terms: it owns its losses, the clothes prompt learner
and the examiner's optimizer step (it was under ``models/necks/`` before).
"""
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmreid_clip.registry import MODELS

#: One feature (``fp``) or several by name (``feature_keys``).
Features = Union[torch.Tensor, Dict[str, torch.Tensor]]


@MODELS.register_module()
class CFM(BaseModule):
    """Clothes prompts examine the image features; the encoder forgets them.

    arXiv 2406.09198; ``docs/methods/ccaf.md`` §3, §4 and §8 (reconstructed
    choices: rows 7, 8, 11, 12 and 14 of its §12): one learnt
    prompt ``"A photo of a Z1..ZM clothes."`` per training clothes label
    (``clothes_prompt``, a :class:`PromptLearner`), encoded by the frozen
    text tower into ``U ∈ R^{N_clo x D}``.

    * Stage 1: the clothes prompts learn on the frozen features ``v^c`` of
      clothes-only images with SupCon i2t + t2i (:meth:`stage1_loss`).
    * Stage 2, step A "examine" (:meth:`examine_loss`):
      ``L_clo = CE(s · cos(fp.detach(), U), c)`` updates only the clothes
      prompt tokens (a separate optimizer).
    * Stage 2, step B "minimise" (:meth:`minimise_loss`), with ``U``
      detached: ``mode='adv'`` (default) the CAL-style multi-positive
      adversarial loss on ``z = s · cos(fp, U)`` (``adv_loss``, e.g.
      ``ClothesAdversarialLoss``): a person's clothes classes are scored
      only against other people's clothes, so the encoder unlearns what
      tells outfits apart; ``mode='proj'`` (variant B) pushes ``fp``
      orthogonal to its own clothes' text feature (``proj_loss``).

    Which features are examined (``feature_keys``): ``('fp',)`` (default)
    penalises clothes information in the projected feature only, which is
    in the text space of ``U``. The inference feature is ``[f12; fp]``;
    ``('f12', 'fp')`` also examines ``f12`` through an *adapter* per extra
    key, a linear map into the text space initialised with CLIP's visual
    projection (so ``f12 · adapter = fp`` at the start) and trained by the
    examiner with the clothes prompts (add ``'cfm.adapters'`` to the
    examiner optimizer's modules), so clothes information that ``f12``
    keeps outside what ``proj`` passes on is found and removed too.

    Which clothes features the adversary uses (``adversary``): ``'pre'``
    (default) the ``U`` computed in step A before the examiner's update,
    reused in step B (one text pass per iteration); ``'post'`` re-encodes
    ``U`` after the update, as CAL's adversary uses the freshly updated
    clothes classifier (one more text pass).

    Nothing of CFM runs at inference.

    Args:
        num_clothes: Training clothes labels (prompts).
        text_encoder: The text tower (to build the prompts' fixed parts;
            not stored).
        prompt: Config of the clothes :class:`PromptLearner` (without
            ``num_classes``/``text_encoder``).
        mode: ``'adv'`` or ``'proj'``.
        scale: ``s`` of the cosine logits (CAL: 16).
        stage1_loss: SupCon loss config for stage 1.
        examine_loss: Classification loss of step A (cross-entropy).
        adv_loss: Step-B loss for ``mode='adv'``.
        proj_loss: Step-B loss for ``mode='proj'``.
        start_epoch: First stage-2 epoch (0-based) with CFM (reconstructed
            choice, ccaf.md §12 row 12:
            0; 10 = after warm-up if unstable).
        examine_every: Run step A (and refresh ``U``) every this many
            iterations; in between ``U`` is reused (``cfm.examine_every``,
            ccaf.md §12 row 12, to save text-tower passes on datasets with
            thousands of
            clothes labels).
        inner_steps: Examiner updates per step A (the "iterative" reading
            of the paper, ccaf.md §12 row 12; default 1).
        feature_keys: Image features examined and minimised, see above.
        adversary: ``'pre'`` or ``'post'``, see above.
        feat_dims: Width of each image feature (given by the retriever);
            needed for keys other than ``'fp'``.
        init_proj: ``width x embed`` matrix initialising the adapters
            (the retriever gives CLIP's visual projection); None: xavier.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 num_clothes: int,
                 text_encoder: nn.Module,
                 prompt: dict = dict(
                     type='PromptLearner',
                     template='A photo of a {} clothes.',
                     num_ctx=4),
                 mode: str = 'adv',
                 scale: float = 16.0,
                 stage1_loss: dict = dict(type='SupConLoss'),
                 examine_loss: dict = dict(
                     type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
                 adv_loss: dict = dict(
                     type='ClothesAdversarialLoss', epsilon=0.1,
                     loss_weight=1.0),
                 proj_loss: dict = dict(
                     type='ClothesOrthogonalLoss', loss_weight=1.0),
                 start_epoch: int = 0,
                 examine_every: int = 1,
                 inner_steps: int = 1,
                 feature_keys: Sequence[str] = ('fp', ),
                 adversary: str = 'pre',
                 feat_dims: Optional[Dict[str, int]] = None,
                 init_proj: Optional[torch.Tensor] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if mode not in ('adv', 'proj'):
            raise ValueError(f"CFM mode must be 'adv' or 'proj', got "
                             f'{mode!r}')
        if examine_every < 1 or inner_steps < 1 or start_epoch < 0:
            raise ValueError('examine_every and inner_steps must be >= 1 '
                             'and start_epoch >= 0')
        self.clothes_prompt = MODELS.build(
            prompt,
            default_args=dict(
                num_classes=num_clothes, text_encoder=text_encoder))
        self.num_clothes = num_clothes
        self.mode = mode
        self.scale = scale
        self.stage1_loss_fn = MODELS.build(stage1_loss)
        self.examine_loss_fn = MODELS.build(examine_loss)
        self.step_b_loss_fn = MODELS.build(
            adv_loss if mode == 'adv' else proj_loss)
        self.start_epoch = start_epoch
        self.examine_every = examine_every
        self.inner_steps = inner_steps
        if adversary not in ('pre', 'post'):
            raise ValueError("CFM adversary must be 'pre' or 'post', got "
                             f'{adversary!r}')
        self.adversary = adversary
        self.feature_keys = tuple(feature_keys)
        if not self.feature_keys:
            raise ValueError('CFM feature_keys is empty')
        if mode == 'proj' and self.feature_keys != ('fp', ):
            raise ValueError("CFM mode='proj' works on 'fp' only")
        embed = getattr(text_encoder, 'embed_dim', None)
        self.adapters = nn.ModuleDict()
        for key in self.feature_keys:
            if key == 'fp':
                continue
            if not feat_dims or key not in feat_dims or embed is None:
                raise ValueError(
                    f'CFM feature {key!r} needs feat_dims[{key!r}] and the '
                    "text tower's embed_dim to build its adapter")
            adapter = nn.Linear(feat_dims[key], embed, bias=False)
            if init_proj is not None and tuple(init_proj.shape) == (
                    feat_dims[key], embed):
                with torch.no_grad():
                    adapter.weight.copy_(init_proj.t())
            else:
                nn.init.xavier_uniform_(adapter.weight)
            self.adapters[key] = adapter

    def clothes_features(self, text_encoder: nn.Module,
                         labels: Optional[torch.Tensor] = None
                         ) -> torch.Tensor:
        """``U``: text features of the clothes prompts (all, or ``labels``)."""
        return self.clothes_prompt(text_encoder, labels)

    def logits(self, feats: torch.Tensor, clothes_feats: torch.Tensor
               ) -> torch.Tensor:
        """``s · cos(f_i, u_k)``: ``B x N_clo``."""
        return self.scale * F.normalize(feats, dim=-1) @ F.normalize(
            clothes_feats, dim=-1).t()

    def stage1_loss(self, feats: torch.Tensor, clothes_ids: torch.Tensor,
                    text_encoder: nn.Module) -> torch.Tensor:
        """SupCon i2t + t2i between clothes-only features and prompts."""
        text = self.clothes_features(text_encoder, clothes_ids)
        return (self.stage1_loss_fn(feats, text, clothes_ids, clothes_ids) +
                self.stage1_loss_fn(text, feats, clothes_ids, clothes_ids))

    def _in_text_space(self, feats: Features,
                       detach_adapters: bool) -> Dict[str, torch.Tensor]:
        """The examined features, mapped into the text space of ``U``."""
        if torch.is_tensor(feats):
            feats = {'fp': feats}
        out = {}
        for key in self.feature_keys:
            if key not in feats:
                raise KeyError(f'CFM examines {key!r}; got {sorted(feats)}')
            if key == 'fp':
                out[key] = feats[key]
                continue
            weight = self.adapters[key].weight
            out[key] = F.linear(feats[key],
                                weight.detach() if detach_adapters else weight)
        return out

    def examine_loss(self, feats: Features, clothes_ids: torch.Tensor,
                     clothes_feats: torch.Tensor) -> torch.Tensor:
        """Step A: classify detached image features with the prompts (and
        the adapters), summed over ``feature_keys``."""
        if torch.is_tensor(feats):
            feats = {'fp': feats}
        mapped = self._in_text_space(
            {k: v.detach() for k, v in feats.items()}, False)
        return sum(
            self.examine_loss_fn(self.logits(f, clothes_feats), clothes_ids)
            for f in mapped.values())

    def minimise_loss(self, feats: Features, clothes_ids: torch.Tensor,
                      pids: torch.Tensor,
                      clothes_feats: torch.Tensor,
                      pid2clothes: torch.Tensor) -> torch.Tensor:
        """Step B: the encoder-side loss, prompts and adapters frozen for
        this step, summed over ``feature_keys``."""
        clothes_feats = clothes_feats.detach()
        mapped = self._in_text_space(feats, True)
        if self.mode == 'adv':
            return sum(
                self.step_b_loss_fn(
                    self.logits(f, clothes_feats), clothes_ids, pids,
                    pid2clothes) for f in mapped.values())
        return self.step_b_loss_fn(mapped['fp'], clothes_feats, clothes_ids)
