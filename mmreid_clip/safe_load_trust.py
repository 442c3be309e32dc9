"""The user's opt-in to loading untrusted weights: the
``MMREID_TRUST_CHECKPOINTS`` switch (parsed strictly), the context that
sets it, and the error every safe reader of :mod:`mmreid_clip.safe_load`
raises when a file needs that opt-in.
"""
import contextlib
import os
from typing import Iterator, Optional

TRUST_ENV = 'MMREID_TRUST_CHECKPOINTS'
_TRUE = ('1', 'true', 'yes', 'on')
_FALSE = ('', '0', 'false', 'no', 'off')


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds pickled objects outside the allow-list."""


def parse_bool_switch(value: Optional[str], name: str) -> bool:
    """Read an on/off environment switch strictly.

    ``1/true/yes/on`` are on, ``0/false/no/off`` and the empty string (or
    an unset variable) are off, in any case and with surrounding spaces;
    anything else is an error, so that a typo never turns a safety switch
    on (or off) silently.

    Args:
        value: The variable's value (None when unset).
        name: The variable, for the error message.

    Raises:
        ValueError: ``value`` is none of the above.
    """
    if value is None:
        return False
    norm = value.strip().lower()
    if norm in _TRUE:
        return True
    if norm in _FALSE:
        return False
    raise ValueError(
        f'{name}={value!r} is not a yes/no value: use 1/true/yes to turn '
        f'it on, or 0/false/no/off (or leave it unset) to turn it off.')


def checkpoints_trusted() -> bool:
    """Whether the user opted in to loading arbitrary pickled checkpoints.

    Raises:
        ValueError: ``MMREID_TRUST_CHECKPOINTS`` holds a value that is
            neither yes nor no (:func:`parse_bool_switch`).
    """
    return parse_bool_switch(os.environ.get(TRUST_ENV), TRUST_ENV)


@contextlib.contextmanager
def trust_checkpoints() -> Iterator[None]:
    """Context in which checkpoints are loaded with ``weights_only=False``.

    Only for files you trust: unpickling them can execute arbitrary code.
    """
    old = os.environ.get(TRUST_ENV)
    os.environ[TRUST_ENV] = '1'
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(TRUST_ENV, None)
        else:
            os.environ[TRUST_ENV] = old


def _trust_hint() -> str:
    return (f'If you trust this file, set {TRUST_ENV}=1 (or pass '
            '--trust-checkpoint to tools/train.py / tools/test.py).')
