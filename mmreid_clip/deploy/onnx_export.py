"""ONNX export of a model's retrieval features, with an onnxruntime check.

The image and the text encoders are exported as two separate graphs, each
mapping a batch to the L2-normalised retrieval feature that ``predict`` puts
on the data samples (``img_feat`` / ``text_feat``, ``docs/design.md``), with
a dynamic batch axis named ``batch``.

Contract with the models (how the exporter finds the features):

Image graph, ``images`` (B x 3 x H x W, float32, already through the data
preprocessor unless ``with_preprocessor=True``) -> ``img_feat`` (B x D). The
first of these the model has is used:

1. ``model.encode_image_for_export(images) -> Tensor[B, D]``: the exact
   ``img_feat`` of ``predict``. Use it when ``predict`` does more than
   L2-normalise one feature (the exporter still L2-normalises the result,
   which leaves a unit vector unchanged).
2. ``model.extract_img_feat(images) -> Tensor[B, D]``: the retrieval feature
   before the L2 normalisation that ``predict`` applies
   (:class:`CLIPTextImageReID`; an image-only ReID model such as CCAF only
   needs this method).
3. ``model.extract_feat({'images': images})['img_feats']``, then L2
   normalisation (:class:`CFine`, whose features are already unit-norm).

Text graph, ``texts`` (B x L, int64 token ids of the config's
``TokenizeCaption``) -> ``text_feat`` (B x D): ``encode_text_for_export``,
then ``extract_text_feat``, then ``extract_feat({'texts': ...})['text_feats']``
(the last only when the model has a ``text_encoder``). A model with none of
them is image-only and gets no text graph.

Whatever the method, the features must be a function of the batch rows
alone (no cross-sample statistics in eval mode) so that the batch axis can
be dynamic; the export fails with a clear message if torch.export had to fix
the batch size. :func:`predict_features` runs the real ``predict`` path, so
the contract itself is checked by :func:`export_model` whenever ``predict``
accepts plain data samples.

Graphs are produced by ``torch.export`` (non-strict) and the ONNX exporter
of ``torch.onnx`` (``dynamo=True``) at opset 18, its own; lower opsets go
through onnx's version converter, which (torch 2.14, onnx 1.23) fails on the
zoo's graphs, and the export then stops saying so. The traced code must not
read tensor values in Python (``int(t.max())`` in an input check, say):
torch.export cannot trace that, and the export stops naming the line; skip
such checks under ``torch.compiler.is_exporting()``.

This module exports and checks (:func:`export_encoder`, :func:`export_model`);
the pieces it uses each have their own module: :mod:`.feature_encoders`
(which method, the wrapping modules), :mod:`.example_inputs` (input shapes
and random batches), :mod:`.torch_export` (tracing, its errors),
:mod:`.onnx_ops` (hand-translated ops) and :mod:`.parity` (onnxruntime and
``predict`` checks). Building a model from a config and exporting it is
:mod:`.from_config` (run by ``tools/deploy/export_onnx.py``).
"""
import json
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log

from .example_inputs import (TextInputSpec, infer_image_size, infer_text_spec,
                             random_images, random_texts)
from .feature_encoders import (IMAGE_EXPORT_METHODS, TEXT_EXPORT_METHODS,
                               ImageFeatureEncoder, TextFeatureEncoder,
                               has_text_branch)
from .onnx_ops import translation_table
from .parity import ParityError, check_parity, check_predict, \
    predict_features
from .torch_export import BATCH_AXIS, ExportError, export_program

# The names this module held before the split by job; the config driver
# (export_from_config) is resolved lazily, see __getattr__ below.
__all__ = [  # noqa: F822
    'IMAGE_EXPORT_METHODS', 'TEXT_EXPORT_METHODS', 'ExportError',
    'ExportResult', 'ImageFeatureEncoder', 'ParityError', 'TextFeatureEncoder',
    'TextInputSpec', 'check_parity', 'export_encoder', 'export_from_config',
    'export_model', 'has_text_branch', 'infer_image_size', 'infer_text_spec',
    'predict_features', 'random_images', 'random_texts'
]

MIN_OPSET = 17
DEFAULT_OPSET = 18
#: Batch size of the example torch.export traces with: sizes 0 and 1 are
#: specialised by torch.export, so they cannot stand for a dynamic axis.
EXPORT_BATCH = 2
#: Weights above this size go to an external data file (protobuf's limit is
#: 2 GiB per file).
EXTERNAL_DATA_BYTES = 1800 * 2**20


