"""The ranked-list drawing: sizes, border colours, caption, fonts."""
import numpy as np
import pytest
from PIL import Image

from mmreid_clip.visualization import (BACKGROUND_COLOR, MATCH_COLOR,
                                       MISMATCH_COLOR, NEUTRAL_COLOR,
                                       QUERY_COLOR, RankedListLayout,
                                       TextRenderer, render_ranked_list,
                                       save_png, stack_rows)


def _person(color, size=(40, 90)):
    return Image.new('RGB', size, color)


def _border_pixels(image, box, border):
    """Colours of the 4 border midpoints of a tile's outer box."""
    x0, y0, x1, y1 = box
    xm, ym = (x0 + x1) // 2, (y0 + y1) // 2
    h = border // 2
    return {
        image.getpixel((xm, y0 + h)),
        image.getpixel((xm, y1 - 1 - h)),
        image.getpixel((x0 + h, ym)),
        image.getpixel((x1 - 1 - h, ym))
    }


def test_png_size_and_border_colours_follow_the_matches(tmp_path):
    layout = RankedListLayout(
        tile_size=(50, 100),
        border=4,
        gap=6,
        margin=10,
        query_gap=20,
        min_caption_width=200)
    gallery = [
        _person((200, 200, 0)),
        _person((0, 0, 200)),
        _person((0, 200, 200)),
        _person((90, 0, 90))
    ]
    matches = [True, False, None, True]
    image, geo = render_ranked_list(
        gallery, [0.9, 0.8, 0.7, 0.6],
        matches,
        caption='a man in a yellow shirt',
        query_image=_person((9, 9, 9)),
        layout=layout,
        return_geometry=True)
    path = save_png(image, str(tmp_path / 'sub' / 'row.png'))
    with Image.open(path) as png:
        png = png.convert('RGB')
        # width: margins + query tile + query gap + 4 tiles + 3 gaps
        assert png.width == 2 * 10 + 58 + 20 + 4 * 58 + 3 * 6
        assert png.size == geo.size
        expected = [MATCH_COLOR, MISMATCH_COLOR, NEUTRAL_COLOR, MATCH_COLOR]
        for box, color in zip(geo.tile_boxes, expected):
            assert box[2] - box[0] == 58 and box[3] - box[1] == 108
            assert _border_pixels(png, box, 4) == {color}
        assert _border_pixels(png, geo.query_box, 4) == {QUERY_COLOR}
        # the image is inside the border, letterboxed on the tile
        x0, y0, x1, y1 = geo.tile_boxes[1]
        assert png.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) == (0, 0, 200)
        # the caption is drawn above the tiles: dark pixels in that band
        band = np.asarray(png)[10:geo.tile_boxes[0][1] - 2]
        assert (band.min(axis=2) < 100).sum() > 50
        assert geo.caption_lines == ['a man in a yellow shirt']


def test_long_captions_wrap_and_stack_rows(tmp_path):
    layout = RankedListLayout(tile_size=(40, 80), max_caption_lines=3)
    caption = ' '.join(['a person wearing a long blue coat'] * 10)
    row, geo = render_ranked_list(
        [_person((1, 2, 3))] * 2,
        caption=caption,
        layout=layout,
        return_geometry=True)
    assert len(geo.caption_lines) == 3
    assert geo.caption_lines[-1].endswith('...')
    font = layout.caption_font
    assert all(
        font.width(line) <= row.width - 2 * layout.margin
        for line in geo.caption_lines)
    # a short row is widened so the caption stays readable
    assert row.width == layout.min_caption_width + 2 * layout.margin
    plain = render_ranked_list([_person((1, 2, 3))] * 3, layout=layout)
    sheet = stack_rows([row, plain], gap=6)
    assert sheet.size == (max(row.width,
                              plain.width), row.height + plain.height + 6)
    assert sheet.getpixel((sheet.width - 1, sheet.height - 1)) == (
        BACKGROUND_COLOR)


def test_rows_from_paths_and_a_missing_file(tmp_path):
    path = tmp_path / 'p.png'
    _person((250, 0, 0)).save(path)
    image, geo = render_ranked_list(
        [str(path), str(tmp_path / 'gone.jpg')], [0.5, 0.4],
        return_geometry=True)
    x0, y0, x1, y1 = geo.tile_boxes[0]
    assert image.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) == (250, 0, 0)
    with pytest.raises(ValueError, match='2 entries for 3'):
        render_ranked_list([str(path)] * 3, scores=[1, 2])


def test_text_renderer_falls_back_to_a_scaled_bitmap_font(monkeypatch):
    scalable = TextRenderer(18)
    assert scalable.width('Wide text') > scalable.width('W')
    monkeypatch.setattr('mmreid_clip.visualization.text._load_scalable',
                        lambda size, candidates: None)
    renderer = TextRenderer(22)
    assert not renderer.scalable
    canvas = Image.new('RGB', (300, 60), (255, 255, 255))
    renderer.draw(canvas, (2, 2), 'Legible', (0, 0, 0))
    ink = np.asarray(canvas).min(axis=2) < 128
    rows = np.nonzero(ink.any(axis=1))[0]
    cols = np.nonzero(ink.any(axis=0))[0]
    # scaled x2: glyphs twice the bitmap font's ~8-10 px, still crisp
    assert rows.max() - rows.min() + 1 >= 16
    assert abs((cols.max() - cols.min() + 1) - renderer.width('Legible')) <= 4
    assert renderer.line_height >= 22
    assert renderer.wrap('one two three',
                         renderer.width('one two') +
                         1) == ['one two', 'three']
