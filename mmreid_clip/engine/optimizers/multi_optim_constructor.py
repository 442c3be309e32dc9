"""One optimizer wrapper per named group of sub-modules."""
import copy
from typing import Dict, List, Optional

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict

from mmreid_clip.registry import OPTIM_WRAPPER_CONSTRUCTORS


def _get_submodule(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        children = sorted(n for n, _ in model.named_children())
        raise KeyError(
            f'optim_wrapper names module {name!r}, which the model '
            f'{type(model).__name__} does not have (or is None); its '
            f'top-level modules are {children}') from None


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MultiOptimWrapperConstructor:
    """Build an ``OptimWrapperDict`` with one wrapper per module group.

    MMEngine builds several optimizers only through a custom constructor
    (``Runner.build_optim_wrapper``). Two-stage / GAN-style models such as
    CLIP-ReID and CCAF (``docs/methods/ccaf.md`` §4, §9: stage-1 prompt
    optimiser,
    stage-2 encoder optimiser, CFM's clothes-prompt "examiner") name the
    sub-modules each optimizer owns::

        optim_wrapper = dict(
            constructor='MultiOptimWrapperConstructor',
            prompt=dict(modules=['id_prompt'], type='OptimWrapper',
                        optimizer=dict(type='Adam', lr=3.5e-4)),
            encoder=dict(modules=['image_encoder', 'head'],
                         optimizer=dict(type='Adam', lr=5e-6),
                         paramwise_cfg=dict(bias_lr_mult=2.0)))

    Each entry is built by MMEngine's ``DefaultOptimWrapperConstructor`` on
    a container of its modules, so ``paramwise_cfg`` keys see names such as
    ``image_encoder.visual.conv1.weight``. A parameter may belong to two
    groups (the stages never step both). An entry set to None is dropped,
    so a child config can remove an optimizer (``clothes_prompt=None`` in
    the ablations without CFM).

    Args:
        optim_wrapper_cfg: ``{name: wrapper cfg with 'modules'}``.
        paramwise_cfg: Not supported at this level (give it per entry).
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        if paramwise_cfg:
            raise ValueError('MultiOptimWrapperConstructor takes '
                             'paramwise_cfg per optimizer entry, not at the '
                             'top level')
        self.entries: Dict[str, dict] = {}
        for name, cfg in optim_wrapper_cfg.items():
            if cfg is None:
                continue
            if not isinstance(cfg, dict) or not cfg.get('modules'):
                raise ValueError(
                    f'optim_wrapper entry {name!r} must be a dict with a '
                    f'non-empty "modules" list, got {cfg!r}')
            self.entries[name] = copy.deepcopy(dict(cfg))
        if not self.entries:
            raise ValueError('optim_wrapper has no optimizer entries')

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if hasattr(model, 'module'):
            model = model.module
        wrappers = {}
        for name, cfg in self.entries.items():
            modules: List[str] = list(cfg.pop('modules'))
            paramwise = cfg.pop('paramwise_cfg', None)
            cfg.setdefault('type', 'OptimWrapper')
            group = nn.Module()
            for mod_name in modules:
                # '.' is not allowed in a child name; the flat name keeps
                # paramwise_cfg keys close to the model's own names
                group.add_module(
                    mod_name.replace('.', '__'),
                    _get_submodule(model, mod_name))
            if not any(True for _ in group.parameters()):
                raise ValueError(f'optim_wrapper entry {name!r}: modules '
                                 f'{modules} have no parameters')
            wrappers[name] = DefaultOptimWrapperConstructor(cfg,
                                                            paramwise)(group)
        return OptimWrapperDict(**wrappers)
