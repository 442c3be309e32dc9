"""Drawing a ranked retrieval list: caption on top, gallery tiles below.

One row per query::

    +--------------------------------------------------------------+
    | caption (wrapped, up to ``max_caption_lines`` lines)          |
    | [query]   [#1] [#2] [#3] ...     <- tiles with coloured border |
    |  query    #1 0.91  #2 0.88 ...   <- labels under the tiles     |
    +--------------------------------------------------------------+

A tile's border is :data:`MATCH_COLOR` (green) for a true match,
:data:`MISMATCH_COLOR` (red) for a false one and :data:`NEUTRAL_COLOR` when
the truth is unknown (searching your own images); the optional query image
has a :data:`QUERY_COLOR` border. Images are letterboxed into the tile, so
people of any aspect ratio keep their shape.
"""
import logging
import math
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log
from PIL import Image, ImageDraw

from .text import TextRenderer

__all__ = [
    'MATCH_COLOR', 'MISMATCH_COLOR', 'NEUTRAL_COLOR', 'QUERY_COLOR',
    'BACKGROUND_COLOR', 'ImageLike', 'RankedListLayout', 'RankedListGeometry',
    'fit_middle', 'render_ranked_list', 'score_decimals', 'stack_rows',
    'save_png', 'to_pil'
]

Color = Tuple[int, int, int]
Box = Tuple[int, int, int, int]
ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]

MATCH_COLOR: Color = (0, 170, 60)
MISMATCH_COLOR: Color = (220, 30, 30)
NEUTRAL_COLOR: Color = (150, 150, 150)
QUERY_COLOR: Color = (30, 100, 220)
BACKGROUND_COLOR: Color = (255, 255, 255)
TILE_BACKGROUND: Color = (235, 235, 235)
TEXT_COLOR: Color = (20, 20, 20)
MUTED_TEXT_COLOR: Color = (90, 90, 90)
SEPARATOR_COLOR: Color = (210, 210, 210)


def to_pil(image: ImageLike) -> Image.Image:
    """An RGB PIL image from a path, a PIL image or an RGB array.

    Args:
        image: A file path, a PIL image, or an ``H x W x 3`` (RGB) /
            ``H x W`` uint8 array.

    Returns:
        PIL.Image.Image: In RGB mode.

    Raises:
        FileNotFoundError: The path does not exist.
        ValueError: The file is not an image, or the array has a bad shape.
    """
    if isinstance(image, Image.Image):
        return image.convert('RGB')
    if isinstance(image, np.ndarray):
        if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4)):
            return Image.fromarray(image.astype(np.uint8)).convert('RGB')
        raise ValueError('image arrays must be H x W or H x W x 3 (RGB), got '
                         f'shape {image.shape}')
    path = os.fspath(image)
    if not osp.isfile(path):
        raise FileNotFoundError(f'image {path!r} does not exist')
    try:
        with Image.open(path) as img:
            return img.convert('RGB')
    except OSError as err:
        raise ValueError(f'cannot read image {path!r}: {err}') from err


@dataclass
class RankedListGeometry:
    """Where everything of one rendered row is (pixel boxes, x1/y1 exclusive).

    Attributes:
        size (tuple[int, int]): ``(width, height)`` of the image.
        caption_lines (list[str]): The wrapped caption.
        caption_origin (tuple[int, int]): Top-left of the first caption line.
        query_box (tuple, optional): Outer box (border included) of the query
            tile.
        tile_boxes (list[tuple]): Outer box of each gallery tile, in rank
            order.
        label_top (int): y of the first label line under the tiles.
    """
    size: Tuple[int, int]
    caption_lines: List[str]
    caption_origin: Tuple[int, int]
    query_box: Optional[Box]
    tile_boxes: List[Box] = field(default_factory=list)
    label_top: int = 0


