"""Web demo: type a description of a person, see the ranked gallery.

    python tools/demo/search_app.py CONFIG CHECKPOINT --gallery FOLDER \\
        [--index FOLDER.index.npz] [--rebuild] \\
        [--index-kind {exact,flat,ivf,hnsw}] [--topk 12] \\
        [--host 127.0.0.1] [--port 7860] [--device cpu] [--batch-size 32] \\
        [--num-workers 0] [--cfg-options k=v ...] [--trust-checkpoint]

then open http://127.0.0.1:7860. The gallery is encoded once at start-up
(or loaded from ``--index``, as in ``text_search.py``); every query then
costs one text forward pass and a top-k over the stored features.

Needs the optional ``gradio`` package (``pip install gradio``); it is only
imported when the app is built, so the rest of the project does not need it.
"""
import argparse
import os
from typing import Callable, List, Optional, Tuple

from mmreid_clip.apis import TextPersonSearcher
from mmreid_clip.apis.cli import (add_index_args, add_model_args,
                                  check_gallery, load_model, load_searcher)

GalleryItems = List[Tuple[str, str]]


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


def make_search_fn(searcher: TextPersonSearcher,
                   max_topk: int = 50) -> Callable:
    """The app's callback: ``search(text, topk) -> (items, status)``.

    Args:
        searcher (TextPersonSearcher): A searcher with a gallery.
        max_topk (int): Upper bound on ``topk``.

    Returns:
        Callable: ``search(text, topk)`` giving the gallery items, a list
        of ``(image_path, 'rank  score  file')``, and a Markdown status line.
    """

    def search(text: Optional[str], topk: float) -> Tuple[GalleryItems, str]:
        if not text or not text.strip():
            return [], 'Type a description of the person first.'
        k = max(1, min(int(topk), max_topk))
        result = searcher.query(text.strip(), k)
        items = [(path, f'#{i}  {score:.3f}  {rel}')
                 for i, (path, rel, score) in enumerate(
                     zip(result.paths, result.rel_paths, result.scores), 1)]
        return items, (f'{len(items)} results of {len(searcher)} images for '
                       f'"{text.strip()}"')

    return search


def build_app(searcher: TextPersonSearcher,
              topk: int = 12,
              max_topk: int = 50,
              title: str = 'mmreid_clip: text-based person search'):
    """The Gradio Blocks of the demo (not launched).

    Elements have fixed ids for scripting: ``#query`` (textbox), ``#topk``
    (slider), ``#search`` (button), ``#results`` (gallery), ``#status``.

    Args:
        searcher (TextPersonSearcher): A searcher with a gallery.
        topk (int): Initial number of results. Defaults to 12.
        max_topk (int): Slider maximum. Defaults to 50.
        title (str): Page title.

    Returns:
        gradio.Blocks: Call ``.launch()`` on it.
    """
    gr = import_gradio()
    max_topk = max(1, min(int(max_topk), len(searcher)))
    search = make_search_fn(searcher, max_topk)
    with gr.Blocks(title=title) as app:
        gr.Markdown(f'## {title}\n{len(searcher)} images indexed from '
                    f'`{searcher.root}`. Describe the person (clothes, '
                    'colours, bags, hair) and press Enter.')
        with gr.Row():
            query = gr.Textbox(
                label='Description',
                placeholder='a woman in a red coat with a black shoulder bag',
                lines=2,
                scale=4,
                elem_id='query')
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
    args = parser.parse_args(argv)
    check_gallery(parser, args)
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    import_gradio()  # fail before the slow model and gallery work
    searcher = load_searcher(TextPersonSearcher, load_model(args), args)
    app = build_app(searcher, args.topk)
    # the images are served from the gallery folder, and only from there
    app.launch(
        server_name=args.host,
        server_port=args.port,
        allowed_paths=[searcher.root])


if __name__ == '__main__':
    main()
