"""Argument checks shared by the retrieval metrics."""
from typing import Optional, Sequence, Tuple, Union


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
