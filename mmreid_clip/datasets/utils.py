"""Helpers shared by the dataset classes and the inference API.

One copy of what the text-image, cloth-changing and standard ReID datasets
(and the gallery search of :mod:`mmreid_clip.apis`) all need: which files
are images, how a pipeline is built, and how load-time skips are logged.
"""
import logging
from typing import Callable, Mapping, Optional, Sequence, Union

from mmengine.dataset import Compose
from mmengine.logging import print_log

from mmreid_clip.registry import TRANSFORMS

__all__ = [
    'IMG_EXTENSIONS', 'compose_pipeline', 'is_image_file', 'log_skipped'
]

#: File extensions read as images (compared case-insensitively). A dataset
#: folder's other files (``Thumbs.db``, ``.DS_Store``, ``README``) are
#: ignored; an image-extension file whose name does not parse is an error
#: (or a counted skip).
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def is_image_file(name: str,
                  extensions: Sequence[str] = IMG_EXTENSIONS) -> bool:
    """Whether ``name`` ends with one of ``extensions`` (any case).

    Args:
        name (str): A file name or path.
        extensions (Sequence[str]): The file endings of images (usually
            with the dot). Defaults to :data:`IMG_EXTENSIONS`.

    Returns:
        bool: True for image files.
    """
    return name.lower().endswith(tuple(e.lower() for e in extensions))


def compose_pipeline(
        transforms: Optional[Sequence[Union[dict, Callable]]]) -> Compose:
    """Build a pipeline through our registry, in our scope.

    Our registry rather than mmengine's Compose lookup, so our transforms
    and mmcv/mmpretrain's resolve even when the caller has not set
    ``default_scope='mmreid_clip'`` (a dataset built outside a Runner); and
    in our scope, because mmcv's wrappers (``TransformBroadcaster``,
    ``RandomApply``, ...) build their inner transforms through the default
    scope, where ours (``RandomErasing``) would not be found.

    Args:
        transforms (Sequence[dict | Callable], optional): Transform configs
            or callables; None is an empty pipeline.

    Returns:
        Compose: The pipeline.
    """
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmreid_clip'):
        built = [
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in (transforms or [])
        ]
    return Compose(built)


def log_skipped(source: str,
                skipped: Union[Sequence[str], Mapping[str, Sequence[str]]],
                num_shown: int = 5) -> None:
    """Warn once about the bad samples a dataset skipped while loading.

    Args:
        source (str): What was loaded, e.g. ``'LTCC train'``; starts the
            message.
        skipped (Sequence[str] | Mapping[str, Sequence[str]]): One message
            per skipped sample, or such lists grouped by kind (``{'unparseable
            file names': [path, ...]}``), each group counted on its own.
        num_shown (int): How many samples of each group are listed; the
            others are counted. Defaults to 5.
    """
    groups = (dict(skipped) if isinstance(skipped, Mapping) else {
        None: list(skipped)
    })
    total = sum(len(v) for v in groups.values())
    if not total:
        return
    lines = []
    for kind, items in groups.items():
        indent = '  '
        if kind is not None:
            lines.append(f'  {len(items)} {kind}:')
            indent = '    '
        lines += [indent + str(item) for item in items[:num_shown]]
        if len(items) > num_shown:
            lines.append(f'{indent}... and {len(items) - num_shown} more')
    print_log(
        f"{source}: on_bad_sample='skip' skipped {total} bad samples:\n" +
        '\n'.join(lines),
        logger='current',
        level=logging.WARNING)
