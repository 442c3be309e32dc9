"""Registries of mmreid_clip: children of mmpretrain's, under scope
``mmreid_clip``.

Every registry here is a child of the mmpretrain registry of the same name,
so configs with ``default_scope='mmreid_clip'`` can name our components and
mmpretrain's / mmengine's (optimizers, schedulers, hooks, transforms, ...)
without prefixes. ``locations`` lists the subpackages that register into each
registry; they are imported the first time the registry is queried. Lookups
walk up to the parents but do not trigger the parents' own ``locations``, so
mmpretrain's subpackages are listed here as well.
"""
from mmengine import registry as mmengine_registry
from mmengine.registry import Registry
from mmpretrain import registry as mmpretrain_registry

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS',
    'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'TASK_UTILS', 'TOKENIZER',
    'METRICS', 'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS', 'FUNCTIONS'
]

_SCOPE = 'mmreid_clip'


def _child(name: str, parent: Registry, locations: list) -> Registry:
    return Registry(name, parent=parent, scope=_SCOPE, locations=locations)


_MODELS_LOC = ['mmreid_clip.models', 'mmpretrain.models']
_DATA_LOC = ['mmreid_clip.datasets', 'mmpretrain.datasets']
_ENGINE_LOC = ['mmreid_clip.engine', 'mmpretrain.engine']
_EVAL_LOC = ['mmreid_clip.evaluation', 'mmpretrain.evaluation']
_R = mmpretrain_registry

RUNNERS = _child('runner', _R.RUNNERS, ['mmreid_clip.engine'])
RUNNER_CONSTRUCTORS = _child('runner constructor', _R.RUNNER_CONSTRUCTORS,
                             ['mmreid_clip.engine'])
LOOPS = _child('loop', _R.LOOPS, _ENGINE_LOC)
HOOKS = _child('hook', _R.HOOKS, _ENGINE_LOC)
LOG_PROCESSORS = _child('log processor', _R.LOG_PROCESSORS, _ENGINE_LOC)
OPTIMIZERS = _child('optimizer', _R.OPTIMIZERS, _ENGINE_LOC)
OPTIM_WRAPPERS = _child('optim_wrapper', _R.OPTIM_WRAPPERS, _ENGINE_LOC)
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    _R.OPTIM_WRAPPER_CONSTRUCTORS,
                                    _ENGINE_LOC)
PARAM_SCHEDULERS = _child('parameter scheduler', _R.PARAM_SCHEDULERS,
                          _ENGINE_LOC)
DATASETS = _child('dataset', _R.DATASETS, _DATA_LOC)
DATA_SAMPLERS = _child('data sampler', _R.DATA_SAMPLERS, _DATA_LOC)
TRANSFORMS = _child('transform', _R.TRANSFORMS, _DATA_LOC)
MODELS = _child('model', _R.MODELS, _MODELS_LOC)
MODEL_WRAPPERS = _child('model_wrapper', _R.MODEL_WRAPPERS, _MODELS_LOC)
WEIGHT_INITIALIZERS = _child('weight initializer', _R.WEIGHT_INITIALIZERS,
                             _MODELS_LOC)
TASK_UTILS = _child('task util', _R.TASK_UTILS, _MODELS_LOC)
# mmpretrain's TOKENIZER has no parent; ours hangs below it all the same.
TOKENIZER = _child('tokenizer', _R.TOKENIZER,
                   ['mmreid_clip.datasets', 'mmreid_clip.models'])
METRICS = _child('metric', _R.METRICS, _EVAL_LOC)
EVALUATORS = _child('evaluator', _R.EVALUATORS, _EVAL_LOC)
VISUALIZERS = _child('visualizer', _R.VISUALIZERS,
                     ['mmpretrain.visualization'])
VISBACKENDS = _child('vis_backend', _R.VISBACKENDS,
                     ['mmpretrain.visualization'])
# mmengine's Runner looks collate functions up in the *root* FUNCTIONS
# registry without switching scope, so ours register there directly.
FUNCTIONS = mmengine_registry.FUNCTIONS

# Weights reached through mmengine's CheckpointLoader (init_cfg Pretrained,
# load_from, --resume, URLs) are read by the project's allow-list loader as
# soon as any model can be built here (docs/reliability.md, "Safe loading").
from .safe_load import install_safe_loaders  # noqa: E402

install_safe_loaders()
