"""Export driver from a config file: build, load, export, describe inputs.

:func:`export_from_config` is what ``tools/deploy/export_onnx.py`` runs:
it builds the model of a config, loads a checkpoint safely, exports and
checks the graphs (:func:`~.onnx_export.export_model`) and writes
``export_summary.json`` and ``preprocessing.json``
(:func:`preprocessing_metadata`) next to them.
"""
import json
import os.path as osp
from typing import Any, Dict, Optional, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log

from .example_inputs import infer_text_spec
from .onnx_export import ExportResult, export_model, preprocess_meta
from .torch_export import ExportError

__all__ = ['export_from_config', 'preprocessing_metadata']


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
        pre = preprocess_meta(model)
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
