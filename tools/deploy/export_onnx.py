"""Export a model's image and text encoders to ONNX and check them.

    python tools/deploy/export_onnx.py CONFIG [--checkpoint CKPT]
        [--out-dir DIR] [--opset 18] [--img-size H W] [--context-length L]
        [--with-preprocessor] [--image-only] [--tol 1e-4]
        [--check-batch-size 3] [--seed 0] [--trust-checkpoint]
        [--random-weights] [--cfg-options key=value ...]

Writes ``image_encoder.onnx`` (``images`` -> ``img_feat``) and, for
text-image models, ``text_encoder.onnx`` (``texts`` -> ``text_feat``) to
``--out-dir`` (default ``work_dirs/onnx/<config name>``), both with a
dynamic ``batch`` axis and the L2-normalised features ``predict`` produces,
plus ``export_summary.json``. Each graph is then run by onnxruntime on a
random batch of another size and compared with PyTorch (and with the
model's ``predict``); the command exits with status 1 when the max absolute
difference exceeds ``--tol``. The contract a model follows to be exportable
is in ``mmreid_clip/deploy/onnx_export.py``.

``preprocessing.json`` next to them says what a deployment does to the
inputs first: image size, channel order, mean/std (or that the graph
normalises, ``--with-preprocessor``), the config's image pipeline, the
tokenizer (type, length, special ids, truncation; a WordPiece ``vocab.txt``
is copied alongside). It is printed at the end too.

A checkpoint is loaded safely (weights and mmengine's training state only;
``--trust-checkpoint`` for other files you trust). When the checkpoint holds
every weight, the CLIP/BERT files the config names are not needed (towers
whose file is missing are built without it). Without ``--checkpoint`` the
config's pretrained weights are exported; a model with randomly initialised
towers is refused unless ``--random-weights``.
"""
import argparse
import json
import os.path as osp
import sys

from mmengine.config import DictAction

from mmreid_clip.safe_load import UnsafeCheckpointError
from mmreid_clip.deploy import ExportError, ParityError, export_from_config
from mmreid_clip.deploy.onnx_export import DEFAULT_OPSET


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a mmreid_clip model to ONNX (image and text '
        'encoders) and check it with onnxruntime')
    parser.add_argument('config', help='config file')
    parser.add_argument('--checkpoint', help='weights to load (optional)')
    parser.add_argument(
        '--out-dir', help='output folder (default work_dirs/onnx/<config>)')
    parser.add_argument(
        '--opset',
        type=int,
        default=DEFAULT_OPSET,
        help=f'ONNX opset, >= 17 (default {DEFAULT_OPSET}, the exporter\'s '
        'own; 17 needs a conversion that fails on the zoo\'s graphs)')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input size when the model does not tell it')
    parser.add_argument(
        '--context-length',
        type=int,
        help='text length (default: the config\'s tokenizer)')
    parser.add_argument(
        '--with-preprocessor',
        action='store_true',
        help='put the data preprocessor in the image graph: it then takes '
        'uint8 images as the data pipeline packs them (BGR)')
    parser.add_argument(
        '--image-only',
        action='store_true',
        help='do not export the text encoder')
    parser.add_argument(
        '--tol',
        type=float,
        default=1e-4,
        help='max abs difference onnxruntime vs PyTorch (default 1e-4)')
    parser.add_argument(
        '--check-batch-size',
        type=int,
        default=3,
        help='rows of the random check batch (default 3; the export '
        'traces with 2, so this exercises the dynamic batch axis)')
    parser.add_argument('--seed', type=int, default=0, help='random batches')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='load a checkpoint with arbitrary pickled objects (only for '
        'files you trust)')
    parser.add_argument(
        '--random-weights',
        action='store_true',
        help='export even when no checkpoint is given and the config builds '
        'towers with random weights (to test the export path)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    kwargs = dict(
        with_preprocessor=args.with_preprocessor,
        export_text=not args.image_only,
        opset=args.opset,
        tol=args.tol,
        check_batch_size=args.check_batch_size,
        seed=args.seed,
        img_size=args.img_size,
        context_length=args.context_length)
    try:
        results = export_from_config(
            args.config,
            checkpoint=args.checkpoint,
            out_dir=args.out_dir,
            cfg_options=args.cfg_options,
            trust_checkpoint=args.trust_checkpoint,
            random_weights=args.random_weights,
            **kwargs)
    except ParityError as err:
        print(f'ONNX parity check FAILED: {err}', file=sys.stderr)
        return 1
    except (ExportError, FileNotFoundError, UnsafeCheckpointError) as err:
        print(f'export_onnx: {err}', file=sys.stderr)
        return 1
    print(json.dumps({k: r.to_dict() for k, r in results.items()}, indent=2))
    out_dir = osp.dirname(next(iter(results.values())).path)
    meta = osp.join(out_dir, 'preprocessing.json')
    if osp.isfile(meta):
        print(f'\npreprocessing ({meta}):')
        with open(meta) as f:
            print(f.read())
    return 0


if __name__ == '__main__':
    sys.exit(main())
