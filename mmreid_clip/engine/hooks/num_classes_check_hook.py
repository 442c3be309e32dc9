"""Refuse a model whose identity classifiers do not fit the training set."""
from typing import List, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmreid_clip.registry import HOOKS

__all__ = ['NumClassesCheckHook', 'identity_classifiers']


def identity_classifiers(model) -> List[Tuple[str, int]]:
    """``(name, num_classes)`` of every submodule classifying identities.

    Modules with an integer ``num_classes`` (``SharedIDHead``,
    ``BNNeckHead``, ``CMPCLoss``, ``PromptLearner``), except those inside
    a module that classifies outfits (one with ``num_clothes``, e.g. the
    clothes prompts of CCAF's CFM).
    """
    clothes = [
        name for name, m in model.named_modules()
        if name and isinstance(getattr(m, 'num_clothes', None), int)
    ]
    found = []
    for name, module in model.named_modules():
        value = getattr(module, 'num_classes', None)
        if not name or not isinstance(value, int) or isinstance(value, bool):
            continue
        if any(name.startswith(c + '.') for c in clothes):
            continue
        found.append((name, value))
    return found


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Compare the model's identity classifiers with the training set
    before the first iteration.

    A classifier with fewer classes than the training identities fails
    mid-epoch with an out-of-range target; one with more trains silently
    with classes no sample has (40 for 32 identities). Both are a
    ``ValueError`` at start-up naming the module and the value to set. The
    training set's count is its ``metainfo['num_classes']`` (text-image
    datasets) or ``metainfo['num_pids']`` (ReID datasets). Models with
    their own check (``set_train_metainfo``, e.g. CLIP-ReID / CCAF) are
    left to it.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if hasattr(model, 'set_train_metainfo'):
            return
        dataset = runner.train_dataloader.dataset
        metainfo = getattr(dataset, 'metainfo', None) or {}
        count = metainfo.get('num_classes', metainfo.get('num_pids'))
        if not isinstance(count, int):
            return
        wrong = [(n, v) for n, v in identity_classifiers(model)
                 if v != count]
        if not wrong:
            return
        what = type(dataset).__name__
        lines = [
            f'model.{name}.num_classes={value} but the training set ({what}'
            f', split {metainfo.get("split", "train")!r}) has {count} '
            f'identities; set model.{name}.num_classes={count}'
            for name, value in wrong
        ]
        raise ValueError(
            '\n'.join(lines) + '\n(a classifier with more classes than '
            'identities trains silently with classes no sample has; with '
            'fewer, training fails on the first out-of-range label)')
