from .clip_text_image import CLIPTextImageReID

__all__ = ['CLIPTextImageReID']
