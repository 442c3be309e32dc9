"""Checking an exported graph: onnxruntime against PyTorch and ``predict``.

:func:`check_parity` runs a batch through onnxruntime and the exported
module; :func:`check_predict` compares the graph with the features the
model's real ``predict`` path puts on the data samples
(:func:`predict_features`), which checks the export contract itself.
"""
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

__all__ = [
    'ParityError', 'check_parity', 'check_predict', 'ort_session',
    'predict_features'
]


class ParityError(AssertionError):
    """onnxruntime (or ``predict``) disagrees with the exported module."""


def ort_session(path: str):
    """An onnxruntime CPU session of ``path``."""
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
    session = ort_session(onnx_path)
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


def check_predict(model: nn.Module, onnx_path: str, modality: str,
                  batch: torch.Tensor, with_preprocessor: bool,
                  tol: float) -> Tuple[Optional[float], str]:
    """onnxruntime against the model's ``predict`` on ``batch``.

    Returns:
        ``(max_abs_diff, 'passed')``, or ``(None, why)`` when ``predict``
        cannot run on plain data samples.

    Raises:
        ParityError: the graph does not compute what ``predict`` sets.
    """
    key = 'images' if modality == 'image' else 'texts'
    try:
        feats = predict_features(
            model, **{key: batch}, with_preprocessor=with_preprocessor)
    except Exception as err:  # any model-specific predict requirement
        return None, f'not run: predict failed on plain data samples ({err})'
    ref = feats['img_feat' if modality == 'image' else 'text_feat'].numpy()
    session = ort_session(onnx_path)
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
