"""Deployment: exporting trained models out of PyTorch."""
from .onnx_export import (IMAGE_EXPORT_METHODS, TEXT_EXPORT_METHODS,
                          ExportError, ExportResult, ImageFeatureEncoder,
                          ParityError, TextFeatureEncoder, TextInputSpec,
                          check_parity, export_encoder, export_from_config,
                          export_model, has_text_branch, infer_image_size,
                          infer_text_spec, predict_features, random_images,
                          random_texts)

__all__ = [
    'IMAGE_EXPORT_METHODS', 'TEXT_EXPORT_METHODS', 'ExportError',
    'ExportResult', 'ImageFeatureEncoder', 'ParityError', 'TextFeatureEncoder',
    'TextInputSpec', 'check_parity', 'export_encoder', 'export_from_config',
    'export_model', 'has_text_branch', 'infer_image_size', 'infer_text_spec',
    'predict_features', 'random_images', 'random_texts'
]
