"""The search demos, the retrieval visualiser and the Gradio app, end to end
on a tiny SynthPedes split with a random-weight micro model."""
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys

import pytest
from PIL import Image

from mmreid_clip.visualization import (MATCH_COLOR, MISMATCH_COLOR,
                                       QUERY_COLOR, RankedListLayout)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# the tiny data/config/checkpoint helpers are shared with tests/test_apis
from helpers.tiny_search_setup import make_tiny_setup, pid_of  # noqa: E402
from helpers.tool_loader import load_tool  # noqa: E402

QUERY = 'A man wearing a blue jacket and blue trousers.'


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return make_tiny_setup(str(tmp_path_factory.mktemp('demos')))


def _row_height(layout, num_tiles, caption):
    return layout.geometry(num_tiles, False, caption).size[1]


def test_text_search_writes_the_grid_and_reuses_the_index(tiny, tmp_path):
    tool = load_tool('tools/demo/text_search.py')
    index = str(tmp_path / 'gallery.index.npz')
    out = str(tmp_path / 'grid.png')
    queries = [QUERY, 'A woman in a green jacket.']
    argv = [
        tiny.config, tiny.checkpoint, '--gallery', tiny.gallery, '--query',
        queries[0], '--query', queries[1], '--topk', '4', '--out', out,
        '--index', index, '--json',
        str(tmp_path / 'r.json')
    ]
    first = tool.main(argv)
    assert osp.isfile(index)
    stamp = os.stat(index).st_mtime_ns
    layout = RankedListLayout()
    with Image.open(out) as png:
        # 4 tiles of (96 + 2 x 5) px, 3 gaps of 8, margins of 12
        assert png.width == 2 * 12 + 4 * 106 + 3 * 8
        heights = [_row_height(layout, 4, f'"{q}"') for q in queries]
        assert png.height == sum(heights) + 6
    saved = json.load(open(tmp_path / 'r.json'))
    assert [r['query'] for r in saved] == queries
    assert all(len(r['paths']) == 4 for r in saved)
    # second run: the saved index is loaded, not rebuilt
    second = tool.main(argv)
    assert os.stat(index).st_mtime_ns == stamp
    assert [r.rel_paths for r in second['results']
            ] == [r.rel_paths for r in first['results']]
    # another checkpoint refuses the index with a clear message
    argv[1] = tiny.other_checkpoint
    with pytest.raises(SystemExit, match='error: index .* weights differ'):
        tool.main(argv)
    tool.main(argv + ['--rebuild'])
    assert os.stat(index).st_mtime_ns != stamp


