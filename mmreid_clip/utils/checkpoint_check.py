"""How a checkpoint's weights differ from a model, in a readable report.

mmengine loads ``load_from`` / ``tools/test.py`` checkpoints with
``strict=False`` and only logs the raw key lists when they differ, so a
checkpoint of another architecture (or of another config of the same one)
is evaluated with mostly random weights. :func:`compare_state_dicts` groups
the missing, unexpected and wrongly shaped keys by module and
:class:`CheckpointMismatchError` carries the summary.
"""
import ast
import collections
import re
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

import torch

__all__ = [
    'CheckpointMismatchError', 'StateDictReport', 'compare_state_dicts',
    'checkpoint_state_dict', 'checkpoint_model_type', 'parse_config_text',
    'saved_config'
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


class _Unparsed:
    """Stands for a config value that is not plain data (a call, a name,
    an expression): it is left out, never evaluated."""

    def __repr__(self) -> str:
        return '<not plain data>'


UNPARSED = _Unparsed()


def _literal(node: ast.AST) -> Any:
    """The value of a data-only expression: constants, lists, tuples, sets,
    dicts, ``dict(key=...)`` calls and signed numbers; anything else is
    :data:`UNPARSED`."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_literal(e) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            return UNPARSED  # ``**other``
        return {_literal(k): _literal(v)
                for k, v in zip(node.keys, node.values)
                if isinstance(_literal(k), (str, int, float, bool, tuple))}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == 'dict' and not node.args
            and all(kw.arg is not None for kw in node.keywords)):
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op,
                                                     (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, (int, float))):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    return UNPARSED


def parse_config_text(text: str) -> Dict[str, Any]:
    """The top-level ``name = value`` assignments of a config's source,
    read as data.

    mmengine stores the config in every checkpoint as Python source
    (``meta['cfg']``); ``Config.fromstring`` would execute it, so a
    checkpoint could run code through its config even when its tensors are
    read safely. Here the source is only parsed (:func:`ast.parse`) and
    plain literals and ``dict(...)`` calls are evaluated; any other value
    is :data:`UNPARSED`, and text that does not parse gives ``{}``.

    Args:
        text: The config source.

    Returns:
        dict: Variable name to value.
    """
    try:
        tree = ast.parse(text, mode='exec')
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    out: Dict[str, Any] = {}
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)):
            try:
                out[stmt.targets[0].id] = _literal(stmt.value)
            except RecursionError:
                out[stmt.targets[0].id] = UNPARSED
    return out


def saved_config(checkpoint) -> Dict[str, Any]:
    """The config saved in an mmengine checkpoint, parsed as data
    (:func:`parse_config_text`); ``{}`` when there is none."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    text = meta.get('cfg') if isinstance(meta, Mapping) else None
    return parse_config_text(text) if isinstance(text, str) else {}