def export_encoder(module: nn.Module,
                   example: torch.Tensor,
                   path: str,
                   input_name: str,
                   output_name: str,
                   opset: int = DEFAULT_OPSET,
                   metadata: Optional[Dict[str, str]] = None) -> int:
    """Export ``module`` (one tensor in, one out) to ``path``.

    The batch axis of the input and the output is dynamic and named
    ``batch``; every other axis is fixed by ``example``.

    Args:
        module (nn.Module): E.g. :class:`ImageFeatureEncoder`, eval mode.
        example (Tensor): An example batch of more than one row.
        path (str): Output ``.onnx`` file.
        input_name (str): Name of the graph input.
        output_name (str): Name of the graph output.
        opset (int): ONNX opset, >= 17. Defaults to 18.
        metadata (dict, optional): String pairs for the model's
            ``metadata_props``.

    Returns:
        int: The opset of the written graph.

    Raises:
        ExportError: the model reads tensor values in Python (e.g. an
            input check), or its features depend on the batch size.
        ValueError: the graph cannot be converted to ``opset``.
    """
    import onnx
    if opset < MIN_OPSET:
        raise ValueError(f'opset must be >= {MIN_OPSET}, got {opset}')
    if example.shape[0] < 2:
        raise ValueError('the example batch needs at least 2 rows so that '
                         'the batch axis stays symbolic')
    module.eval()
    with torch.no_grad():
        program = export_program(module, example)
        onnx_program = torch.onnx.export(
            program, (example, ),
            dynamo=True,
            opset_version=opset,
            input_names=[input_name],
            output_names=[output_name],
            custom_translation_table=translation_table(),
            optimize=True,
            verbose=False)
    graph = onnx_program.model.graph
    batch = graph.inputs[0].shape[0]
    if isinstance(batch, int) or graph.outputs[0].shape[0] != batch:
        raise ExportError(
            f'{type(module).__name__}: the exported graph fixed the batch '
            f'axis ({graph.inputs[0].shape} -> {graph.outputs[0].shape}); '
            'the features must not depend on the batch size')
    written = onnx_program.model.opset_imports.get('')
    if written != opset:
        # the exporter keeps its own opset when the version converter fails
        raise ValueError(
            f'{type(module).__name__}: the ONNX version converter '
            f'could not produce opset {opset} (got {written}); '
            f'use opset >= {written}')
    onnx_program.rename_axes({batch: BATCH_AXIS})
    onnx_program.model.metadata_props.update({
        k: str(v)
        for k, v in (metadata or {}).items()
    })
    n_bytes = sum(t.numel() * t.element_size()
                  for t in (*module.parameters(), *module.buffers()))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    onnx_program.save(path, external_data=n_bytes > EXTERNAL_DATA_BYTES)
    onnx.checker.check_model(path)
    return written


@dataclass
class ExportResult:
    """What :func:`export_model` wrote and checked for one modality.

    Attributes:
        modality (str): ``'image'`` or ``'text'``.
        path (str): The ``.onnx`` file.
        input_name (str): ``'images'`` or ``'texts'``.
        input_shape (list): ``['batch', ...]``.
        input_dtype (str): ``'float32'``, ``'uint8'`` or ``'int64'``.
        output_name (str): ``'img_feat'`` or ``'text_feat'``.
        feature_dim (int): D.
        source (str): The model method the graph was taken from.
        opset (int): ONNX opset.
        max_abs_diff (float): onnxruntime vs PyTorch on the check batch.
        check_batch_size (int): Rows of the check batch (the export used
            :data:`EXPORT_BATCH`).
        predict_max_abs_diff (float, optional): onnxruntime vs the model's
            ``predict``; None when ``predict`` could not run on plain data
            samples (see ``predict_check``).
        predict_check (str): ``'passed'`` or why it did not run.
    """

    modality: str
    path: str
    input_name: str
    input_shape: List[Union[str, int]]
    input_dtype: str
    output_name: str
    feature_dim: int
    source: str
    opset: int
    max_abs_diff: float = float('nan')
    check_batch_size: int = 0
    predict_max_abs_diff: Optional[float] = None
    predict_check: str = 'not run'

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def preprocess_meta(model: nn.Module) -> Dict[str, Any]:
    """The data preprocessor's type, mean, std and ``to_rgb``."""
    dp = getattr(model, 'data_preprocessor', None)
    meta = {'type': type(dp).__name__}
    for key in ('mean', 'std'):
        value = getattr(dp, key, None)
        if isinstance(value, torch.Tensor):
            meta[key] = [round(v, 6) for v in value.flatten().tolist()]
    if hasattr(dp, 'to_rgb'):
        meta['to_rgb'] = bool(dp.to_rgb)
    return meta