def test_image_search_excludes_the_query_and_outlines_it(tiny, tmp_path):
    tool = load_tool('tools/demo/image_search.py')
    query = osp.join(
        tiny.gallery, 'synth_cam_a',
        sorted(os.listdir(osp.join(tiny.gallery, 'synth_cam_a')))[0])
    out = str(tmp_path / 'image.png')
    result = tool.main([
        tiny.config, tiny.checkpoint, '--gallery', tiny.gallery,
        '--query-image', query, '--topk', '7', '--out', out
    ])['results'][0]
    assert len(result) == 7 and query not in result.paths
    layout = RankedListLayout()
    geo = layout.geometry(7, True, f'query: {osp.basename(query)}')
    with Image.open(out) as png:
        assert png.size == geo.size
        x0, y0, x1, _ = geo.query_box
        assert png.convert('RGB').getpixel(((x0 + x1) // 2, y0 + 2)) == (
            QUERY_COLOR)


def test_visualize_retrieval_outlines_true_matches(tiny, tmp_path):
    tool = load_tool('tools/analysis/visualize_retrieval.py')
    out_dir = str(tmp_path / 'vis')
    run = tool.main([
        tiny.config, tiny.checkpoint, '--queries', '0', '5', '--topk', '5',
        '--out-dir', out_dir
    ])
    assert [osp.basename(f)
            for f in run['files']] == ['query_00000.png', 'query_00005.png']
    layout = RankedListLayout()
    for entry, path in zip(run['summary'], run['files']):
        # the truth from the file names, not from the tool
        truth = [pid_of(p) == entry['pid'] for p in entry['topk_paths']]
        assert entry['topk_matches'] == truth
        caption = (f'query {entry["query"]} (id {entry["pid"]}, AP '
                   f'{100 * entry["ap"]:.1f}%): "{entry["caption"]}"')
        geo = layout.geometry(5, False, caption)
        with Image.open(path) as png:
            png = png.convert('RGB')
            assert png.size == geo.size
            for (x0, y0, x1, y1), match in zip(geo.tile_boxes, truth):
                color = MATCH_COLOR if match else MISMATCH_COLOR
                assert png.getpixel(((x0 + x1) // 2, y0 + 2)) == color
                assert png.getpixel((x0 + 2, (y0 + y1) // 2)) == color
    # the worst queries by AP, one sheet, with the described image
    sheet = tool.main([
        tiny.config, tiny.checkpoint, '--worst', '3', '--topk', '3', '--sheet',
        '--show-gt', '--out-dir', out_dir
    ])
    aps = [e['ap'] for e in sheet['summary']]
    assert aps == sorted(aps) and len(aps) == 3
    summary = json.load(open(osp.join(out_dir, 'summary.json')))
    assert [e['query']
            for e in summary] == [e['query'] for e in sheet['summary']]
    assert osp.basename(sheet['files'][0]) == 'retrieval_sheet.png'


def test_visualize_retrieval_query_selection():
    import torch
    tool = load_tool('tools/analysis/visualize_retrieval.py')
    ap = torch.tensor([0.5, 0.1, 0.0, 0.1, 0.9], dtype=torch.float64)
    valid = torch.tensor([True, True, False, True, True])
    # lowest AP first, ties by index; queries without positives left out
    assert tool.select_queries(ap, valid, None, 3) == [1, 3, 0]
    assert tool.select_queries(ap, valid, [4, 2], None) == [4, 2]
    with pytest.raises(ValueError, match=r'\[5\] are out of range'):
        tool.select_queries(ap, valid, [0, 5], None)


@pytest.mark.slow
def test_text_search_runs_as_a_script(tiny, tmp_path):
    out = str(tmp_path / 'cli.png')
    proc = subprocess.run([
        sys.executable, 'tools/demo/text_search.py', tiny.config,
        tiny.checkpoint, '--gallery', tiny.gallery, '--query', QUERY, '--topk',
        '3', '--out', out
    ],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f'ranked grid written to {out}' in proc.stdout
    assert proc.stdout.count('  #') == 3
    with Image.open(out) as png:
        # 3 tiles (334 px) are narrower than the 360 px kept for the caption
        assert png.width == 2 * 12 + 360


def test_search_app_without_gradio_says_how_to_install(monkeypatch):
    import builtins
    tool = load_tool('tools/demo/search_app.py')
    real_import = builtins.__import__

    def no_gradio(name, *args, **kwargs):
        if name == 'gradio':
            raise ImportError('No module named gradio')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_gradio)
    with pytest.raises(ImportError, match='pip install gradio'):
        tool.import_gradio()


@pytest.fixture(scope='module')
def app_parts(tiny):
    pytest.importorskip('gradio', reason='gradio is not installed (optional)')
    from mmreid_clip.apis import TextPersonSearcher
    tool = load_tool('tools/demo/search_app.py')
    searcher = TextPersonSearcher.from_config(tiny.config, tiny.checkpoint)
    searcher.index_folder(tiny.gallery)
    return tool, searcher, tool.build_app(searcher, topk=4)


@pytest.mark.slow  # importing gradio alone takes ~8 s on 2 cores
def test_search_app_blocks_and_callback(app_parts):
    import gradio as gr
    tool, searcher, app = app_parts
    assert isinstance(app, gr.Blocks)
    ids = {getattr(c, 'elem_id', None) for c in app.blocks.values()}
    assert {'query', 'topk', 'search', 'results', 'status'} <= ids
    search = tool.make_search_fn(searcher)
    items, status = search(QUERY, 3)
    expected = searcher.query(QUERY, 3)
    # images, not paths: nothing of the gallery folder is served by path
    assert [caption.split()[-1] for _, caption in items] == expected.rel_paths
    assert items[0][1].startswith('#1  ')
    assert status.startswith('3 results of 8 images')
    assert search('   ', 3) == ([], 'Type a description of the person first.')


@pytest.mark.slow
def test_search_app_in_a_headless_browser(app_parts):
    sync_api = pytest.importorskip(
        'playwright.sync_api', reason='playwright is not installed')
    _, searcher, app = app_parts
    browser_path = (
        shutil.which('chromium') or shutil.which('chromium-browser')
        or shutil.which('google-chrome'))
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    app.launch(
        server_name='127.0.0.1',
        server_port=port,
        prevent_thread_lock=True,
        quiet=True)
    try:
        with sync_api.sync_playwright() as pw:
            try:
                browser = pw.chromium.launch(
                    headless=True,
                    executable_path=browser_path,
                    args=['--no-sandbox'])
            except Exception as err:  # no browser build installed
                pytest.skip(f'no headless Chromium available: {err}')
            page = browser.new_page()
            page.goto(
                f'http://127.0.0.1:{port}/',
                wait_until='domcontentloaded',
                timeout=60000)
            page.locator('#query textarea').fill(QUERY)
            page.locator('#search').click()
            page.wait_for_selector('#results img', timeout=60000)
            page.wait_for_function(
                "document.querySelectorAll('#results img').length >= 4",
                timeout=30000)
            assert page.locator('#results img').count() >= 4
            assert '4 results of 8 images' in page.locator(
                '#status').inner_text()
            browser.close()
    finally:
        app.close()
