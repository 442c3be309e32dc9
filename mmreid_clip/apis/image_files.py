"""The image files of a gallery folder (:func:`list_images`): sorted
relative paths, hidden files left out.
"""
import os
import os.path as osp
from typing import List, Sequence

from mmreid_clip.datasets.utils import IMG_EXTENSIONS, is_image_file


def list_images(folder: str,
                recursive: bool = True,
                extensions: Sequence[str] = IMG_EXTENSIONS) -> List[str]:
    """Image files under ``folder``, as sorted paths relative to it.

    Args:
        folder (str): The folder.
        recursive (bool): Descend into sub-folders. Defaults to True.
        extensions (Sequence[str]): File endings to keep (any case).

    Returns:
        list[str]: Relative paths with ``/`` separators, sorted.

    Raises:
        NotADirectoryError: ``folder`` is not a folder.
    """
    if not osp.isdir(folder):
        raise NotADirectoryError(f'image folder {folder!r} does not exist '
                                 'or is not a folder')
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        if not recursive:
            dirnames[:] = []
        for name in filenames:
            # hidden files are left out too: macOS writes ``._x.jpg``
            # resource forks next to every image copied from it
            if is_image_file(name, extensions) and not name.startswith('.'):
                rel = osp.relpath(osp.join(dirpath, name), folder)
                found.append(rel.replace(os.sep, '/'))
    return sorted(found)
