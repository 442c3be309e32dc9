from .reid_metric import ReIDMetric
from .text_image_retrieval import TextImageRetrievalMetric

__all__ = ['ReIDMetric', 'TextImageRetrievalMetric']
