"""CLIP-ReID and CCAF: image ReID with CLIP and learnt text prompts."""
from typing import Dict, List, Optional, Sequence, Set

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapperDict
from mmpretrain.structures import DataSample

from mmreid_clip.models.utils import compile_submodules
from mmreid_clip.registry import MODELS


def _meta_tensor(samples: Sequence[DataSample],
                 key: str,
                 device: torch.device,
                 upper: Optional[int] = None) -> torch.Tensor:
    """A metainfo field of every sample as a LongTensor on ``device``.

    ``upper``: the values must be in ``[0, upper)``, checked on the host
    values before they reach the device (no synchronisation).
    """
    try:
        values = [int(s.metainfo[key]) for s in samples]
    except KeyError:
        raise KeyError(f'data samples lack {key!r}; is the dataset a '
                       'cloth-changing ReID dataset packed with '
                       'PackReIDInputs?') from None
    if upper is not None and values and not 0 <= min(values) <= max(
            values) < upper:
        raise ValueError(
            f'{key} values {min(values)}..{max(values)} outside [0, '
            f'{upper}): training ids must be the contiguous ids of the '
            'training split (check num_classes / num_clothes)')
    return torch.tensor(values, dtype=torch.long, device=device)


@MODELS.register_module()
class CLIPReID(BaseModel):
    """CLIP-ReID (Li et al., AAAI 2023), optionally with CCAF's IFP and CFM.

    Assembly only (arXiv 2211.13977; ``docs/methods/ccaf.md`` §1-§2): an image
    encoder returning
    ``f11``/``f12``/``fp`` (:class:`OpenCLIPReIDVisionTransformer`), a
    frozen text tower, a BNNeck head, per-identity prompts, the losses,
    and the optional training-only modules ``ifp`` (:class:`IFP`) and
    ``cfm`` (:class:`CFM`). Without them this is the CLIP-ReID baseline.
    Training follows the two stages of :class:`TwoStageEpochBasedTrainLoop`:

    * stage 1 (ccaf.md §4): frozen towers; identity prompts learn on cached
      ``fp`` features with SupCon i2t + t2i (τ = 1, unnormalised), on raw
      images, or on shielding images with IFP (GCATP); with CFM the
      clothes prompts learn on clothes-only images.
    * stage 2 (ccaf.md §5, §7, §8), per iteration:
      ``0.25·L_ID + L_Tri + L_I2T [+ IFP terms] [+ λ_CFM·L_CFM]`` steps the
      ``'encoder'`` optimizer; with CFM the ``'clothes_prompt'`` optimizer
      first takes the examine step on detached features.

    Inference (ccaf.md §10): the image encoder only; feature
    ``concat(f12, fp)`` before BN, L2-normalised (``test_feat_keys``).
    ``test_neck='after'`` takes the BNNeck outputs instead (CLIP-ReID's and
    fast-reid's ``TEST.NECK_FEAT``), which also runs the head's BN layers
    (not its classifiers) at inference.

    Args:
        image_encoder: Config of the image backbone.
        text_encoder: Config of the text tower (always frozen here).
        head: Config of the BNNeck head (``num_classes`` filled in).
        num_classes: Training identities.
        num_clothes: Training clothes labels (needed by CFM).
        id_prompt: Config of the identity :class:`PromptLearner`.
        stage1_loss: SupCon loss config (stage 1).
        id_loss: Classification loss applied to each head classifier and
            summed (CLIP-ReID: label smoothing 0.1, weight 0.25).
        triplet_loss: Metric loss applied to each of ``triplet_keys``.
        triplet_keys: Pre-BN features for the triplet loss.
        i2t_loss: Loss on ``fp · T_idᵀ`` (CLIP-ReID: label-smoothed CE).
        ifp: Config of :class:`IFP` or None.
        cfm: Config of :class:`CFM` or None.
        test_feat_keys: Backbone features concatenated at inference.
        test_neck: ``'before'`` (the paper's, default) or ``'after'`` the
            BNNeck for the inference feature.
        cache_with_sie: Whether the stage-1 feature cache adds the SIE
            camera embedding (when SIE is on). False (default) is the
            official code's: its stage 1 calls the image encoder without
            camera ids, so the prompts learn on camera-free features;
            True encodes the cache as stage 2 and inference do.
        data_preprocessor: Config of the data preprocessor.
        init_cfg: mmengine init config.
        compile_encoders: ``torch.compile`` keyword
            arguments for the image and text encoders (compiled in place,
            checkpoints unchanged; see :func:`compile_submodules`). None
            (default) runs them eagerly.
    """

    def __init__(self,
                 image_encoder: dict,
                 text_encoder: dict,
                 head: dict,
                 num_classes: int,
                 num_clothes: Optional[int] = None,
                 id_prompt: dict = dict(
                     type='PromptLearner',
                     template='A photo of a {} person.',
                     num_ctx=4),
                 stage1_loss: dict = dict(type='SupConLoss'),
                 id_loss: dict = dict(
                     type='LabelSmoothCrossEntropyLoss',
                     label_smooth_val=0.1,
                     loss_weight=0.25),
                 triplet_loss: dict = dict(
                     type='BatchHardTripletLoss', margin=0.3,
                     loss_weight=1.0),
                 triplet_keys: Sequence[str] = ('f11', 'f12', 'fp'),
                 i2t_loss: dict = dict(
                     type='LabelSmoothCrossEntropyLoss',
                     label_smooth_val=0.1,
                     loss_weight=1.0),
                 ifp: Optional[dict] = None,
                 cfm: Optional[dict] = None,
                 test_feat_keys: Sequence[str] = ('f12', 'fp'),
                 test_neck: str = 'before',
                 cache_with_sie: bool = False,
                 data_preprocessor: Optional[dict] = dict(
                     type='ReIDDataPreprocessor'),
                 init_cfg: Optional[dict] = None,
                 compile_encoders: Optional[dict] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.image_encoder = MODELS.build(image_encoder)
        text_encoder = dict(text_encoder)
        text_encoder['frozen'] = True
        self.text_encoder = MODELS.build(text_encoder)
        compile_submodules(self, compile_encoders)
        self.head = MODELS.build(head, default_args=dict(
            num_classes=num_classes))
        missing = set(test_feat_keys) - set(getattr(self.head, 'keys', ()))
        if test_neck == 'after' and missing:
            raise ValueError(f"test_neck='after' needs a BNNeck for every "
                             f'test feature; the head has none for '
                             f'{sorted(missing)}')
        self.id_prompt = MODELS.build(
            id_prompt,
            default_args=dict(
                num_classes=num_classes, text_encoder=self.text_encoder))
        self.stage1_loss = MODELS.build(stage1_loss)
        self.id_loss = MODELS.build(id_loss)
        self.triplet_loss = MODELS.build(triplet_loss)
        self.i2t_loss = MODELS.build(i2t_loss)
        self.triplet_keys = tuple(triplet_keys)
        self.test_feat_keys = tuple(test_feat_keys)
        if test_neck not in ('before', 'after'):
            raise ValueError(f"test_neck must be 'before' or 'after', got "
                             f'{test_neck!r}')
        self.test_neck = test_neck
        self.cache_with_sie = cache_with_sie
        self.num_classes = num_classes
        self.num_clothes = num_clothes
        self.ifp = MODELS.build(ifp) if ifp else None
        if cfm:
            if not num_clothes:
                raise ValueError('CFM needs num_clothes (the number of '
                                 'training clothes labels)')
            visual = getattr(self.image_encoder, 'visual', None)
            self.cfm = MODELS.build(
                cfm,
                default_args=dict(
                    num_clothes=num_clothes,
                    text_encoder=self.text_encoder,
                    feat_dims=dict(
                        f11=getattr(self.image_encoder, 'width', None),
                        f12=getattr(self.image_encoder, 'width', None)),
                    # f12 @ proj = fp: the adapters start as CLIP's map
                    init_proj=getattr(visual, 'proj', None)))
        else:
            self.cfm = None
        if num_clothes:
            # which clothes labels each identity wears; saved in checkpoints
            self.register_buffer(
                'pid2clothes',
                torch.zeros(num_classes, num_clothes, dtype=torch.bool))
        else:
            self.pid2clothes = None
        self._t_id: Optional[torch.Tensor] = None
        self._u_cache: Optional[torch.Tensor] = None
        self._stage2_epoch = 0
        self._stage2_iter = 0

    # ------------------------------------------------------------ set-up

    @property
    def use_camids(self) -> bool:
        return getattr(self.image_encoder, 'sie_embed', None) is not None

    def set_train_metainfo(self, metainfo: dict) -> None:
        """Check the config against the training set; take ``pid2clothes``.

        Raises:
            ValueError: ``num_classes``/``num_clothes`` differ from the
                training set's.
        """
        n_pid = metainfo.get('num_pids')
        if n_pid is not None and int(n_pid) != self.num_classes:
            raise ValueError(
                f'model num_classes={self.num_classes} but the training set '
                f'has {n_pid} identities; set model.num_classes={n_pid}')
        if self.num_clothes:
            n_clo = metainfo.get('num_clothes')
            p2c = metainfo.get('pid2clothes')
            if n_clo is not None and int(n_clo) != self.num_clothes:
                raise ValueError(
                    f'model num_clothes={self.num_clothes} but the training '
                    f'set has {n_clo} clothes labels; set '
                    f'model.num_clothes={n_clo}')
            if n_clo is None or p2c is None:
                raise ValueError('this model needs num_clothes and '
                                 'pid2clothes from the training set\'s '
                                 'metainfo (a cloth-changing dataset such as '
                                 'LTCC or PRCC provides them)')
            p2c = torch.as_tensor(np.asarray(p2c, dtype=bool))
            if tuple(p2c.shape) != tuple(self.pid2clothes.shape):
                raise ValueError(f'pid2clothes has shape {tuple(p2c.shape)},'
                                 f' expected {tuple(self.pid2clothes.shape)}')
            self.pid2clothes.copy_(p2c)

    def stage1_views(self) -> Set[str]:
        """Input views whose frozen features stage 1 needs."""
        views = {self.ifp.prompt_view if self.ifp else 'images'}
        if self.cfm is not None:
            views.add('clothes_images')
        return views

    def _id_view(self) -> str:
        return self.ifp.prompt_view if self.ifp else 'images'

    @torch.no_grad()
    def cache_features(self, data: dict) -> Dict[str, torch.Tensor]:
        """Stage-1 cache rows of one batch: frozen ``fp`` of each view."""
        data = self.data_preprocessor(data, False)
        inputs, samples = data['inputs'], data['data_samples']
        device = next(iter(inputs.values())).device
        camids = (_meta_tensor(samples, 'camid', device)
                  if self.use_camids and self.cache_with_sie else None)
        # only an SIE encoder knows with_sie; others need not take it
        skip_sie = ({'with_sie': False}
                    if self.use_camids and not self.cache_with_sie else {})
        out = {'pids': _meta_tensor(samples, 'pid', device)}
        needed = {self._id_view(): 'feat_id'}
        if self.cfm is not None:
            needed['clothes_images'] = 'feat_clothes'
            out['clothes_ids'] = _meta_tensor(samples, 'clothes_id', device)
        for view, key in needed.items():
            if view not in inputs:
                raise KeyError(
                    f'stage 1 needs the {view!r} view, the stage-1 '
                    f'dataloader gives {sorted(inputs)}; add ShieldClothes '
                    '(with clothes_img for CFM) to its pipeline')
            out[key] = self.image_encoder(inputs[view], camids,
                                          **skip_sie)['fp']
        return out

    @torch.no_grad()
    def begin_stage2(self, epoch: int = 0) -> None:
        """Freeze the identity prompts and precompute ``T_id`` (ccaf.md §5)."""
        self._stage2_epoch = epoch
        if self._t_id is not None:
            return
        self.id_prompt.ctx.requires_grad_(False)
        was_training = self.text_encoder.training
        self.text_encoder.eval()
        self._t_id = self.id_prompt(self.text_encoder, chunk_size=64)
        self.text_encoder.train(was_training)

    # ------------------------------------------------------------ steps

    def train_step(self, data: dict,
                   optim_wrapper: OptimWrapperDict) -> Dict[str, torch.Tensor]:
        """One iteration of stage 1 (cached-feature batch) or stage 2."""
        if not isinstance(optim_wrapper, OptimWrapperDict):
            raise TypeError(
                f'{type(self).__name__} trains with several optimizers; use '
                'optim_wrapper=dict('
                "constructor='MultiOptimWrapperConstructor', prompt=..., "
                'encoder=...[, clothes_prompt=...])')
        if data.get('stage') == 1:
            return self._stage1_step(data, optim_wrapper['prompt'])
        return self._stage2_step(data, optim_wrapper)

    def _stage1_step(self, data: dict, ow) -> Dict[str, torch.Tensor]:
        device = self.id_prompt.ctx.device
        pids = data['pids'].to(device)
        feats = data['feat_id'].to(device)
        with ow.optim_context(self):
            text = self.id_prompt(self.text_encoder, pids)
            losses = {
                'loss_i2t_s1': self.stage1_loss(feats, text, pids, pids),
                'loss_t2i_s1': self.stage1_loss(text, feats, pids, pids),
            }
            if self.cfm is not None:
                losses['loss_clothes_s1'] = self.cfm.stage1_loss(
                    data['feat_clothes'].to(device),
                    data['clothes_ids'].to(device), self.text_encoder)
        parsed, log_vars = self.parse_losses(losses)
        ow.update_params(parsed)
        return log_vars

    def _encode(self, inputs: Dict[str, torch.Tensor],
                camids: Optional[torch.Tensor], with_shield: bool):
        raw = inputs['images']
        if with_shield:
            if 'shield_images' not in inputs:
                raise KeyError('IFP needs the shield_images view; add '
                               'ShieldClothes to the train pipeline')
            x = torch.cat([raw, inputs['shield_images']])
            cams = None if camids is None else torch.cat([camids, camids])
        else:
            x, cams = raw, camids
        feats = self.image_encoder(x, cams)
        b = raw.shape[0]
        raw_stats = with_shield and self.ifp.bn_stats == 'raw'
        feats.update(self.head(feats, stats_rows=b if raw_stats else None))
        raw_out = {k: v[:b] for k, v in feats.items()}
        shield_out = ({k: v[b:] for k, v in feats.items()}
                      if with_shield else None)
        return raw_out, shield_out

    def _id_loss(self, out: Dict[str, torch.Tensor],
                 pids: torch.Tensor) -> torch.Tensor:
        return sum(
            self.id_loss(out[f'logits_{k}'], pids) for k in self.head.keys)

    def _triplet_loss(self, out: Dict[str, torch.Tensor],
                      pids: torch.Tensor) -> torch.Tensor:
        return sum(self.triplet_loss(out[k], pids) for k in self.triplet_keys)

    def _i2t_loss(self, fp: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        if self._t_id is None:
            raise RuntimeError('T_id is not computed: call begin_stage2() '
                               '(TwoStageEpochBasedTrainLoop does) first')
        return self.i2t_loss(fp @ self._t_id.t(), pids)

    def loss(self, inputs: Dict[str, torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Stage-2 encoder losses (no optimizer step; CFM step B only)."""
        losses, _ = self._stage2_losses(inputs, data_samples)
        return losses

    def _stage2_losses(self, inputs, data_samples):
        device = inputs['images'].device
        pids = _meta_tensor(data_samples, 'pid', device,
                            upper=self.num_classes)
        camids = (_meta_tensor(data_samples, 'camid', device)
                  if self.use_camids else None)
        with_shield = self.ifp is not None and self.ifp.needs_shield_branch
        raw, shield = self._encode(inputs, camids, with_shield)
        self.begin_stage2(self._stage2_epoch)
        losses = {
            'loss_id': self._id_loss(raw, pids),
            'loss_tri': self._triplet_loss(raw, pids),
            'loss_i2t': self._i2t_loss(raw['fp'], pids),
        }
        if self.ifp is not None:
            losses.update(
                self.ifp.loss(raw, shield, pids, self._id_loss,
                              self._triplet_loss, self._i2t_loss))
        return losses, raw

    def _cfm_active(self) -> bool:
        return (self.cfm is not None
                and self._stage2_epoch >= self.cfm.start_epoch)

    def _stage2_step(
            self, data: dict,
            optim_wrapper: OptimWrapperDict) -> Dict[str, torch.Tensor]:
        data = self.data_preprocessor(data, True)
        inputs, samples = data['inputs'], data['data_samples']
        enc = optim_wrapper['encoder']
        extra_logs = {}
        with enc.optim_context(self):
            losses, raw = self._stage2_losses(inputs, samples)
        if self._cfm_active():
            device = inputs['images'].device
            clothes = _meta_tensor(samples, 'clothes_id', device,
                                   upper=self.num_clothes)
            pids = _meta_tensor(samples, 'pid', device)
            feats = {k: raw[k] for k in self.cfm.feature_keys}
            refresh = (self._u_cache is None
                       or self._stage2_iter % self.cfm.examine_every == 0)
            if refresh:
                clo = optim_wrapper['clothes_prompt']
                self._check_examiner_owns_adapters(clo)
                for _ in range(self.cfm.inner_steps):
                    with clo.optim_context(self.cfm):
                        u = self.cfm.clothes_features(self.text_encoder)
                        loss_clo = self.cfm.examine_loss(feats, clothes, u)
                    clo.update_params(loss_clo)
                    extra_logs['loss_clothes_examine'] = loss_clo.detach()
                if self.cfm.adversary == 'post':
                    # CAL: the adversary scores against the updated examiner
                    with torch.no_grad():
                        u = self.cfm.clothes_features(self.text_encoder)
                self._u_cache = u.detach()
            with enc.optim_context(self):
                losses['loss_cfm'] = self.cfm.minimise_loss(
                    feats, clothes, pids, self._u_cache, self.pid2clothes)
        self._stage2_iter += 1
        parsed, log_vars = self.parse_losses(losses)
        enc.update_params(parsed)
        log_vars.update(extra_logs)
        return log_vars

    def _check_examiner_owns_adapters(self, clo) -> None:
        """CFM adapters must be stepped by the examiner's optimizer."""
        adapters = list(self.cfm.adapters.parameters())
        if not adapters:
            return
        owned = {id(p) for g in clo.optimizer.param_groups
                 for p in g['params']}
        if any(id(p) not in owned for p in adapters):
            raise ValueError(
                f'CFM examines {self.cfm.feature_keys} through adapters that '
                "the examiner optimizer does not own: add 'cfm.adapters' to "
                'optim_wrapper.clothes_prompt.modules')

    # ------------------------------------------------------------ inference

    def extract_img_feat(self, images: torch.Tensor,
                         camids: Optional[torch.Tensor] = None
                         ) -> torch.Tensor:
        """Retrieval feature (ccaf.md §10): normalised ``concat(f12, fp)``,
        before
        the BNNeck (or after it, with ``test_neck='after'``)."""
        feats = self.image_encoder(images, camids)
        if self.test_neck == 'after':
            bn = self.head(feats, with_logits=False)
            feats = {k: bn[f'bn_{k}'] for k in self.test_feat_keys}
        return F.normalize(
            torch.cat([feats[k] for k in self.test_feat_keys], dim=-1),
            dim=-1)

    def forward(self,
                inputs: Dict[str, torch.Tensor],
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """``'tensor'``: features; ``'predict'``: samples with ``img_feat``;
        ``'loss'``: the stage-2 encoder losses."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        images = inputs['images'] if isinstance(inputs, dict) else inputs
        camids = None
        if self.use_camids:
            if data_samples is None:
                raise ValueError('SIE is on: predict needs data samples '
                                 'with camid')
            camids = _meta_tensor(data_samples, 'camid', images.device)
        feats = self.extract_img_feat(images, camids)
        if mode == 'tensor':
            return feats
        if mode == 'predict':
            for sample, row in zip(data_samples, feats):
                sample.set_field(row.detach().clone(), 'img_feat')
            return data_samples
        raise ValueError(f'invalid mode {mode!r}')


@MODELS.register_module()
class CCAF(CLIPReID):
    """CCAF (Li et al., arXiv 2406.09198): CLIP-ReID + IFP + CFM.

    arXiv 2406.09198; ``docs/methods/ccaf.md``: the CLIP-ReID baseline
    (:class:`CLIPReID`) with the
    training-only modules IFP (shielding images, cloth-agnostic prompts,
    I2T/I2I) and CFM (clothes prompts, examine/minimise) on by default.
    Inference is the image encoder alone, exactly as CLIP-ReID's. Pass
    ``ifp=None`` or ``cfm=None`` for the ablation rows.
    """

    def __init__(self,
                 *args,
                 ifp: Optional[dict] = dict(type='IFP'),
                 cfm: Optional[dict] = dict(type='CFM'),
                 **kwargs) -> None:
        super().__init__(*args, ifp=ifp, cfm=cfm, **kwargs)