def export_model(
        model: nn.Module,
        out_dir: str,
        img_size: Optional[Sequence[int]] = None,
        text_spec: Optional[TextInputSpec] = None,
        cfg: Optional[Config] = None,
        context_length: Optional[int] = None,
        with_preprocessor: bool = False,
        export_text: bool = True,
        opset: int = DEFAULT_OPSET,
        tol: float = 1e-4,
        check_batch_size: int = 3,
        seed: int = 0,
        metadata: Optional[Dict[str, str]] = None) -> Dict[str, ExportResult]:
    """Export the image (and text) graph of ``model`` and check them.

    Writes ``image_encoder.onnx`` and, when the model has a text branch,
    ``text_encoder.onnx`` to ``out_dir``; each is then run by onnxruntime on
    a fresh random batch of ``check_batch_size`` rows (not the export's
    batch size, so the dynamic axis is exercised) and compared with PyTorch,
    and with ``predict`` where it accepts plain data samples.

    Args:
        model (nn.Module): The model, weights loaded.
        out_dir (str): Output folder.
        img_size (Sequence[int], optional): ``(H, W)``; default
            :func:`infer_image_size`.
        text_spec (TextInputSpec, optional): Default
            :func:`infer_text_spec` with ``cfg`` and ``context_length``.
        cfg (Config, optional): The model's config (tokenizer lookup).
        context_length (int, optional): Text length overriding the
            tokenizer's (ignored with ``text_spec``).
        with_preprocessor (bool): Put the data preprocessor in the image
            graph (uint8 input). Defaults to False.
        export_text (bool): Export the text graph when there is one.
            Defaults to True.
        opset (int): ONNX opset (>= 17). Defaults to 18.
        tol (float): Parity tolerance. Defaults to 1e-4.
        check_batch_size (int): Rows of the check batches. Defaults to 3.
        seed (int): Seed of the random batches. Defaults to 0.
        metadata (dict, optional): Extra ``metadata_props`` of both graphs.

    Returns:
        dict: ``'image'`` (and ``'text'``) -> :class:`ExportResult`.

    Raises:
        ParityError: a graph disagrees with PyTorch or ``predict``.
    """
    if check_batch_size < 1:
        raise ValueError(f'check_batch_size must be >= 1, got '
                         f'{check_batch_size}')
    model.eval()
    common = {f'mmreid_clip.{k}': v for k, v in (metadata or {}).items()}
    common['mmreid_clip.model'] = type(model).__name__
    jobs = []

    size = tuple(img_size) if img_size is not None else infer_image_size(model)
    image_module = ImageFeatureEncoder(model, with_preprocessor)
    preprocess = preprocess_meta(model)
    preprocess['in_graph'] = with_preprocessor
    jobs.append(('image', image_module, 'images', 'img_feat',
                 lambda n, s: random_images(n, size, with_preprocessor, s), {
                     'mmreid_clip.input':
                     ('uint8 B x 3 x H x W as the data pipeline packs it '
                      '(BGR from mmcv); the data preprocessor runs in the '
                      'graph' if with_preprocessor else
                      'float32 B x 3 x H x W after the data preprocessor '
                      '(see mmreid_clip.preprocess)'),
                     'mmreid_clip.img_size':
                     json.dumps(list(size)),
                     'mmreid_clip.preprocess':
                     json.dumps(preprocess),
                 }))
    if export_text and has_text_branch(model):
        spec = text_spec or infer_text_spec(model, cfg, context_length)
        jobs.append(('text', TextFeatureEncoder(model), 'texts', 'text_feat',
                     lambda n, s: random_texts(n, spec, s), {
                         'mmreid_clip.input':
                         f'int64 B x {spec.context_length} token ids',
                         'mmreid_clip.tokenizer': json.dumps(spec.tokenizer),
                     }))

    results = {}
    for i, (modality, module, in_name, out_name, make,
            meta) in enumerate(jobs):
        path = osp.join(out_dir, f'{modality}_encoder.onnx')
        example = make(EXPORT_BATCH, seed + 2 * i)
        meta = {
            **common,
            **meta,
            'mmreid_clip.modality': modality,
            'mmreid_clip.output':
            f'{out_name}: B x D, L2-normalised (as predict sets it)',
            'mmreid_clip.source': module.source,
        }
        written = export_encoder(module, example, path, in_name, out_name,
                                 opset, meta)
        batch = make(check_batch_size, seed + 2 * i + 1)
        diff = check_parity(module, path, batch, tol)
        pred_diff, pred_status = check_predict(model, path, modality, batch,
                                               with_preprocessor, tol)
        with torch.no_grad():
            dim = int(module(example).shape[1])
        results[modality] = ExportResult(
            modality=modality,
            path=path,
            input_name=in_name,
            input_shape=[BATCH_AXIS, *example.shape[1:]],
            input_dtype=str(example.dtype).replace('torch.', ''),
            output_name=out_name,
            feature_dim=dim,
            source=module.source,
            opset=written,
            max_abs_diff=diff,
            check_batch_size=check_batch_size,
            predict_max_abs_diff=pred_diff,
            predict_check=pred_status)
        print_log(
            f'{path}: {in_name} {results[modality].input_shape} -> '
            f'{out_name} [batch, {dim}] from {module.source}; max |ort - '
            f'torch| = {diff:.2e} on {check_batch_size} rows; predict check '
            f'{pred_status}',
            logger='current')
    return results


def __getattr__(name: str):
    # The config driver builds on this module, so it cannot be imported at
    # the top; old imports of it from here still resolve.
    if name in ('export_from_config', 'preprocessing_metadata'):
        from . import from_config
        return getattr(from_config, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
