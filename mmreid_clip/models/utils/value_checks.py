"""When input checks may read tensor values back to the host.

A check such as ``if labels.max() >= num_classes: raise ...`` reads a
value computed on the device, which makes the host wait for every kernel
queued before it (a synchronisation). Spread through a training step, a
dozen of them keep the GPU idle while the host launches the next kernels;
on the CPU they cost nothing.

The rule here: a check site runs on every call with CPU tensors, and on the
first :data:`CHECKED_CALLS` calls with accelerator tensors, then stops
reading values. The mistakes these checks exist for (``num_classes`` or
``num_clothes`` not matching the data, a tokenizer whose ids exceed the
text tower's vocabulary, camera ids beyond the SIE table, a sampler that
gives no positive pairs) show up on the first batches; a later
out-of-range index still stops the run through the device's own index
assertion (never a silent wrong result), only with a terser message.
``value_checks(calls=None)`` keeps every check on for a debugging run.
"""
import contextlib
from typing import Iterator, Optional

import torch

#: checked calls per check site on accelerator tensors (None: all)
CHECKED_CALLS: Optional[int] = 20
#: run checks on every call with CPU tensors (reading them is free)
ALWAYS_ON_CPU = True


class ValueCheck:
    """One check site's budget of value reads (see the module docstring).

    Use as ``if self._check.due(labels) and bool(bad.any()): raise ...``.
    """

    def __init__(self) -> None:
        self.calls = 0

    def due(self, tensor: torch.Tensor) -> bool:
        """Whether the check should read ``tensor``'s values this call.

        Never while ``torch.compile`` / ``torch.export`` trace (a value read
        would break the graph, and a counter would force recompiles).
        """
        if torch.compiler.is_compiling():
            return False
        if ALWAYS_ON_CPU and tensor.device.type == 'cpu':
            return True
        self.calls += 1
        return CHECKED_CALLS is None or self.calls <= CHECKED_CALLS


@contextlib.contextmanager
def value_checks(calls: Optional[int] = CHECKED_CALLS,
                 always_on_cpu: bool = ALWAYS_ON_CPU) -> Iterator[None]:
    """Change the rule inside a ``with`` block (then restore it).

    Args:
        calls: Checked calls per site on accelerator tensors; None checks
            every call.
        always_on_cpu: False treats CPU tensors like accelerator ones (how
            the tests see what a GPU step would read).
    """
    global CHECKED_CALLS, ALWAYS_ON_CPU
    saved = CHECKED_CALLS, ALWAYS_ON_CPU
    CHECKED_CALLS, ALWAYS_ON_CPU = calls, always_on_cpu
    try:
        yield
    finally:
        CHECKED_CALLS, ALWAYS_ON_CPU = saved
