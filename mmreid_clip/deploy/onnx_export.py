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
"""
import json
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import print_log

__all__ = [
    'IMAGE_EXPORT_METHODS', 'TEXT_EXPORT_METHODS', 'ExportError',
    'ExportResult', 'ImageFeatureEncoder', 'ParityError', 'TextFeatureEncoder',
    'TextInputSpec', 'check_parity', 'export_encoder', 'export_from_config',
    'export_model', 'has_text_branch', 'infer_image_size', 'infer_text_spec',
    'predict_features', 'random_images', 'random_texts'
]

#: Model methods the image graph is taken from, in order of preference.
IMAGE_EXPORT_METHODS = ('encode_image_for_export', 'extract_img_feat')
#: Model methods the text graph is taken from, in order of preference.
TEXT_EXPORT_METHODS = ('encode_text_for_export', 'extract_text_feat')
MIN_OPSET = 17
DEFAULT_OPSET = 18
#: Batch size of the example torch.export traces with: sizes 0 and 1 are
#: specialised by torch.export, so they cannot stand for a dynamic axis.
EXPORT_BATCH = 2
#: Weights above this size go to an external data file (protobuf's limit is
#: 2 GiB per file).
EXTERNAL_DATA_BYTES = 1800 * 2**20
BATCH_AXIS = 'batch'


class ParityError(AssertionError):
    """onnxruntime (or ``predict``) disagrees with the exported module."""


class ExportError(RuntimeError):
    """The model cannot be traced into a graph with a dynamic batch axis."""


# --------------------------------------------------------------------------
# what to export


def _extract_feat_fallback(model: nn.Module,
                           modality: str) -> Optional[Tuple[str, str]]:
    """(input key, output key) of ``extract_feat`` for ``modality``."""
    if not callable(getattr(model, 'extract_feat', None)):
        return None
    if modality == 'text' and getattr(model, 'text_encoder', None) is None:
        return None
    if modality == 'image':
        return 'images', 'img_feats'
    return 'texts', 'text_feats'


def _find_source(model: nn.Module, modality: str) -> Optional[str]:
    """Name of the feature source of ``modality`` (module docstring)."""
    methods = (
        IMAGE_EXPORT_METHODS if modality == 'image' else TEXT_EXPORT_METHODS)
    for name in methods:
        if callable(getattr(model, name, None)):
            return name
    keys = _extract_feat_fallback(model, modality)
    if keys is not None:
        return f"extract_feat({{'{keys[0]}': ...}})['{keys[1]}']"
    return None


def has_text_branch(model: nn.Module) -> bool:
    """Whether the model has a text encoder the exporter can reach."""
    return _find_source(model, 'text') is not None


class _FeatureEncoder(nn.Module):
    """One modality of ``model`` as ``inputs -> L2-normalised features``."""

    modality = ''

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        source = _find_source(model, self.modality)
        if source is None:
            methods = (
                IMAGE_EXPORT_METHODS
                if self.modality == 'image' else TEXT_EXPORT_METHODS)
            raise TypeError(
                f'{type(model).__name__} has no {self.modality} feature '
                f'method to export: define one of {", ".join(methods)} or '
                f'extract_feat (see mmreid_clip/deploy/onnx_export.py)')
        self.model = model
        self.source = source

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if not self.source.startswith('extract_feat('):
            feats = getattr(self.model, self.source)(x)
        else:
            in_key, out_key = _extract_feat_fallback(self.model, self.modality)
            out = self.model.extract_feat({in_key: x})
            feats = out.get(out_key) if isinstance(out, dict) else None
            if feats is None:
                raise TypeError(
                    f'{type(self.model).__name__}.extract_feat did not '
                    f'return a dict with {out_key!r}')
        if not isinstance(feats, torch.Tensor) or feats.dim() != 2:
            raise TypeError(
                f'{type(self.model).__name__}.{self.source} must return a '
                f'B x D tensor, got '
                f'{getattr(feats, "shape", type(feats).__name__)}')
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # predict L2-normalises with F.normalize's defaults; so do we
        return F.normalize(self._features(x), dim=-1)


class ImageFeatureEncoder(_FeatureEncoder):
    """``images -> img_feat`` of a model, the module the image graph holds.

    Args:
        model (nn.Module): The retriever / ReID model, in eval mode.
        with_preprocessor (bool): Run the model's data preprocessor first,
            so the graph takes images as the data pipeline packs them
            (``B x 3 x H x W`` uint8, BGR for mmcv's loader) instead of
            normalised float32 images. Defaults to False.

    Call ``encoder(images)`` -> ``B x D`` unit-norm features.
    """

    modality = 'image'

    def __init__(self,
                 model: nn.Module,
                 with_preprocessor: bool = False) -> None:
        super().__init__(model)
        self.with_preprocessor = with_preprocessor
        if with_preprocessor and getattr(model, 'data_preprocessor',
                                         None) is None:
            raise TypeError(f'{type(model).__name__} has no data_preprocessor'
                            ' to put in the graph')

    def _preprocess(self, images: torch.Tensor) -> torch.Tensor:
        batch = {'inputs': {'images': images}, 'data_samples': None}
        out = self.model.data_preprocessor(batch, False)
        inputs = out['inputs']
        images = inputs['images'] if isinstance(inputs, dict) else inputs
        if not images.is_floating_point():
            raise TypeError(
                f'{type(self.model.data_preprocessor).__name__} does not '
                'turn images into float tensors; export without '
                'with_preprocessor')
        return images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images -> ``B x D`` L2-normalised retrieval features."""
        if self.with_preprocessor:
            images = self._preprocess(images)
        return super().forward(images)


class TextFeatureEncoder(_FeatureEncoder):
    """``texts -> text_feat`` of a model, the module the text graph holds.

    Args:
        model (nn.Module): The retriever, in eval mode.

    Call ``encoder(texts)`` with ``B x L`` int64 token ids -> ``B x D``
    unit-norm features.
    """

    modality = 'text'


# --------------------------------------------------------------------------
# input shapes and example batches


@dataclass
class TextInputSpec:
    """What the text graph takes: token ids of one tokenizer.

    Attributes:
        context_length (int): ``L``, the length of every row.
        vocab_size (int): Ids lie in ``[0, vocab_size)``.
        bos_token_id (int): First id of a row.
        eos_token_id (int): Id after the last content token.
        pad_token_id (int): Id of the positions after the end token.
        tokenizer (dict, optional): The config's tokenizer, recorded in the
            graph's metadata.
    """

    context_length: int
    vocab_size: int
    bos_token_id: int
    eos_token_id: int
    pad_token_id: int
    tokenizer: Optional[dict] = None


def _pair_attr(module: Optional[nn.Module],
               name: str) -> Optional[Tuple[int, int]]:
    value = getattr(module, name, None) if module is not None else None
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, int) for v in value)):
        return int(value[0]), int(value[1])
    return None


