from .text_image_retrieval import TextImageRetrievalMetric

__all__ = ['TextImageRetrievalMetric']
