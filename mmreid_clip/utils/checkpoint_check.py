"""How a checkpoint's weights differ from a model, in a readable report.

mmengine loads ``load_from`` / ``tools/test.py`` checkpoints with
``strict=False`` and only logs the raw key lists when they differ, so a
checkpoint of another architecture (or of another config of the same one)
is evaluated with mostly random weights. :func:`compare_state_dicts` groups
the missing, unexpected and wrongly shaped keys by module and
:class:`CheckpointMismatchError` carries the summary.
"""
import collections
import re
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

import torch

__all__ = [
    'CheckpointMismatchError', 'StateDictReport', 'compare_state_dicts',
    'checkpoint_state_dict', 'checkpoint_model_type'
]


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's weights do not fit the model it is loaded into."""


class StateDictReport(NamedTuple):
    """Differences between a model's and a checkpoint's state dicts."""

    num_model: int
    num_checkpoint: int
    missing: List[str]  # in the model, not in the checkpoint
    unexpected: List[str]  # in the checkpoint, not in the model
    shape: List[Tuple[str, tuple, tuple]]  # (key, checkpoint, model)

    @property
    def num_matched(self) -> int:
        """Keys present in both with the same shape."""
        return self.num_model - len(self.missing) - len(self.shape)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.shape)

    def format(self,
               source: str = 'the checkpoint',
               model_name: str = 'the model',
               checkpoint_model: Optional[str] = None,
               examples: int = 3) -> str:
        """A few lines saying what differs, grouped by top module.

        Args:
            source (str): How to name the checkpoint (its path).
            model_name (str): How to name the model (its class).
            checkpoint_model (str, optional): The model type recorded in the
                checkpoint's config, if known.
            examples (int): Keys shown per list. Defaults to 3.
        """
        lines = [
            f'{source} does not fit {model_name}: {self.num_matched} of '
            f'{self.num_model} model entries match ({self.num_checkpoint} in '
            'the checkpoint).'
        ]
        if self.missing:
            lines.append(f'missing from the checkpoint: {len(self.missing)} '
                         f'({_groups(self.missing)}), e.g. '
                         f'{", ".join(self.missing[:examples])}')
        if self.unexpected:
            lines.append(f'unexpected in the checkpoint: '
                         f'{len(self.unexpected)} '
                         f'({_groups(self.unexpected)}), e.g. '
                         f'{", ".join(self.unexpected[:examples])}')
        if self.shape:
            shown = '; '.join(f'{k}: checkpoint {tuple(c)}, model {tuple(m)}'
                              for k, c, m in self.shape[:examples])
            lines.append(f'other shapes: {len(self.shape)}, e.g. {shown}')
        if checkpoint_model and checkpoint_model not in model_name:
            lines.append(f'The checkpoint was trained as model type '
                         f'{checkpoint_model!r}: pass the config it was '
                         'trained with.')
        elif self.num_matched == 0:
            lines.append('Nothing matches: it was written by another '
                         'architecture; pass the config it was trained with.')
        else:
            lines.append('Pass the config the checkpoint was trained with '
                         '(or fix this one with --cfg-options).')
        return '\n  '.join(lines)


def _groups(keys: List[str], limit: int = 4) -> str:
    counts = collections.Counter(k.split('.', 1)[0] + '.*' for k in keys)
    shown = [f'{name} {n}' for name, n in counts.most_common(limit)]
    if len(counts) > limit:
        shown.append(f'{len(counts) - limit} more groups')
    return ', '.join(shown)


def checkpoint_state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    """The weights of an mmengine checkpoint (or a bare state dict), with
    the ``module.`` prefix of wrapped models removed as mmengine does."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointMismatchError(
            f'the checkpoint holds a {type(checkpoint).__name__}, not a '
            'state dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    return {
        re.sub(r'^module\.', '', k): v
        for k, v in state_dict.items() if isinstance(v, torch.Tensor)
    }


def checkpoint_model_type(checkpoint) -> Optional[str]:
    """The ``model.type`` of the config saved in an mmengine checkpoint.

    Read from the text (mmengine's ``pretty_text``, keys sorted, four-space
    indents): the saved config is Python source and is never executed here.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    text = meta.get('cfg') if isinstance(meta, Mapping) else None
    if not isinstance(text, str):
        return None
    in_model = False
    for line in text.splitlines():
        if not in_model:
            if re.match(r'model\s*=\s*dict\(', line):
                in_model = True
                inline = re.search(r"\btype\s*=\s*'([^']+)'", line)
                if inline and line.count('(') == 1:
                    return inline.group(1)
            continue
        if line and not line[0].isspace():
            return None  # the next top-level variable: no type found
        match = re.match(r"    type\s*=\s*'([^']+)'", line)
        if match:
            return match.group(1)
    return None


def compare_state_dicts(
        model_state: Mapping[str, torch.Tensor],
        ckpt_state: Mapping[str, torch.Tensor]) -> StateDictReport:
    """Missing, unexpected and wrongly shaped entries, in model order.

    Args:
        model_state (Mapping): ``model.state_dict()``.
        ckpt_state (Mapping): The checkpoint's weights
            (:func:`checkpoint_state_dict`).
    """
    missing = [k for k in model_state if k not in ckpt_state]
    unexpected = [k for k in ckpt_state if k not in model_state]
    shape = [
        (k, tuple(ckpt_state[k].shape), tuple(v.shape))
        for k, v in model_state.items()
        if k in ckpt_state and tuple(ckpt_state[k].shape) != tuple(v.shape)
    ]
    return StateDictReport(
        num_model=len(model_state),
        num_checkpoint=len(ckpt_state),
        missing=missing,
        unexpected=unexpected,
        shape=shape)