def infer_image_size(model: nn.Module) -> Tuple[int, int]:
    """The ``(H, W)`` input size of the model's image encoder.

    Read from ``img_size`` of ``model.image_encoder`` or ``model.backbone``
    (the open_clip towers set it; the positional embedding is built for it).

    Raises:
        ValueError: neither exists; pass the size explicitly.
    """
    for name in ('image_encoder', 'backbone'):
        size = _pair_attr(getattr(model, name, None), 'img_size')
        if size is not None:
            return size
    raise ValueError(
        f'cannot tell the input size of {type(model).__name__}: neither '
        'model.image_encoder.img_size nor model.backbone.img_size exists; '
        'pass img_size=(H, W) (--img-size H W)')


def _tokenizer_cfg(cfg: Optional[Config]) -> Optional[dict]:
    """The ``TokenizeCaption`` tokenizer of the config's eval pipeline."""
    if cfg is None:
        return None
    for loader in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        for step in dataset.get('text_pipeline') or []:
            if step.get('type') == 'TokenizeCaption':
                # the transform's default tokenizer
                return dict(
                    step.get('tokenizer')
                    or dict(type='OpenCLIPTokenizer', context_length=77))
    return None


def infer_text_spec(model: nn.Module,
                    cfg: Optional[Config] = None,
                    context_length: Optional[int] = None) -> TextInputSpec:
    """The token-id input of the model's text graph.

    The length and the special ids come from the config's
    ``TokenizeCaption`` (test, then val, then train pipeline). When the
    tokenizer cannot be built (e.g. a WordPiece ``vocab_file`` that is not on
    this machine) its ``context_length`` is still used and the special ids
    follow CLIP's layout (start = V-2, end = V-1, pad = 0); they only shape
    the example batches, never the graph.

    Args:
        model (nn.Module): A model with a ``text_encoder``.
        cfg (Config, optional): Its config.
        context_length (int, optional): Overrides the tokenizer's length.
    """
    encoder = getattr(model, 'text_encoder', None)
    if encoder is None:
        raise ValueError(f'{type(model).__name__} has no text_encoder')
    # imported here, as the module's other mmreid_clip imports: the model
    # package (mmpretrain) is not needed to load an exported graph
    from mmreid_clip.models.utils.vocab import text_vocab_size
    vocab = text_vocab_size(encoder)
    tok_cfg = _tokenizer_cfg(cfg)
    length = context_length or (tok_cfg
                                or {}).get('context_length') or (getattr(
                                    encoder, 'context_length', None))
    if not isinstance(length, int) or length < 3:
        raise ValueError(f'no usable text length ({length!r}): pass '
                         'context_length (--context-length)')
    specials = (vocab - 2, vocab - 1, 0)
    if tok_cfg is not None:
        from mmreid_clip.registry import TOKENIZER
        try:
            tok = TOKENIZER.build(dict(tok_cfg))
            specials = (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
        except (OSError, ValueError, KeyError, ImportError) as err:
            print_log(
                f'tokenizer {tok_cfg.get("type")} cannot be built ({err}); '
                'the example token ids use CLIP\'s special-id layout',
                logger='current',
                level=30)
    return TextInputSpec(length, vocab, *specials, tokenizer=tok_cfg)


def random_images(num: int,
                  img_size: Sequence[int],
                  uint8: bool = False,
                  seed: int = 0) -> torch.Tensor:
    """A random image batch, ``num x 3 x H x W``.

    Args:
        num (int): Batch size.
        img_size (Sequence[int]): ``(H, W)``.
        uint8 (bool): Pixel values as packed by the data pipeline (uint8)
            instead of normalised float32 (standard normal). Defaults to
            False.
        seed (int): Seed of a private generator. Defaults to 0.
    """
    gen = torch.Generator().manual_seed(seed)
    shape = (num, 3, int(img_size[0]), int(img_size[1]))
    if uint8:
        return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    return torch.randn(shape, generator=gen)


def random_texts(num: int, spec: TextInputSpec, seed: int = 0) -> torch.Tensor:
    """Random captions in the tokenizer's layout, ``num x L`` int64.

    Each row is ``[bos] c_1 .. c_n [eos] [pad] ...`` with content ids drawn
    from the vocabulary minus the special ids. The first row has one content
    token (mostly padding: tied attention scores, which CFine's token
    selection must break the same way in both runtimes), the last row fills
    the whole context; the others have random lengths.

    Args:
        num (int): Batch size.
        spec (TextInputSpec): Length, vocabulary and special ids.
        seed (int): Seed of a private generator. Defaults to 0.
    """
    gen = torch.Generator().manual_seed(seed)
    length = spec.context_length
    special = {spec.bos_token_id, spec.eos_token_id, spec.pad_token_id}
    allowed = torch.tensor(
        [i for i in range(spec.vocab_size) if i not in special])
    if allowed.numel() == 0:
        raise ValueError('the vocabulary has no content ids')
    texts = torch.full((num, length), spec.pad_token_id, dtype=torch.long)
    sizes = torch.randint(1, length - 1, (num, ), generator=gen)
    sizes[0] = 1
    if num > 1:
        sizes[-1] = length - 2
    for row, size in enumerate(sizes.tolist()):
        pick = torch.randint(0, allowed.numel(), (size, ), generator=gen)
        texts[row, 0] = spec.bos_token_id
        texts[row, 1:size + 1] = allowed[pick]
        texts[row, size + 1] = spec.eos_token_id
    return texts


# --------------------------------------------------------------------------
# export


def _sort_stable(self,
                 stable: Optional[bool] = None,
                 dim: int = -1,
                 descending: bool = False):
    """``aten::sort.stable`` as ONNX TopK over the whole axis.

    TopK breaks ties by the lower index (ONNX spec), which is exactly a
    stable sort; CFine's token selection (``torch.sort(stable=True)``)
    depends on that order for tied attention scores.
    """
    from onnxscript import opset18 as op
    k = (
        op.Shape(self, start=dim) if dim == -1 else op.Shape(
            self, start=dim, end=dim + 1))
    return op.TopK(self, k, axis=dim, largest=1 if descending else 0, sorted=1)


def _translation_table() -> dict:
    return {torch.ops.aten.sort.stable: _sort_stable}


def _is_data_dependent(err: BaseException) -> bool:
    from torch.fx.experimental.symbolic_shapes import \
        GuardOnDataDependentSymNode
    while err is not None:
        if isinstance(err, GuardOnDataDependentSymNode) or ('data-dependent'
                                                            in str(err)):
            return True
        err = err.__cause__ or err.__context__
    return False


def _value_check_location(err: BaseException) -> str:
    """The user-code lines torch.export names in a data-dependent error."""
    text = str(err).splitlines()
    header = 'The following call raised this error:'
    if header in text:
        lines = []
        for line in text[text.index(header) + 1:]:
            if not line.strip():
                break
            lines.append(line.strip())
    else:
        lines = [
            line.strip() for line in text
            if 'code:' in line or line.strip().startswith('File ')
        ]
    return ': '.join(dict.fromkeys(lines)) or (text or ['?'])[0]


def _export_program(module: nn.Module,
                    example: torch.Tensor) -> torch.export.ExportedProgram:
    dynamic = ({0: torch.export.Dim(BATCH_AXIS, min=1)}, )
    try:
        return torch.export.export(
            module, (example, ), dynamic_shapes=dynamic, strict=False)
    except Exception as err:  # torch.export raises several types
        if not _is_data_dependent(err):
            raise
        # draft_export would fix the values on the example batch, but it
        # also fixes the batch axis and takes minutes: refuse instead.
        raise ExportError(
            f'{type(module).__name__}: the model reads tensor values in '
            f'Python ({_value_check_location(err)}), which torch.export '
            'cannot trace. Skip such input checks while exporting, e.g. '
            '`if not torch.compiler.is_exporting() and ...`') from err


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
        program = _export_program(module, example)
        onnx_program = torch.onnx.export(
            program, (example, ),
            dynamo=True,
            opset_version=opset,
            input_names=[input_name],
            output_names=[output_name],
            custom_translation_table=_translation_table(),
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


def _ort_session(path: str):
    import onnxruntime as ort
    return ort.InferenceSession(path, providers=['CPUExecutionProvider'])


def check_parity(module: nn.Module,
                 onnx_path: str,
                 inputs: torch.Tensor,
                 tol: float = 1e-4) -> float:
    """Run ``inputs`` through onnxruntime and ``module``; compare.

    Args:
        module (nn.Module): The exported module.
        onnx_path (str): Its ``.onnx`` file.
        inputs (Tensor): A batch (any size: the batch axis is dynamic).
        tol (float): Largest allowed absolute difference. Defaults to 1e-4.

    Returns:
        float: The max absolute difference.

    Raises:
        ParityError: shapes differ, a value is not finite, or the
            difference exceeds ``tol``; the message names the file.
    """
    session = _ort_session(onnx_path)
    name = session.get_inputs()[0].name
    out = session.run(None, {name: inputs.numpy()})[0]
    with torch.no_grad():
        ref = module.eval()(inputs).numpy()
    if out.shape != ref.shape:
        raise ParityError(f'{onnx_path}: onnxruntime output {out.shape} != '
                          f'PyTorch {ref.shape} for a batch of '
                          f'{inputs.shape[0]}')
    diff = float(np.abs(out.astype(np.float64) - ref).max(initial=0.0))
    if not np.isfinite(out).all() or not diff <= tol:
        raise ParityError(f'{onnx_path}: max |onnxruntime - PyTorch| = '
                          f'{diff:.3g} > tol {tol:g} on a batch of '
                          f'{inputs.shape[0]}')
    return diff


def predict_features(
        model: nn.Module,
        images: Optional[torch.Tensor] = None,
        texts: Optional[torch.Tensor] = None,
        with_preprocessor: bool = False) -> Dict[str, torch.Tensor]:
    """``img_feat`` / ``text_feat`` as the model's ``predict`` sets them.

    Runs ``forward(mode='predict')`` (through the data preprocessor when
    ``with_preprocessor``) on data samples that only say which modality they
    carry (``has_image`` / ``has_text``), as the text-image collate does.

    Returns:
        dict: ``'img_feat'`` (N_i x D) and/or ``'text_feat'`` (N_t x D).
    """
    from mmpretrain.structures import DataSample
    inputs, samples = {}, []
    if images is not None:
        inputs['images'] = images
        samples += [
            DataSample(metainfo=dict(has_image=True, has_text=False))
            for _ in range(images.shape[0])
        ]
    if texts is not None:
        inputs['texts'] = texts
        samples += [
            DataSample(metainfo=dict(has_image=False, has_text=True))
            for _ in range(texts.shape[0])
        ]
    model.eval()
    with torch.no_grad():
        if with_preprocessor:
            out = model.test_step(dict(inputs=inputs, data_samples=samples))
        else:
            out = model(inputs, samples, mode='predict')
    n_img = 0 if images is None else images.shape[0]
    feats = {}
    if images is not None:
        feats['img_feat'] = torch.stack([s.img_feat for s in out[:n_img]])
    if texts is not None:
        feats['text_feat'] = torch.stack([s.text_feat for s in out[n_img:]])
    return feats


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


def _preprocess_meta(model: nn.Module) -> Dict[str, Any]:
    dp = getattr(model, 'data_preprocessor', None)
    meta = {'type': type(dp).__name__}
    for key in ('mean', 'std'):
        value = getattr(dp, key, None)
        if isinstance(value, torch.Tensor):
            meta[key] = [round(v, 6) for v in value.flatten().tolist()]
    if hasattr(dp, 'to_rgb'):
        meta['to_rgb'] = bool(dp.to_rgb)
    return meta


def _check_predict(model: nn.Module, onnx_path: str, modality: str,
                   batch: torch.Tensor, with_preprocessor: bool,
                   tol: float) -> Tuple[Optional[float], str]:
    key = 'images' if modality == 'image' else 'texts'
    try:
        feats = predict_features(
            model, **{key: batch}, with_preprocessor=with_preprocessor)
    except Exception as err:  # any model-specific predict requirement
        return None, f'not run: predict failed on plain data samples ({err})'
    ref = feats['img_feat' if modality == 'image' else 'text_feat'].numpy()
    session = _ort_session(onnx_path)
    out = session.run(None, {session.get_inputs()[0].name: batch.numpy()})[0]
    diff = float(np.abs(out.astype(np.float64) - ref).max(initial=0.0))
    if out.shape != ref.shape or not diff <= tol:
        raise ParityError(
            f'{onnx_path}: the graph does not compute what predict puts in '
            f'{"img_feat" if modality == "image" else "text_feat"} (max '
            f'diff {diff:.3g}, shapes {out.shape} vs {ref.shape}): the '
            f'export method {modality!r} breaks the contract of '
            'mmreid_clip/deploy/onnx_export.py')
    return diff, 'passed'


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
    preprocess = _preprocess_meta(model)
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
        pred_diff, pred_status = _check_predict(model, path, modality, batch,
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


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def preprocessing_metadata(model: nn.Module,
                           cfg: Config,
                           results: Dict[str, ExportResult],
                           out_dir: str,
                           with_preprocessor: bool = False) -> Dict[str, Any]:
    """What a deployment must do to inputs before the graphs, as JSON.

    ``image``: the input size, the channel order the graph expects, the
    normalisation (in the graph or to apply) and the config's test image
    pipeline (decode, resize: size, interpolation, backend). ``text``: the
    tokenizer (type, context length, truncation, special ids) and the
    config's text pipeline; a WordPiece ``vocab.txt`` is copied next to
    the graphs and named here.

    Args:
        model (nn.Module): The exported model.
        cfg (Config): Its config.
        results (dict): :func:`export_model`'s results.
        out_dir (str): Where the graphs are (the vocabulary is copied
            there).
        with_preprocessor (bool): Whether the image graph normalises.
    """
    import shutil

    from mmreid_clip.apis.inference import eval_dataset_cfg
    try:
        ds = eval_dataset_cfg(cfg)
    except KeyError:
        ds = {}
    meta: Dict[str, Any] = {}
    if 'image' in results:
        pre = _preprocess_meta(model)
        to_rgb = bool(pre.get('to_rgb', False))
        meta['image'] = dict(
            onnx=osp.basename(results['image'].path),
            input=results['image'].input_name,
            input_dtype=results['image'].input_dtype,
            size_hw=list(results['image'].input_shape[2:]),
            channel_order=('BGR, uint8 0-255 as the pipeline decodes it; the'
                           ' graph converts and normalises'
                           if with_preprocessor else
                           ('RGB' if to_rgb else 'BGR') +
                           ', float32, normalised as below'),
            normalisation=dict(
                in_graph=with_preprocessor,
                bgr_to_rgb_first=to_rgb,
                mean=pre.get('mean'),
                std=pre.get('std'),
                formula='(x - mean) / std per channel, x on 0-255'),
            pipeline=_jsonable(ds.get('pipeline', [])))
    if 'text' in results:
        spec = infer_text_spec(model, cfg)
        tokenizer = dict(spec.tokenizer or {})
        vocab = tokenizer.get('vocab_file')
        if isinstance(vocab, str) and osp.isfile(vocab):
            shutil.copyfile(vocab, osp.join(out_dir, 'vocab.txt'))
            tokenizer['vocab_file_copy'] = 'vocab.txt'
        elif str(tokenizer.get('type', '')).startswith('OpenCLIP'):
            tokenizer['vocabulary'] = ('open_clip\'s SimpleTokenizer '
                                       '(bpe_simple_vocab_16e6.txt.gz, '
                                       'shipped with open_clip)')
        meta['text'] = dict(
            onnx=osp.basename(results['text'].path),
            input=results['text'].input_name,
            input_dtype=results['text'].input_dtype,
            context_length=spec.context_length,
            special_ids=dict(
                start=spec.bos_token_id,
                end=spec.eos_token_id,
                pad=spec.pad_token_id),
            tokenizer=_jsonable(tokenizer),
            text_pipeline=_jsonable(ds.get('text_pipeline', [])))
    meta['output'] = ('B x D float32, L2-normalised: cosine similarity is '
                      'the dot product')
    return meta


def export_from_config(config: Union[str, Config],
                       checkpoint: Optional[str] = None,
                       out_dir: Optional[str] = None,
                       cfg_options: Optional[dict] = None,
                       trust_checkpoint: bool = False,
                       random_weights: bool = False,
                       **kwargs) -> Dict[str, ExportResult]:
    """Build a model from a config, load a checkpoint, export and check it.

    The checkpoint goes through mmengine's loader with the project's safe
    ``torch.load`` patch (:mod:`mmreid_clip.compat`): only weights and
    mmengine's training state are unpickled unless ``trust_checkpoint``.
    It must match the model exactly (strict); towers whose pretrained file
    is missing are then built without it (the checkpoint holds their
    weights). Without a checkpoint the model keeps the weights its config
    gives it (``pretrained=``); a model with randomly initialised towers is
    refused unless ``random_weights``. ``export_summary.json`` in
    ``out_dir`` lists the results, ``preprocessing.json`` what to do to the
    inputs (:func:`preprocessing_metadata`; with the WordPiece vocabulary
    copied as ``vocab.txt``).

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): Weights to load.
        out_dir (str, optional): Defaults to
            ``work_dirs/onnx/<config name>``.
        cfg_options (dict, optional): Overrides merged into the config.
        trust_checkpoint (bool): Allow arbitrary pickled objects (only for
            files you trust). Defaults to False.
        random_weights (bool): Export a model whose towers have no
            pretrained weights and no checkpoint (e.g. to test the export).
            Defaults to False.
        **kwargs: Passed to :func:`export_model`.

    Raises:
        ExportError: no checkpoint and random towers, without
            ``random_weights``.

    Returns:
        dict: As :func:`export_model`.
    """
    from mmengine.runner.checkpoint import load_checkpoint

    from mmreid_clip.compat import apply_patches, trust_checkpoints
    from mmreid_clip.registry import MODELS
    from mmreid_clip.utils import missing_files, register_all_modules

    name = 'model'
    if isinstance(config, str):
        name = osp.splitext(osp.basename(config))[0]
        config = Config.fromfile(config)
    cfg = config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    apply_patches()
    register_all_modules(init_scope=True)
    from mmreid_clip.utils.pretrained import (drop_missing_pretrained,
                                              pretrained_towers)
    if checkpoint is not None and osp.isfile(checkpoint):
        from mmreid_clip.apis.inference import checkpoint_state_dict
        for note in drop_missing_pretrained(
                cfg.model, lambda: checkpoint_state_dict(checkpoint)):
            print_log(note, logger='current')
    elif checkpoint is None and not random_weights:
        towers = pretrained_towers(cfg.model)
        random = [key for key, value in towers if not value]
        if random or not towers:
            raise ExportError(
                'no checkpoint, and the config builds '
                f'{", ".join(random) or "the model"} without pretrained '
                'weights: the graphs would compute features of random '
                'weights. Pass --checkpoint CKPT, or --random-weights to '
                'export them anyway (e.g. to test the export path).')
    problems = missing_files(cfg, loaders=())
    if problems:
        raise FileNotFoundError(
            'The config names files that are not there:\n  - ' +
            '\n  - '.join(problems) + '\nOverride them with --cfg-options, '
            'e.g. model.image_encoder.pretrained=None when a checkpoint '
            'holds all the weights.')
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    model = MODELS.build(cfg.model)
    if checkpoint is None:
        model.init_weights()
    elif trust_checkpoint:
        with trust_checkpoints():
            load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    else:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    out_dir = out_dir or osp.join('work_dirs', 'onnx', name)
    metadata = dict(kwargs.pop('metadata', None) or {})
    metadata.setdefault('config', cfg.filename or name)
    metadata.setdefault('checkpoint', checkpoint or 'none (config weights)')
    results = export_model(
        model, out_dir, cfg=cfg, metadata=metadata, **kwargs)
    with open(osp.join(out_dir, 'export_summary.json'), 'w') as f:
        json.dump({k: r.to_dict() for k, r in results.items()}, f, indent=2)
    preprocessing = preprocessing_metadata(
        model, cfg, results, out_dir,
        kwargs.get('with_preprocessor', False))
    with open(osp.join(out_dir, 'preprocessing.json'), 'w') as f:
        json.dump(preprocessing, f, indent=2)
    return results
