from .cfine import CFine
from .clip_text_image import CLIPTextImageReID

__all__ = ['CFine', 'CLIPTextImageReID']
