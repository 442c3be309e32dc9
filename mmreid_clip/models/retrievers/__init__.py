from .cfine import CFine
from .clip_reid import CCAF, CLIPReID
from .clip_text_image import CLIPTextImageReID

__all__ = ['CFine', 'CLIPTextImageReID', 'CLIPReID', 'CCAF']
