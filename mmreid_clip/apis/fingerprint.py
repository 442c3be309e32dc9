"""What a model's features depend on, as short hashes
(:func:`model_fingerprint`): an index made by one model can be searched
with another whose fingerprint is equal.
"""
import hashlib
import json
from typing import Any, Dict

import torch
import torch.nn as nn
from mmengine.config import Config

from .inference_pipelines import eval_dataset_cfg


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def _digest(obj: Any) -> str:
    text = json.dumps(_plain(obj), sort_keys=True)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


def model_fingerprint(model: nn.Module) -> Dict[str, str]:
    """What the features of ``model`` depend on, as short hashes.

    Keys: ``weights`` (every tensor of the state dict: names, dtypes,
    shapes and values), ``model_cfg`` (``cfg.model``), ``image_pipeline``
    and ``text_pipeline`` (the inference transforms of the config), plus
    ``model_type``. Two models with equal fingerprints give equal features,
    so an index made by one can be searched with the other.

    Args:
        model (nn.Module): A model from :func:`init_model`.

    Returns:
        dict[str, str]: The fingerprint.
    """
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f'{name}|{t.dtype}|{tuple(t.shape)}'.encode('utf-8'))
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    cfg = getattr(model, 'cfg', None)
    out = dict(model_type=type(model).__name__, weights=h.hexdigest())
    if isinstance(cfg, Config):
        ds = eval_dataset_cfg(cfg)
        out.update(
            model_cfg=_digest(cfg.model),
            image_pipeline=_digest(ds.get('pipeline', [])),
            text_pipeline=_digest(ds.get('text_pipeline', [])))
    return out
