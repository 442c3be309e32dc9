"""Which model method a graph is taken from, and the module that wraps it.

:func:`has_text_branch` and the encoders find a model's image / text
feature method by the export contract of :mod:`.onnx_export` (its module
docstring) and wrap one modality as ``inputs -> L2-normalised features``.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    'IMAGE_EXPORT_METHODS', 'TEXT_EXPORT_METHODS', 'ImageFeatureEncoder',
    'TextFeatureEncoder', 'has_text_branch'
]

#: Model methods the image graph is taken from, in order of preference.
IMAGE_EXPORT_METHODS = ('encode_image_for_export', 'extract_img_feat')
#: Model methods the text graph is taken from, in order of preference.
TEXT_EXPORT_METHODS = ('encode_text_for_export', 'extract_text_feat')


def _extract_feat_fallback(model: nn.Module,
                           modality: str) -> Optional[Tuple[str, str]]:
    """(input key, output key) of ``extract_feat`` for ``modality``."""
    if not callable(getattr(model, 'extract_feat', None)):
        return None
    if modality == 'text' and getattr(model, 'text_encoder', None) is None:
        return None
    if modality == 'image':
        return 'images', 'img_feats'
    return 'texts', 'text_feats'


def _find_source(model: nn.Module, modality: str) -> Optional[str]:
    """Name of the feature source of ``modality`` (module docstring)."""
    methods = (
        IMAGE_EXPORT_METHODS if modality == 'image' else TEXT_EXPORT_METHODS)
    for name in methods:
        if callable(getattr(model, name, None)):
            return name
    keys = _extract_feat_fallback(model, modality)
    if keys is not None:
        return f"extract_feat({{'{keys[0]}': ...}})['{keys[1]}']"
    return None


def has_text_branch(model: nn.Module) -> bool:
    """Whether the model has a text encoder the exporter can reach."""
    return _find_source(model, 'text') is not None


class _FeatureEncoder(nn.Module):
    """One modality of ``model`` as ``inputs -> L2-normalised features``."""

    modality = ''

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        source = _find_source(model, self.modality)
        if source is None:
            methods = (
                IMAGE_EXPORT_METHODS
                if self.modality == 'image' else TEXT_EXPORT_METHODS)
            raise TypeError(
                f'{type(model).__name__} has no {self.modality} feature '
                f'method to export: define one of {", ".join(methods)} or '
                f'extract_feat (see mmreid_clip/deploy/onnx_export.py)')
        self.model = model
        self.source = source

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if not self.source.startswith('extract_feat('):
            feats = getattr(self.model, self.source)(x)
        else:
            in_key, out_key = _extract_feat_fallback(self.model, self.modality)
            out = self.model.extract_feat({in_key: x})
            feats = out.get(out_key) if isinstance(out, dict) else None
            if feats is None:
                raise TypeError(
                    f'{type(self.model).__name__}.extract_feat did not '
                    f'return a dict with {out_key!r}')
        if not isinstance(feats, torch.Tensor) or feats.dim() != 2:
            raise TypeError(
                f'{type(self.model).__name__}.{self.source} must return a '
                f'B x D tensor, got '
                f'{getattr(feats, "shape", type(feats).__name__)}')
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # predict L2-normalises with F.normalize's defaults; so do we
        return F.normalize(self._features(x), dim=-1)


class ImageFeatureEncoder(_FeatureEncoder):
    """``images -> img_feat`` of a model, the module the image graph holds.

    Args:
        model (nn.Module): The retriever / ReID model, in eval mode.
        with_preprocessor (bool): Run the model's data preprocessor first,
            so the graph takes images as the data pipeline packs them
            (``B x 3 x H x W`` uint8, BGR for mmcv's loader) instead of
            normalised float32 images. Defaults to False.

    Call ``encoder(images)`` -> ``B x D`` unit-norm features.
    """

    modality = 'image'

    def __init__(self,
                 model: nn.Module,
                 with_preprocessor: bool = False) -> None:
        super().__init__(model)
        self.with_preprocessor = with_preprocessor
        if with_preprocessor and getattr(model, 'data_preprocessor',
                                         None) is None:
            raise TypeError(f'{type(model).__name__} has no data_preprocessor'
                            ' to put in the graph')

    def _preprocess(self, images: torch.Tensor) -> torch.Tensor:
        batch = {'inputs': {'images': images}, 'data_samples': None}
        out = self.model.data_preprocessor(batch, False)
        inputs = out['inputs']
        images = inputs['images'] if isinstance(inputs, dict) else inputs
        if not images.is_floating_point():
            raise TypeError(
                f'{type(self.model.data_preprocessor).__name__} does not '
                'turn images into float tensors; export without '
                'with_preprocessor')
        return images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images -> ``B x D`` L2-normalised retrieval features."""
        if self.with_preprocessor:
            images = self._preprocess(images)
        return super().forward(images)


class TextFeatureEncoder(_FeatureEncoder):
    """``texts -> text_feat`` of a model, the module the text graph holds.

    Args:
        model (nn.Module): The retriever, in eval mode.

    Call ``encoder(texts)`` with ``B x L`` int64 token ids -> ``B x D``
    unit-norm features.
    """

    modality = 'text'
