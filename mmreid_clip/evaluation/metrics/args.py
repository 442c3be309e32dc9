"""Argument checks shared by the retrieval metrics."""
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import torch


def check_ranking_args(topk: Union[int, Sequence[int]],
                       chunk_size: Optional[int]) -> Tuple[int, ...]:
    """Validate ``topk`` (an int or positive ints) and ``chunk_size``.

    Returns:
        tuple[int, ...]: ``topk`` as a tuple of ints.

    Raises:
        ValueError: ``topk`` is empty or not positive integers, or
            ``chunk_size < 1``.
    """
    if isinstance(topk, int):
        topk = (topk, )
    if not topk or any(int(k) != k or k < 1 for k in topk):
        raise ValueError(f'topk must be positive integers, got {topk}')
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    return tuple(int(k) for k in topk)


def as_int(value: Any, what: str) -> int:
    """An int from an int, a numpy integer or a one-element array/tensor.

    Strict on purpose: the ids the metrics read (``pid``, ``camid``,
    ``image_id``, ...) decide which gallery items are positives or junk, so
    a value that only *converts* to an int (``True``, ``'3'``, ``2.5``) is a
    bug upstream and must not be silently turned into an id.

    Args:
        value (Any): The value to convert.
        what (str): Its name, for the error message (e.g. ``'pid'``).

    Returns:
        int: The value as a Python int.

    Raises:
        ValueError: ``value`` is a bool, a string, a non-integral float, or
            an array/tensor with other than one element (the message names
            ``what``).
    """
    if torch.is_tensor(value) or isinstance(value, np.ndarray):
        count = value.size if isinstance(value, np.ndarray) else value.numel()
        if count != 1:
            raise ValueError(f'{what} must be a single integer, got an array '
                             f'of shape {tuple(value.shape)}')
        value = value.item()
    if isinstance(value, (bool, np.bool_, str, bytes)) or (
            isinstance(value, (float, np.floating))
            and not float(value).is_integer()):
        raise ValueError(f'{what} must be an integer, got {value!r}')
    try:
        return int(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{what} must be an integer, got {value!r}') from err
