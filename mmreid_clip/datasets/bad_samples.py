"""The bad-sample vocabulary every dataset shares: what a dataset may do
with a bad sample (:data:`BAD_SAMPLE_ACTIONS`), the errors it raises for a
bad annotation file or image file, :func:`image_file_problem`, which
tells a bad image file from a failing pipeline, and
:func:`raise_or_skip_bad_image`, what every dataset does with one.
"""
import logging
import os.path as osp
from typing import Optional

import mmcv
from mmengine.logging import print_log

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


def raise_or_skip_bad_image(dataset, message: str, err: Exception,
                            num_logged: int) -> None:
    """Raise :class:`BadImageError` for a bad image, or count a train skip.

    The one rule of every dataset: with ``on_bad_sample='error'`` the error
    names the item and tells how to skip; with ``'skip'`` an evaluation
    split still raises (dropping an item would change the protocol), and a
    train split counts the skip in ``dataset.num_bad_images`` and logs the
    first ``num_logged`` skips and then every power of two.

    Args:
        dataset: The dataset; reads ``on_bad_sample``, ``test_mode`` and
            ``split``, increments ``num_bad_images``.
        message (str): Names the item and its file, and what is wrong.
        err (Exception): The pipeline's error (chained).
        num_logged (int): Skips logged one by one before logging thins out.

    Raises:
        BadImageError: Unless the sample is skipped.
    """
    if dataset.on_bad_sample != 'skip':
        raise BadImageError(
            f'{message}. Replace or remove the file, or set '
            "on_bad_sample='skip' on the train dataset to skip such "
            'samples (counted and logged).') from err
    if dataset.test_mode:
        raise BadImageError(
            f"{message}. on_bad_sample='skip' does not apply to the "
            f'{dataset.split!r} split: dropping an evaluation item would '
            'change the protocol; replace or remove the file.') from err
    dataset.num_bad_images += 1
    count = dataset.num_bad_images
    if count <= num_logged or count & (count - 1) == 0:
        print_log(
            f"{message}; skipped (on_bad_sample='skip', {count} "
            'images skipped so far in this process)',
            logger='current',
            level=logging.WARNING)
