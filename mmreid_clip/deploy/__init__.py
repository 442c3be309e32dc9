"""Deployment: exporting trained models out of PyTorch."""
from .example_inputs import (TextInputSpec, infer_image_size, infer_text_spec,
                             random_images, random_texts)
from .feature_encoders import (IMAGE_EXPORT_METHODS, TEXT_EXPORT_METHODS,
                               ImageFeatureEncoder, TextFeatureEncoder,
                               has_text_branch)
from .from_config import export_from_config
from .onnx_export import ExportResult, export_encoder, export_model
from .parity import ParityError, check_parity, predict_features
from .torch_export import ExportError

__all__ = [
    'IMAGE_EXPORT_METHODS', 'TEXT_EXPORT_METHODS', 'ExportError',
    'ExportResult', 'ImageFeatureEncoder', 'ParityError', 'TextFeatureEncoder',
    'TextInputSpec', 'check_parity', 'export_encoder', 'export_from_config',
    'export_model', 'has_text_branch', 'infer_image_size', 'infer_text_spec',
    'predict_features', 'random_images', 'random_texts'
]
