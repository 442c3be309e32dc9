"""Legible text on PIL images with a font that exists on every machine.

DejaVu Sans is used when the system has it (most Linux images do); else
Pillow's bundled scalable default font (Pillow >= 10.1 with FreeType); else
Pillow's bitmap font, scaled up by an integer factor with nearest-neighbour
resampling so that it stays crisp. Every path gives the same interface:
measure, wrap and draw.
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from PIL import Image, ImageDraw, ImageFont

__all__ = ['TextRenderer', 'DEJAVU_CANDIDATES']

Color = Tuple[int, int, int]

#: Tried in order; PIL also searches the system font folders for a bare
#: file name.
DEJAVU_CANDIDATES: Tuple[str, ...] = (
    'DejaVuSans.ttf',
    '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
    '/usr/share/fonts/dejavu/DejaVuSans.ttf',
    '/usr/share/fonts/TTF/DejaVuSans.ttf',
    '/Library/Fonts/DejaVuSans.ttf',
)

# Height in pixels of a line of Pillow's bitmap default font.
_BITMAP_LINE = 11


def _load_scalable(
        size: int,
        candidates: Sequence[str]) -> Optional[ImageFont.FreeTypeFont]:
    for name in candidates:
        if osp.isabs(name) and not osp.isfile(name):
            continue
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        # Pillow >= 10.1 bundles a scalable font when FreeType is available
        font = ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError, ImportError):
        return None
    return font if isinstance(font, ImageFont.FreeTypeFont) else None


def _load_bitmap() -> ImageFont.ImageFont:
    # Pillow >= 10.1 names the bitmap font; before, load_default returns it
    loader = getattr(ImageFont, 'load_default_imagefont', None)
    return loader() if loader is not None else ImageFont.load_default()


class TextRenderer:
    """Measure, wrap and draw single-line text at a given pixel size.

    Args:
        size (int): Nominal font size in pixels (line height is about
            1.2 times that). Defaults to 16.
        candidates (Sequence[str]): Font files tried first. Defaults to
            :data:`DEJAVU_CANDIDATES`.
    """

    def __init__(self,
                 size: int = 16,
                 candidates: Sequence[str] = DEJAVU_CANDIDATES) -> None:
        if size < 6:
            raise ValueError(f'font size must be >= 6 px, got {size}')
        self.size = int(size)
        self.font = _load_scalable(self.size, candidates)
        if self.font is None:
            self._bitmap = _load_bitmap()
            self._scale = max(1, round(self.size / _BITMAP_LINE))
        else:
            self._bitmap, self._scale = None, 1

    @property
    def scalable(self) -> bool:
        """Whether a FreeType font is in use (else the scaled bitmap)."""
        return self.font is not None

    @property
    def line_height(self) -> int:
        """Pixels from one baseline to the next."""
        if self.font is not None:
            ascent, descent = self.font.getmetrics()
            return int(round((ascent + descent) * 1.15))
        return (_BITMAP_LINE + 2) * self._scale

    def width(self, text: str) -> int:
        """Rendered width of ``text`` in pixels."""
        if not text:
            return 0
        if self.font is not None:
            return int(round(self.font.getlength(text)))
        return int(self._bitmap.getlength(text)) * self._scale

    def wrap(self,
             text: str,
             max_width: int,
             max_lines: Optional[int] = None) -> List[str]:
        """Greedy word wrap to ``max_width`` pixels.

        A word wider than the line is cut by characters. With ``max_lines``
        the last kept line ends with an ellipsis when text was dropped.

        Args:
            text (str): The text; newlines start new paragraphs.
            max_width (int): Line width in pixels (> 0).
            max_lines (int, optional): Keep at most this many lines.

        Returns:
            list[str]: The lines (at least one, possibly empty).
        """
        if max_width <= 0:
            raise ValueError(f'max_width must be > 0, got {max_width}')
        lines: List[str] = []
        for paragraph in str(text).split('\n'):
            line = ''
            for word in paragraph.split():
                candidate = f'{line} {word}' if line else word
                if self.width(candidate) <= max_width:
                    line = candidate
                    continue
                if line:
                    lines.append(line)
                # a single word too wide for a line: cut it
                while self.width(word) > max_width and len(word) > 1:
                    cut = len(word) - 1
                    while cut > 1 and self.width(word[:cut]) > max_width:
                        cut -= 1
                    lines.append(word[:cut])
                    word = word[cut:]
                line = word
            lines.append(line)
        if max_lines is not None and len(lines) > max_lines:
            kept = lines[:max_lines]
            last = kept[-1] + ' ...'
            while self.width(last) > max_width and len(last) > 4:
                last = last[:-5].rstrip() + ' ...'
            kept[-1] = last
            lines = kept
        return lines

    def draw(self,
             image: Image.Image,
             xy: Tuple[int, int],
             text: str,
             fill: Color = (0, 0, 0)) -> None:
        """Draw one line with its top-left corner at ``xy``.

        Args:
            image (PIL.Image.Image): An RGB image, drawn on in place.
            xy (tuple[int, int]): Top-left corner of the line box.
            text (str): The line.
            fill (tuple[int, int, int]): RGB colour.
        """
        if not text:
            return
        x, y = int(xy[0]), int(xy[1])
        if self.font is not None:
            ImageDraw.Draw(image).text((x, y), text, font=self.font, fill=fill)
            return
        w = max(1, int(self._bitmap.getlength(text)))
        mask = Image.new('L', (w, _BITMAP_LINE + 2), 0)
        ImageDraw.Draw(mask).text((0, 0), text, font=self._bitmap, fill=255)
        if self._scale > 1:
            mask = mask.resize((w * self._scale, mask.height * self._scale),
                               Image.NEAREST)
        image.paste(Image.new('RGB', mask.size, fill), (x, y), mask)
