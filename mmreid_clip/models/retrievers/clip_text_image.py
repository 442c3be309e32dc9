"""The CLIP text-image ReID baseline: two encoders, global features."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample

from mmreid_clip.models.utils import compile_submodules
from mmreid_clip.registry import MODELS


def pids_from_samples(data_samples: Sequence[DataSample],
                      device: torch.device) -> torch.Tensor:
    """The identity labels (``gt_label``) of a batch as a 1-D LongTensor."""
    if not data_samples or 'gt_label' not in data_samples[0]:
        raise ValueError('training needs data samples with gt_label (the '
                         'identity); is the dataset split "train"?')
    return torch.cat([s.gt_label for s in data_samples]).to(device)


def assign_features(data_samples: List[DataSample],
                    img_feats: Optional[torch.Tensor],
                    text_feats: Optional[torch.Tensor]) -> List[DataSample]:
    """Attach ``img_feat``/``text_feat`` to the samples, in item order.

    ``text_image_collate`` stacks the images (texts) of the items that have
    one, in item order, so the k-th image row belongs to the k-th sample
    with ``has_image``.
    """
    feats = dict(img_feat=img_feats, text_feat=text_feats)
    flags = dict(img_feat='has_image', text_feat='has_text')
    for key, rows in feats.items():
        owners = [s for s in data_samples if s.metainfo.get(flags[key])]
        n_rows = 0 if rows is None else rows.size(0)
        if len(owners) != n_rows:
            raise ValueError(f'{n_rows} {key} rows for {len(owners)} samples '
                             f'with {flags[key]}: batch and data samples '
                             'disagree (check the collate function)')
        for sample, row in zip(owners, rows if rows is not None else []):
            # clone: a view would pickle (and gather) the whole batch tensor
            sample.set_field(row.detach().clone(), key)
    return data_samples


@MODELS.register_module()
class CLIPTextImageReID(BaseModel):
    """Text-to-image person retrieval with CLIP's two towers.

    The reference every method in the zoo is compared with (IRRA's "CLIP
    ViT-B/16 fine-tuned" baseline): the image tower's CLS feature and the
    text tower's EOT feature, L2-normalised, compared by cosine. Training
    sums the configured pairwise losses (e.g. :class:`SDMLoss`,
    :class:`InfoNCELoss`) and an optional identity head.

    Args:
        image_encoder (dict): Config of the image backbone; its output dict
            has a ``global`` entry (``docs/design.md``).
        text_encoder (dict): Config of the text backbone.
        losses (list[dict]): Pairwise losses called as
            ``loss(img_feats, text_feats, pids)``; each has a ``loss_name``.
        id_head (dict, optional): An identity head with a ``loss`` method,
            e.g. :class:`SharedIDHead`. Defaults to None.
        data_preprocessor (dict, optional): Defaults to
            :class:`TextImageDataPreprocessor`.
        init_cfg (dict, optional): Defaults to None.
        compile_encoders (dict, optional): ``torch.compile`` keyword
            arguments for the image and text encoders (compiled in place,
            checkpoints unchanged; see :func:`compile_submodules`). None
            (default) runs them eagerly.
    """

    def __init__(self,
                 image_encoder: dict,
                 text_encoder: dict,
                 losses: Sequence[dict] = (dict(type='SDMLoss'), ),
                 id_head: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 compile_encoders: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='TextImageDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.image_encoder = MODELS.build(image_encoder)
        self.text_encoder = MODELS.build(text_encoder)
        compile_submodules(self, compile_encoders)
        self.losses = nn.ModuleList(MODELS.build(cfg) for cfg in losses)
        names = [loss.loss_name for loss in self.losses]
        if len(set(names)) != len(names):
            raise ValueError(f'loss names must be unique, got {names}')
        self.id_head = MODELS.build(id_head) if id_head else None

    def extract_img_feat(self, images: torch.Tensor) -> torch.Tensor:
        """Global image features (not normalised), B x D."""
        return self.image_encoder(images)['global']

    def extract_text_feat(self, texts: torch.Tensor) -> torch.Tensor:
        """Global text features (not normalised), B x D."""
        return self.text_encoder(texts)['global']

    def extract_feat(self, inputs: Dict[str, torch.Tensor]
                     ) -> Dict[str, Optional[torch.Tensor]]:
        """Features of whatever modalities ``inputs`` holds."""
        images, texts = inputs.get('images'), inputs.get('texts')
        return dict(
            img_feats=None if images is None else self.extract_img_feat(
                images),
            text_feats=None if texts is None else self.extract_text_feat(
                texts))

    def forward(self,
                inputs: Dict[str, torch.Tensor],
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor') -> Union[dict, List[DataSample]]:
        """Run in one of mmengine's three modes.

        Args:
            inputs (dict): ``images`` and/or ``texts`` (preprocessed).
            data_samples (list[DataSample], optional): One per item.
            mode (str): ``'tensor'`` returns the raw feature dict,
                ``'loss'`` a dict of losses, ``'predict'`` the data samples
                with L2-normalised ``img_feat``/``text_feat`` attached.
        """
        if mode == 'tensor':
            return self.extract_feat(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'invalid mode {mode!r}: use tensor, loss or '
                         'predict')

    def loss(self, inputs: Dict[str, torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Losses on a batch of (image, caption) pairs."""
        if 'images' not in inputs or 'texts' not in inputs:
            raise ValueError('training needs (image, caption) pairs: the '
                             'batch lacks ' +
                             ('images' if 'images' not in inputs else
                              'texts'))
        feats = self.extract_feat(inputs)
        img, txt = feats['img_feats'], feats['text_feats']
        if img.size(0) != txt.size(0):
            raise ValueError(f'{img.size(0)} images for {txt.size(0)} '
                             'captions: training items must be pairs')
        pids = pids_from_samples(data_samples, img.device)
        losses = {
            loss.loss_name: loss(img, txt, pids)
            for loss in self.losses
        }
        if self.id_head is not None:
            losses[self.id_head.loss_name] = self.id_head.loss(img, txt, pids)
        return losses

    def predict(self, inputs: Dict[str, torch.Tensor],
                data_samples: List[DataSample]) -> List[DataSample]:
        """Attach L2-normalised features to the data samples."""
        feats = self.extract_feat(inputs)
        img, txt = feats['img_feats'], feats['text_feats']
        return assign_features(
            data_samples, None if img is None else F.normalize(img, dim=-1),
            None if txt is None else F.normalize(txt, dim=-1))
