"""Web demo: type a description of a person, see the ranked gallery.

    python tools/demo/search_app.py CONFIG CHECKPOINT --gallery FOLDER \\
        [--index FOLDER.index.npz] [--rebuild] \\
        [--index-kind {exact,flat,ivf,hnsw}] [--topk 12] \\
        [--host 127.0.0.1] [--port 7860] [--device cpu] [--batch-size 32] \\
        [--num-workers 0] [--cfg-options k=v ...] [--trust-checkpoint] \\
        [--max-query-chars 500] [--max-upload-size 1mb] [--queue-size 16]

then open http://127.0.0.1:7860. The gallery is encoded once at start-up
(or loaded from ``--index``, as in ``text_search.py``); every query then
costs one text forward pass and a top-k over the stored features.

What the app exposes, and only that: the result images of each query,
read by the app from the indexed gallery and sent as images (no folder is
shared through ``allowed_paths``, so no other file of the gallery folder,
nor the folder listing, can be fetched). Queries longer than
``--max-query-chars`` are refused with a message, uploads to Gradio's
upload route are capped at ``--max-upload-size``, and at most
``--queue-size`` requests wait in the queue, one running at a time
(``docs/reliability.md``, "Search").

Needs the optional ``gradio`` package (``pip install gradio``, 4.21 or
newer for the upload cap); it is only imported when the app is built, so
the rest of the project does not need it.
"""
import argparse
import inspect
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from PIL import Image

from mmreid_clip.apis import TextPersonSearcher
from mmreid_clip.apis.cli import (add_index_args, add_model_args,
                                  check_gallery, load_model, load_searcher)
from mmreid_clip.visualization import score_decimals

GalleryItems = List[Tuple[Any, str]]
#: Longest description a query may have (CLIP reads 77 tokens; a few
#: hundred characters are plenty).
MAX_QUERY_CHARS = 500
#: Cap on a request body sent to Gradio's upload route.
MAX_UPLOAD_SIZE = '1mb'
#: Requests that may wait in the queue; more are turned away.
QUEUE_SIZE = 16
#: The description box: one line, so that Enter submits the query (in a
#: multi-line Gradio textbox Enter inserts a newline).
QUERY_BOX = dict(
    label='Description (Enter searches)',
    placeholder='a woman in a red coat with a black shoulder bag',
    lines=1,
    max_lines=1,
    elem_id='query')


def import_gradio():
    """Import gradio, or raise an ImportError that says how to get it."""
    # no usage statistics sent from demos run offline or on private data
    os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
    try:
        import gradio
    except ImportError as err:
        raise ImportError(
            'The web demo needs gradio, an optional dependency of '
            'mmreid_clip: pip install gradio (the command-line demos '
            'tools/demo/text_search.py and image_search.py need nothing '
            'extra).') from err
    return gradio


def _result_image(path: str) -> Image.Image:
    """A result image, read here and sent as an image (not as a path the
    browser could change to fetch another file)."""
    with Image.open(path) as img:
        return img.convert('RGB')


def make_search_fn(searcher: TextPersonSearcher,
                   max_topk: int = 50,
                   max_query_chars: int = MAX_QUERY_CHARS) -> Callable:
    """The app's callback: ``search(text, topk) -> (items, status)``.

    Args:
        searcher (TextPersonSearcher): A searcher with a gallery.
        max_topk (int): Upper bound on ``topk``.
        max_query_chars (int): Longest description accepted; a longer one
            is answered with a message, without running the model.

    Returns:
        Callable: ``search(text, topk)`` giving the gallery items, a list
        of ``(PIL image, 'rank  score  file')``, and a Markdown status line.
    """

    def search(text: Optional[str], topk: float) -> Tuple[GalleryItems, str]:
        if not isinstance(text, str) or not text.strip():
            return [], 'Type a description of the person first.'
        if len(text) > max_query_chars:
            return [], (f'The description is too long ({len(text)} '
                        f'characters; at most {max_query_chars}).')
        try:
            k = max(1, min(int(topk), max_topk))
        except (TypeError, ValueError, OverflowError):
            k = max_topk
        result = searcher.query(text.strip(), k)
        decimals = score_decimals(result.scores)
        items = [(_result_image(path), f'#{i}  {score:.{decimals}f}  {rel}')
                 for i, (path, rel, score) in enumerate(
                     zip(result.paths, result.rel_paths, result.scores), 1)]
        return items, (f'{len(items)} results of {len(searcher)} images for '
                       f'"{text.strip()}"')

    return search


