"""The bad-sample vocabulary every dataset shares: what a dataset may do
with a bad sample (:data:`BAD_SAMPLE_ACTIONS`), the errors it raises for a
bad annotation file or image file, and :func:`image_file_problem`, which
tells a bad image file from a failing pipeline.
"""
import os.path as osp
from typing import Optional

import mmcv

#: What a dataset does with a bad sample: raise, or skip it (counted).
BAD_SAMPLE_ACTIONS = ('error', 'skip')


class AnnotationError(ValueError):
    """An annotation file that cannot be read as the dataset's format."""


class BadImageError(OSError):
    """An image file that is missing, unreadable, empty or not decodable."""


def image_file_problem(path: str) -> Optional[str]:
    """What is wrong with the image file ``path``, or None if it decodes.

    Used after the image pipeline failed, to tell a bad file (a data
    problem, which ``on_bad_sample='skip'`` may skip) from a bug in the
    pipeline (which must surface as it is).

    Args:
        path (str): Image file.

    Returns:
        str | None: A short description of the problem.
    """
    if not osp.exists(path):
        return 'the file does not exist'
    if not osp.isfile(path):
        return 'the path is not a file'
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as err:
        return f'the file cannot be read ({err})'
    if not data:
        return 'the file is empty (0 bytes)'
    from .transforms.loading import ImageTooLargeError, check_image_pixels
    try:
        check_image_pixels(data, path)
    except ImageTooLargeError as err:
        return str(err)
    try:
        img = mmcv.imfrombytes(data, flag='color')
    except Exception as err:  # cv2.error and friends
        return f'the file cannot be decoded ({type(err).__name__}: {err})'
    if img is None or img.size == 0:
        return ('the file cannot be decoded as an image (corrupt or '
                f'truncated, {len(data)} bytes)')
    return None