@dataclass
class RankedListLayout:
    """Sizes of a ranked-list row; :meth:`geometry` places everything.

    Args:
        tile_size (tuple[int, int]): ``(width, height)`` of the image area
            of a tile (person crops are about 1:2). Defaults to (96, 192).
        border (int): Border width of a tile in pixels. Defaults to 5.
        gap (int): Horizontal space between tiles. Defaults to 8.
        query_gap (int): Extra space after the query tile. Defaults to 24.
        margin (int): Space around the row. Defaults to 12.
        caption_size (int): Caption font size in pixels. Defaults to 18.
        label_size (int): Label font size in pixels. Defaults to 13.
        label_lines (int): Label lines under each tile. Defaults to 2.
        max_caption_lines (int): Longer captions end with an ellipsis.
            Defaults to 4.
        min_caption_width (int): The row is widened to at least this many
            pixels of caption width, so a short list keeps a legible
            caption. Defaults to 360.
    """
    tile_size: Tuple[int, int] = (96, 192)
    border: int = 5
    gap: int = 8
    query_gap: int = 24
    margin: int = 12
    caption_size: int = 18
    label_size: int = 13
    label_lines: int = 2
    max_caption_lines: int = 4
    min_caption_width: int = 360

    def __post_init__(self) -> None:
        w, h = (int(v) for v in self.tile_size)
        if w < 8 or h < 8:
            raise ValueError(f'tile_size must be at least (8, 8), got '
                             f'{self.tile_size}')
        self.tile_size = (w, h)
        self._caption_font = TextRenderer(self.caption_size)
        self._label_font = TextRenderer(self.label_size)

    @property
    def caption_font(self) -> TextRenderer:
        """The caption's text renderer."""
        return self._caption_font

    @property
    def label_font(self) -> TextRenderer:
        """The labels' text renderer."""
        return self._label_font

    @property
    def outer_tile_size(self) -> Tuple[int, int]:
        """``(width, height)`` of a tile with its border."""
        w, h = self.tile_size
        return w + 2 * self.border, h + 2 * self.border

    def tiles_width(self, num_tiles: int, has_query: bool) -> int:
        """Width of the tile strip (no margins)."""
        tw = self.outer_tile_size[0]
        width = num_tiles * tw + max(num_tiles - 1, 0) * self.gap
        if has_query:
            width += tw + (self.query_gap if num_tiles else 0)
        return width

    def geometry(self, num_tiles: int, has_query: bool,
                 caption: Optional[str]) -> RankedListGeometry:
        """Place the caption and the tiles of one row.

        Args:
            num_tiles (int): Gallery tiles (ranked results).
            has_query (bool): Whether a query tile comes first.
            caption (str, optional): Text drawn above the tiles.

        Returns:
            RankedListGeometry: The image size and every box.
        """
        if num_tiles < 0:
            raise ValueError(f'num_tiles must be >= 0, got {num_tiles}')
        strip = self.tiles_width(num_tiles, has_query)
        content = strip
        if caption:
            content = max(strip, self.min_caption_width)
        width = content + 2 * self.margin
        y = self.margin
        lines: List[str] = []
        if caption:
            lines = self._caption_font.wrap(caption, content,
                                            self.max_caption_lines)
            y += len(lines) * self._caption_font.line_height + self.gap
        caption_origin = (self.margin, self.margin)
        tw, th = self.outer_tile_size
        x = self.margin
        query_box = None
        if has_query:
            query_box = (x, y, x + tw, y + th)
            x += tw + self.query_gap
        boxes = []
        for _ in range(num_tiles):
            boxes.append((x, y, x + tw, y + th))
            x += tw + self.gap
        label_top = y + th + 3
        height = (
            label_top + self.label_lines * self._label_font.line_height +
            self.margin)
        return RankedListGeometry((width, height), lines, caption_origin,
                                  query_box, boxes, label_top)


