"""Tracing a one-input module with ``torch.export`` and a dynamic batch axis.

:func:`export_program` traces non-strictly with the batch axis symbolic;
when the model reads tensor values in Python (which torch.export cannot
trace) the error is turned into an :class:`ExportError` naming the line.
"""
import torch
import torch.nn as nn

__all__ = ['BATCH_AXIS', 'ExportError', 'export_program']

BATCH_AXIS = 'batch'


class ExportError(RuntimeError):
    """The model cannot be traced into a graph with a dynamic batch axis."""


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


def export_program(module: nn.Module,
                   example: torch.Tensor) -> torch.export.ExportedProgram:
    """``torch.export`` ``module`` on ``example`` with a dynamic batch axis.

    Raises:
        ExportError: the model reads tensor values in Python.
    """
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
