"""The config's inference transforms: which dataset config inference
reads its pipelines from (:func:`eval_dataset_cfg`), and the image, text,
packing and collate steps built from it once per model.
"""
import copy
import weakref
from functools import partial
from typing import Callable, Optional

import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.dataset import Compose
from mmengine.registry import FUNCTIONS as ROOT_FUNCTIONS
from mmengine.registry import DefaultScope

from mmreid_clip.datasets.transforms import PackReIDInputs
from mmreid_clip.registry import TRANSFORMS


def eval_dataset_cfg(cfg: Config) -> ConfigDict:
    """The dataset config whose pipelines inference reuses.

    ``test_dataloader.dataset``, else ``val_dataloader.dataset``; a dataset
    wrapper's inner ``dataset`` is followed. A config that trains without
    evaluation (e.g. ``clip-pretrain_synthpedes-tiny.py``, whose val and
    test loaders are None) still has the dataset configs' top-level
    ``test_pipeline`` (and ``text_pipeline``) variables: those are used,
    with the training dataset's ``pack`` if it sets one.

    Raises:
        KeyError: Neither loader has a dataset and there is no top-level
            ``test_pipeline``.
    """
    for key in ('test_dataloader', 'val_dataloader'):
        loader = cfg.get(key)
        if loader and loader.get('dataset'):
            ds = loader['dataset']
            while 'pipeline' not in ds and isinstance(ds.get('dataset'), dict):
                ds = ds['dataset']
            return ds
    if isinstance(cfg.get('test_pipeline'), (list, tuple)):
        ds = ConfigDict(pipeline=copy.deepcopy(cfg.test_pipeline))
        if isinstance(cfg.get('text_pipeline'), (list, tuple)):
            ds.text_pipeline = copy.deepcopy(cfg.text_pipeline)
        train = (cfg.get('train_dataloader') or {}).get('dataset') or {}
        if train.get('pack'):
            ds.pack = copy.deepcopy(train['pack'])
        return ds
    raise KeyError('the config has neither test_dataloader.dataset nor '
                   'val_dataloader.dataset (nor a top-level test_pipeline): '
                   'inference takes its image pipeline and tokenizer from '
                   'there')


def _eval_loader_cfg(cfg: Config) -> ConfigDict:
    for key in ('test_dataloader', 'val_dataloader'):
        if cfg.get(key) and cfg[key].get('dataset'):
            return cfg[key]
    # no evaluation loader (see eval_dataset_cfg): the training loader's
    # collate function batches the same packed items
    train = cfg.get('train_dataloader')
    if train and train.get('collate_fn'):
        return ConfigDict(collate_fn=copy.deepcopy(train['collate_fn']))
    return ConfigDict()


class _Pipelines:
    """The config's inference transforms for one model (built once)."""

    def __init__(self, cfg: Config) -> None:
        ds = eval_dataset_cfg(cfg)
        scope = cfg.get('default_scope', 'mmreid_clip')
        with DefaultScope.overwrite_default_scope(scope):
            image_tf = [self._build(t) for t in ds.get('pipeline', [])]
            text_tf = [self._build(t) for t in ds.get('text_pipeline', [])]
            if image_tf and type(image_tf[-1]).__name__.startswith('Pack'):
                # an mmpretrain-style pipeline packs by itself
                pack = None
            else:
                pack = self._build(
                    ds.get('pack', dict(type='PackTextImageInputs')))
        # arrays skip the loading transforms at the head of the pipeline
        skip = 0
        while skip < len(image_tf) and type(
                image_tf[skip]).__name__.startswith('LoadImage'):
            skip += 1
        self.has_image_pipeline = 'pipeline' in ds
        self.has_text_pipeline = bool(text_tf)
        self.image_from_file = Compose(image_tf)
        self.image_from_array = Compose(image_tf[skip:])
        self.text = Compose(text_tf)
        self.pack = pack
        # image-ReID pipelines pack identity/camera/outfit labels, which a
        # free image has not: it gets _UNLABELLED_REID_ITEM
        self.reid_items = any(
            isinstance(t, PackReIDInputs) for t in image_tf + [pack])
        self.collate = self._collate(_eval_loader_cfg(cfg))

    @staticmethod
    def _build(t):
        return TRANSFORMS.build(t) if isinstance(t, dict) else t

    @staticmethod
    def _collate(loader_cfg: ConfigDict) -> Callable:
        cfg = dict(loader_cfg.get('collate_fn', dict(type='pseudo_collate')))
        fn = cfg.pop('type')
        if isinstance(fn, str):
            name = fn
            fn = ROOT_FUNCTIONS.get(name)
            if fn is None:
                raise KeyError(f'collate_fn {name!r} of the config is not '
                               'registered in FUNCTIONS')
        return partial(fn, **cfg) if cfg else fn

    def finish(self, results: Optional[dict], where: str) -> dict:
        if results is None:
            raise ValueError(f'{where}: the pipeline dropped the item')
        return self.pack(results) if self.pack is not None else results


#: Labels of an image searched through the API: no identity, camera 0 (what
#: an SIE model sees for an unlabelled image), no outfit.
_UNLABELLED_REID_ITEM = dict(pid=-1, camid=0, clothes_id=-1, subset='query')

_PIPELINES: 'weakref.WeakKeyDictionary[nn.Module, _Pipelines]' = (
    weakref.WeakKeyDictionary())


def _pipelines(model: nn.Module) -> _Pipelines:
    cfg = getattr(model, 'cfg', None)
    if not isinstance(cfg, Config):
        raise AttributeError(
            f'{type(model).__name__} has no .cfg (a mmengine Config): build '
            'it with mmreid_clip.apis.init_model, or set model.cfg to the '
            'config it was built from')
    built = _PIPELINES.get(model)
    if built is None or built.cfg is not cfg:
        built = _Pipelines(cfg)
        built.cfg = cfg
        _PIPELINES[model] = built
    return built