def build_app(searcher: TextPersonSearcher,
              topk: int = 12,
              max_topk: int = 50,
              title: str = 'mmreid_clip: text-based person search',
              max_query_chars: int = MAX_QUERY_CHARS):
    """The Gradio Blocks of the demo (not launched).

    Elements have fixed ids for scripting: ``#query`` (textbox), ``#topk``
    (slider), ``#search`` (button), ``#results`` (gallery), ``#status``.

    Args:
        searcher (TextPersonSearcher): A searcher with a gallery.
        topk (int): Initial number of results. Defaults to 12.
        max_topk (int): Slider maximum. Defaults to 50.
        title (str): Page title.
        max_query_chars (int): Longest description accepted.

    Returns:
        gradio.Blocks: Serve it with :func:`serve` (queue and limits).
    """
    gr = import_gradio()
    max_topk = max(1, min(int(max_topk), len(searcher)))
    search = make_search_fn(searcher, max_topk, max_query_chars)
    with gr.Blocks(title=title) as app:
        gr.Markdown(f'## {title}\n{len(searcher)} images indexed from '
                    f'`{searcher.root}`. Describe the person (clothes, '
                    'colours, bags, hair) and press Enter.')
        with gr.Row():
            query = gr.Textbox(scale=4, **QUERY_BOX)
            k = gr.Slider(
                1,
                max_topk,
                value=min(int(topk), max_topk),
                step=1,
                label='Results',
                scale=1,
                elem_id='topk')
        button = gr.Button('Search', variant='primary', elem_id='search')
        status = gr.Markdown(elem_id='status')
        gallery = gr.Gallery(
            label='Ranked gallery (best first)',
            columns=6,
            object_fit='contain',
            height='auto',
            elem_id='results')
        button.click(search, [query, k], [gallery, status])
        query.submit(search, [query, k], [gallery, status])
    return app


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Web demo of text-based person search (Gradio)')
    add_model_args(parser)
    add_index_args(parser)
    parser.add_argument('--topk', type=int, default=12)
    parser.add_argument(
        '--host',
        default='127.0.0.1',
        help='address to serve on (0.0.0.0: every interface)')
    parser.add_argument('--port', type=int, default=7860)
    parser.add_argument(
        '--max-query-chars',
        type=int,
        default=MAX_QUERY_CHARS,
        help='longest description accepted')
    parser.add_argument(
        '--max-upload-size',
        default=MAX_UPLOAD_SIZE,
        help='cap on a file sent to Gradio\'s upload route (e.g. 1mb)')
    parser.add_argument(
        '--queue-size',
        type=int,
        default=QUEUE_SIZE,
        help='requests that may wait; more are turned away')
    args = parser.parse_args(argv)
    check_gallery(parser, args)
    for name in ('max_query_chars', 'queue_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got '
                         f'{getattr(args, name)}')
    return args


def launch_options(args: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments of ``Blocks.launch``: no ``allowed_paths`` (the
    results are sent as images, so no folder is shared) and the upload
    cap."""
    return dict(
        server_name=args.host,
        server_port=args.port,
        max_file_size=args.max_upload_size)


def serve(app, args: argparse.Namespace) -> None:
    """Bound the queue, then launch with :func:`launch_options`.

    Raises:
        RuntimeError: the installed gradio cannot cap uploads
            (``max_file_size`` needs gradio >= 4.21).
    """
    options = launch_options(args)
    accepted = inspect.signature(app.launch).parameters
    if 'max_file_size' not in accepted:
        raise RuntimeError(
            'this gradio cannot limit the size of uploads (launch() has no '
            'max_file_size); install gradio >= 4.21: pip install -U gradio')
    app.queue(max_size=args.queue_size, default_concurrency_limit=1)
    app.launch(**options)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    import_gradio()  # fail before the slow model and gallery work
    searcher = load_searcher(TextPersonSearcher, load_model(args), args)
    app = build_app(searcher, args.topk, max_query_chars=args.max_query_chars)
    serve(app, args)


if __name__ == '__main__':
    main()
