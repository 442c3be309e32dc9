from .reid_metric import ReIDMetric, reid_junk_fn, reid_label_junk_fn
from .text_image_retrieval import TextImageRetrievalMetric

__all__ = [
    'ReIDMetric', 'TextImageRetrievalMetric', 'reid_junk_fn',
    'reid_label_junk_fn'
]