def _paste_tile(canvas: Image.Image, box: Box, image: Optional[Image.Image],
                color: Color, layout: RankedListLayout) -> None:
    """Border + letterboxed image inside ``box``."""
    x0, y0, x1, y1 = box
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=color)
    b = layout.border
    tw, th = layout.tile_size
    draw.rectangle((x0 + b, y0 + b, x0 + b + tw - 1, y0 + b + th - 1),
                   fill=TILE_BACKGROUND)
    if image is None:
        font = layout.label_font
        font.draw(canvas, (x0 + b + 4, y0 + b + th // 2 - font.line_height),
                  'missing', MUTED_TEXT_COLOR)
        return
    scale = min(tw / image.width, th / image.height)
    size = (max(1,
                round(image.width * scale)), max(1,
                                                 round(image.height * scale)))
    resized = image.resize(size, Image.BICUBIC)
    canvas.paste(resized,
                 (x0 + b + (tw - size[0]) // 2, y0 + b + (th - size[1]) // 2))


def _load_or_none(image: ImageLike) -> Optional[Image.Image]:
    try:
        return to_pil(image)
    except FileNotFoundError as err:
        # an indexed file may have been removed since; draw a placeholder
        print_log(
            f'{err}; drawing a placeholder',
            logger='current',
            level=logging.WARNING)
        return None


def score_decimals(scores: Sequence[float],
                   fewest: int = 3,
                   most: int = 6) -> int:
    """Decimals at which scores that differ also print differently.

    Features with batch-normalised necks (CCAF, CLIP-ReID) give cosine
    scores that all round to ``1.000`` at three decimals; this takes the
    fewest decimals in ``[fewest, most]`` that keep apart the scores that
    differ at ``most`` decimals.

    Args:
        scores (Sequence[float]): The scores printed together.
        fewest (int): Defaults to 3.
        most (int): Defaults to 6.
    """
    values = [float(v) for v in scores if math.isfinite(float(v))]
    want = len({f'{v:.{most}f}' for v in values})
    for decimals in range(fewest, most):
        if len({f'{v:.{decimals}f}' for v in values}) >= want:
            return decimals
    return most


def fit_middle(text: str, font: TextRenderer, max_width: int) -> str:
    """``text`` cut in the middle (``head...tail``) to fit ``max_width``
    pixels: file names keep their start (the identity in most datasets'
    names, or the identity folder of a relative path) and their end."""
    if font.width(text) <= max_width or len(text) <= 4:
        return text
    keep = len(text) - 1
    while keep > 2:
        head = text[:(keep + 1) // 2 + keep % 2]
        tail = text[len(text) - keep // 2:] if keep // 2 else ''
        candidate = f'{head}...{tail}'
        if font.width(candidate) <= max_width:
            return candidate
        keep -= 1
    return font.wrap(text, max_width, max_lines=1)[0]


def _label_lines(rank: int,
                 score: Optional[float],
                 extra: Optional[str],
                 decimals: int = 3) -> List[str]:
    first = (f'#{rank}'
             if score is None else f'#{rank}  {score:.{decimals}f}')
    return [first] if not extra else [first, extra]


def render_ranked_list(
    gallery: Sequence[ImageLike],
    scores: Optional[Sequence[float]] = None,
    matches: Optional[Sequence[Optional[bool]]] = None,
    caption: Optional[str] = None,
    query_image: Optional[ImageLike] = None,
    labels: Optional[Sequence[Optional[str]]] = None,
    query_label: str = 'query',
    layout: Optional[RankedListLayout] = None,
    return_geometry: bool = False
) -> Union[Image.Image, Tuple[Image.Image, RankedListGeometry]]:
    """Render one ranked list as an RGB image.

    Args:
        gallery (Sequence[ImageLike]): Ranked gallery images (paths, PIL
            images or RGB arrays), best first.
        scores (Sequence[float], optional): One score per image, printed
            under its tile with the rank.
        matches (Sequence[bool | None], optional): True (green border),
            False (red) or None (grey) per image; all grey when omitted.
        caption (str, optional): Text above the tiles (the text query).
        query_image (ImageLike, optional): Drawn first with a blue border.
        labels (Sequence[str | None], optional): A second label line per
            tile (e.g. the identity or the file name).
        query_label (str): Label under the query tile. Defaults to 'query'.
        layout (RankedListLayout, optional): Sizes; defaults to
            ``RankedListLayout()``.
        return_geometry (bool): Also return the boxes. Defaults to False.

    Returns:
        PIL.Image.Image, or ``(image, geometry)`` with ``return_geometry``.
    """
    layout = layout or RankedListLayout()
    n = len(gallery)
    for name, seq in (('scores', scores), ('matches', matches), ('labels',
                                                                 labels)):
        if seq is not None and len(seq) != n:
            raise ValueError(f'{name} has {len(seq)} entries for {n} '
                             'gallery images')
    geo = layout.geometry(n, query_image is not None, caption)
    canvas = Image.new('RGB', geo.size, BACKGROUND_COLOR)
    cf = layout.caption_font
    for i, line in enumerate(geo.caption_lines):
        cf.draw(canvas, (geo.caption_origin[0],
                         geo.caption_origin[1] + i * cf.line_height), line,
                TEXT_COLOR)
    lf = layout.label_font
    max_label = layout.outer_tile_size[0] + layout.gap - 2

    decimals = 3 if scores is None else score_decimals(scores)

    def put_labels(box: Box, lines: List[str]) -> None:
        for j, text in enumerate(lines[:layout.label_lines]):
            text = (lf.wrap(text, max_label, max_lines=1)[0]
                    if j == 0 else fit_middle(text, lf, max_label))
            lf.draw(canvas, (box[0], geo.label_top + j * lf.line_height), text,
                    TEXT_COLOR if j == 0 else MUTED_TEXT_COLOR)

    if geo.query_box is not None:
        _paste_tile(canvas, geo.query_box, _load_or_none(query_image),
                    QUERY_COLOR, layout)
        put_labels(geo.query_box, [query_label])
    for i, box in enumerate(geo.tile_boxes):
        match = None if matches is None else matches[i]
        color = (
            NEUTRAL_COLOR
            if match is None else MATCH_COLOR if match else MISMATCH_COLOR)
        _paste_tile(canvas, box, _load_or_none(gallery[i]), color, layout)
        put_labels(
            box,
            _label_lines(i + 1, None if scores is None else float(scores[i]),
                         None if labels is None else labels[i], decimals))
    return (canvas, geo) if return_geometry else canvas


def stack_rows(rows: Sequence[Image.Image],
               gap: int = 6,
               separator: Optional[Color] = SEPARATOR_COLOR) -> Image.Image:
    """Stack rendered rows vertically into one sheet.

    Args:
        rows (Sequence[PIL.Image.Image]): The rows (widths may differ; the
            sheet is as wide as the widest).
        gap (int): Pixels between rows. Defaults to 6.
        separator (tuple, optional): Colour of a 1-px line in each gap;
            None for none.

    Returns:
        PIL.Image.Image: The sheet.
    """
    if not rows:
        raise ValueError('stack_rows needs at least one row')
    width = max(r.width for r in rows)
    height = sum(r.height for r in rows) + gap * (len(rows) - 1)
    sheet = Image.new('RGB', (width, height), BACKGROUND_COLOR)
    y = 0
    draw = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows):
        sheet.paste(row, (0, y))
        y += row.height
        if i < len(rows) - 1:
            if separator is not None and gap > 0:
                draw.line((0, y + gap // 2, width - 1, y + gap // 2),
                          fill=separator)
            y += gap
    return sheet


def save_png(image: Image.Image, path: str) -> str:
    """Write ``image`` as PNG, creating the folder; return the path."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    image.save(path, format='PNG')
    return path
