"""Crash-safe file writes: write a temporary file, then rename it.

``os.replace`` is atomic on POSIX and Windows when both paths are on the same
file system, so a reader (or a process resumed after ``kill -9``) sees either
the old file or the complete new one, never a truncated one. The temporary
file is ``<name>.tmp`` in the same folder; :func:`remove_stale_temporaries`
clears the ones a killed writer left behind, and only those: the caller
names the files it writes by a pattern.
"""
import os
import os.path as osp
import re
from typing import List

TMP_SUFFIX = '.tmp'


def temporary_path(path: str) -> str:
    """The temporary name :func:`atomic_replace` expects for ``path``."""
    return path + TMP_SUFFIX


def fsync_path(path: str) -> None:
    """Flush a file (or a folder entry list) to disk.

    Without it a power loss right after the rename could leave a renamed
    but empty file; a killed process alone cannot, the kernel still holds
    the data.

    Args:
        path (str): File or folder.
    """
    flags = os.O_RDONLY
    if osp.isdir(path) and hasattr(os, 'O_DIRECTORY'):
        flags |= os.O_DIRECTORY
    try:
        fd = os.open(path, flags)
    except OSError:  # folders cannot be opened on Windows; nothing to do
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def atomic_replace(tmp_path: str, path: str) -> None:
    """Move a fully written ``tmp_path`` over ``path`` in one step.

    Args:
        tmp_path (str): The complete new file, in the folder of ``path``.
        path (str): The final name; replaced if it exists.
    """
    fsync_path(tmp_path)
    os.replace(tmp_path, path)
    fsync_path(osp.dirname(osp.abspath(path)))


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is never partial.

    Args:
        path (str): Destination; its folder is created if missing.
        data (bytes): The whole content.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = temporary_path(path)
    with open(tmp, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(folder)


def atomic_write_text(path: str, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode('utf-8'))


def remove_stale_temporaries(folder: str, pattern: str) -> List[str]:
    """Delete the temporaries a killed writer of ``pattern`` files left.

    Only ``<name>.tmp`` files whose ``<name>`` matches ``pattern`` (a
    regular expression matched against the whole final name) are removed:
    the caller names exactly the files it writes, so no other ``*.tmp``
    file in ``folder`` (``notes.tmp``, a download in progress) is touched.

    Args:
        folder (str): Folder to clean (not recursive).
        pattern (str): Regular expression of the final names the caller
            writes, e.g. ``r'epoch_\\d+\\.pth'``.

    Returns:
        list[str]: The removed paths.
    """
    removed = []
    if not osp.isdir(folder):
        return removed
    owned = re.compile(pattern)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(TMP_SUFFIX):
            continue
        if not owned.fullmatch(name[:-len(TMP_SUFFIX)]):
            continue
        path = osp.join(folder, name)
        if osp.isfile(path) and not osp.islink(path):
            os.remove(path)
            removed.append(path)
    return removed
