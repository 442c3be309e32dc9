from .data_preprocessor import TextImageDataPreprocessor

__all__ = ['TextImageDataPreprocessor']
