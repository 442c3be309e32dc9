"""Image decoding with a pixel limit.

A small file can decode to a huge image: a 389 KB PNG of 20000 x 20000
pixels takes 1.2 GB as BGR (3.2 GB at the peak) and 20 s to decode. Person
crops are a few hundred pixels a side, so such a file is a mistake or an
attack. :func:`check_image_pixels` reads the image size from the file's
header (Pillow parses it without decoding the pixels) and refuses the file
before it is decoded; :class:`LoadImageFromFile` applies it to every image
the datasets, the inference API and the search tools load
(``docs/reliability.md``, section 1, "Bad input data").

The limit is :data:`DEFAULT_MAX_PIXELS` (100 megapixels, e.g. 10000 x
10000), or ``MMREID_MAX_IMAGE_PIXELS`` from the environment, or
``LoadImageFromFile(max_pixels=...)`` in a pipeline; ``max_pixels=None``
turns the check off.
"""
import io
import os
import warnings
from typing import Optional, Tuple

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile as _MMCVLoadImageFromFile

from mmreid_clip.registry import TRANSFORMS

__all__ = [
    'DEFAULT_MAX_PIXELS', 'MAX_PIXELS_ENV', 'ImageTooLargeError',
    'LoadImageFromFile', 'check_image_pixels', 'max_image_pixels',
    'image_size_from_header'
]

#: Default limit on ``width * height`` of a decoded image.
DEFAULT_MAX_PIXELS = 100_000_000
#: Environment variable overriding :data:`DEFAULT_MAX_PIXELS`.
MAX_PIXELS_ENV = 'MMREID_MAX_IMAGE_PIXELS'


class ImageTooLargeError(ValueError):
    """An image whose pixel count is over the limit (not decoded)."""


def max_image_pixels() -> int:
    """The limit in force: ``MMREID_MAX_IMAGE_PIXELS`` or the default.

    Raises:
        ValueError: the variable is not a positive integer.
    """
    value = os.environ.get(MAX_PIXELS_ENV, '').strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value.replace('_', ''))
    except ValueError:
        limit = 0
    if limit < 1:
        raise ValueError(f'{MAX_PIXELS_ENV}={value!r} must be a positive '
                         'integer (a number of pixels, e.g. 100000000)')
    return limit


def image_size_from_header(data: bytes) -> Optional[Tuple[int, int]]:
    """``(width, height)`` of an encoded image, read from its header
    without decoding it; None when Pillow cannot identify the format."""
    from PIL import Image
    with warnings.catch_warnings():
        # Pillow's own decompression-bomb warning: we report the size
        warnings.simplefilter('ignore', Image.DecompressionBombWarning)
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # we only read the header here
        try:
            with Image.open(io.BytesIO(data)) as img:
                return tuple(int(v) for v in img.size)
        except Exception:  # UnidentifiedImageError, truncated headers
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = old


def check_image_pixels(data: bytes,
                       source: str,
                       max_pixels: Optional[int] = -1) -> None:
    """Refuse an encoded image with more than ``max_pixels`` pixels.

    Args:
        data: The file's bytes.
        source: How to name the file in the message.
        max_pixels: The limit; -1 (default) for :func:`max_image_pixels`,
            None for no limit.

    Raises:
        ImageTooLargeError: the header gives more pixels than the limit;
            the message names the file, its size and how to raise the
            limit.
    """
    if max_pixels is None:
        return
    if max_pixels == -1:
        max_pixels = max_image_pixels()
    size = image_size_from_header(data)
    if size is None:
        return
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f'image {source} is {width} x {height} = {width * height:,} '
            f'pixels ({len(data):,} bytes on disk), over the limit of '
            f'{max_pixels:,}; it was not decoded (it would take '
            f'{width * height * 3 / 2**30:.1f} GiB). If it is a real image, '
            f'raise the limit with {MAX_PIXELS_ENV} or '
            'LoadImageFromFile(max_pixels=...)')


@TRANSFORMS.register_module()
class LoadImageFromFile(_MMCVLoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with a pixel limit.

    Registered under mmcv's name in the ``mmreid_clip`` scope, so every
    pipeline of the project's configs gets the check; the image is decoded
    exactly as mmcv does it (same backends, same flags).

    Args:
        max_pixels (int, optional): Refuse images with more pixels
            (:class:`ImageTooLargeError`, naming the file) before decoding
            them. -1 (default): ``MMREID_MAX_IMAGE_PIXELS`` or
            :data:`DEFAULT_MAX_PIXELS`; None: no limit.
        **kwargs: mmcv's arguments (``to_float32``, ``color_type``,
            ``imdecode_backend``, ``ignore_empty``, ``backend_args``).
    """

    def __init__(self, max_pixels: Optional[int] = -1, **kwargs) -> None:
        super().__init__(**kwargs)
        if max_pixels is not None and max_pixels != -1 and int(
                max_pixels) < 1:
            raise ValueError(f'max_pixels must be a positive number of '
                             f'pixels, -1 or None, got {max_pixels!r}')
        self.max_pixels = max_pixels

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            if self.file_client_args is not None:
                file_client = fileio.FileClient.infer_client(
                    self.file_client_args, filename)
                img_bytes = file_client.get(filename)
            else:
                img_bytes = fileio.get(
                    filename, backend_args=self.backend_args)
            check_image_pixels(img_bytes, filename, self.max_pixels)
            img = mmcv.imfrombytes(
                img_bytes,
                flag=self.color_type,
                backend=self.imdecode_backend)
        except ImageTooLargeError:
            raise
        except Exception as e:
            if self.ignore_empty:
                return None
            raise e
        if img is None:
            raise ValueError(f'failed to load image: {filename} (it cannot '
                             'be decoded)')
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', max_pixels={self.max_pixels})'
