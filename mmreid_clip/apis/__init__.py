"""Inference and search API: build a model, encode images and captions,
search a folder of person images by description or by photo.

Importing this package installs the checkpoint-loading patches of
:mod:`mmreid_clip.compat` (safe loading of mmengine checkpoints).
"""
from mmreid_clip.compat import apply_patches
from .inference import (encode_images, encode_texts, init_model, list_images,
                        load_model_weights, model_fingerprint)
from .search_index import (INDEX_KINDS, ExactIndex, FaissIndex, FeatureIndex,
                           build_index, chunked_topk, load_index, stable_topk)
from .searchers import (GallerySearcher, PersonReIdentifier, SearchResult,
                        StaleGalleryError, StaleIndexError,
                        TextPersonSearcher)

apply_patches()

__all__ = [
    'INDEX_KINDS', 'ExactIndex', 'FaissIndex',
    'FeatureIndex', 'GallerySearcher', 'PersonReIdentifier', 'SearchResult',
    'StaleGalleryError', 'StaleIndexError', 'TextPersonSearcher',
    'build_index', 'chunked_topk',
    'encode_images', 'encode_texts', 'init_model', 'list_images', 'load_index',
    'load_model_weights', 'model_fingerprint', 'stable_topk'
]
