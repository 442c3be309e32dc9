"""Writing a generated dataset: the parts both generators share.

A generator owns an output folder through its *manifest* (a JSON file
naming the generator, its version and the parameters):
:class:`DatasetFolder` refuses to write into a folder that is neither empty
nor ours, keeps a complete dataset made with the same arguments (re-runs
are no-ops), and replaces an interrupted or (with ``overwrite``) a
different one, deleting only what the generator writes. Beside it: atomic
JSON, image encoding, file and tree digests, the README layout and the
worker pool.
"""
import hashlib
import json
import logging
import multiprocessing
import os
import os.path as osp
import shutil
from typing import Any, Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np

__all__ = [
    'DatasetFolder', 'check_int', 'file_sha256', 'map_tasks',
    'readme_text', 'tree_digest', 'write_image', 'write_json'
]

logger = logging.getLogger(__name__)


def check_int(name: str, value: Any, minimum: int) -> None:
    """Raise ValueError unless ``value`` is an int (not a bool) >=
    ``minimum``."""
    if (not isinstance(value, int) or isinstance(value, bool)
            or value < minimum):
        raise ValueError(f'{name} must be an int >= {minimum}, got '
                         f'{value!r}')


def write_json(path: str, obj: Any, indent: Optional[int] = None) -> None:
    """Write ``obj`` as JSON, atomically.

    Args:
        path (str): Target file.
        obj: JSON-able value.
        indent (int, optional): ``json.dump``'s indent. Defaults to None
            (one line).
    """
    # written next to the target and renamed: an interrupted run never
    # leaves a truncated file behind
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=indent)
    os.replace(tmp, path)


def write_image(path: str,
                image: np.ndarray,
                params: Sequence[int] = ()) -> None:
    """Encode ``image`` in the format of ``path``'s extension and write it.

    Args:
        path (str): Target file (``.png``, ``.jpg`` ...).
        image (np.ndarray): H x W x 3 uint8 RGB, or H x W single-channel.
        params (Sequence[int]): OpenCV encoder flags, e.g.
            ``(cv2.IMWRITE_JPEG_QUALITY, 92)``. The encoders are
            deterministic for fixed flags.
    """
    if image.ndim == 3:
        image = np.ascontiguousarray(image[:, :, ::-1])  # OpenCV is BGR
    ok, buf = cv2.imencode(osp.splitext(path)[1], image, list(params))
    if not ok:  # pragma: no cover - OpenCV without the codec
        raise RuntimeError(f'OpenCV failed to encode {path}')
    with open(path, 'wb') as f:
        f.write(buf.tobytes())


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(base: str) -> str:
    """SHA-256 over the relative names and bytes of every file under
    ``base`` (sorted): one digest of a whole folder's content.

    Args:
        base (str): Folder.

    Returns:
        str: Hex digest.
    """
    h = hashlib.sha256()
    paths = []
    for dirpath, _, files in os.walk(base):
        paths += [osp.join(dirpath, f) for f in files]
    for path in sorted(paths):
        h.update(osp.relpath(path, base).replace(os.sep, '/').encode())
        h.update(b'\0')
        with open(path, 'rb') as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def readme_text(title: Sequence[str], version: str, seed: int,
                img_size: Sequence[int], settings: Sequence[str],
                table: Sequence[str], notes: Sequence[str],
                regenerate: Sequence[str], disclaimer: str) -> str:
    """The README of a generated dataset.

    Args:
        title (Sequence[str]): What the dataset is.
        version (str): Generator version.
        seed (int): Seed.
        img_size (Sequence[int]): ``(height, width)``.
        settings (Sequence[str]): Further parameters, one a line.
        table (Sequence[str]): Counts table (header first).
        notes (Sequence[str]): A paragraph after the table (may be
            empty).
        regenerate (Sequence[str]): The command that regenerates it.
        disclaimer (str): Last line.

    Returns:
        str: The text, newline-terminated.
    """
    lines = [
        *title,
        '',
        f'generator version: {version}',
        f'seed: {seed}',
        f'image size (H x W): {img_size[0]} x {img_size[1]}',
        *settings,
        '',
        *table,
        '',
    ]
    if notes:
        lines += [*notes, '']
    lines += ['Regenerate with:', *regenerate, '', disclaimer]
    return '\n'.join(lines) + '\n'


def map_tasks(fn: Callable, tasks: List[tuple], num_workers: int,
              chunksize: int) -> list:
    """``[fn(t) for t in tasks]``, in worker processes when
    ``num_workers > 0``; the results (and so the files written from them)
    are in task order either way."""
    if num_workers and num_workers > 0 and len(tasks) > 1:
        with multiprocessing.get_context().Pool(num_workers) as pool:
            # imap keeps task order, so the output is the same as serially
            return list(pool.imap(fn, tasks, chunksize=chunksize))
    return [fn(t) for t in tasks]


class DatasetFolder:
    """The output folder of a generator, owned through its manifest.

    Args:
        root (str): The folder.
        generator (str): Generator name written into the manifest
            (``'SynthPedes'``, ``'SynthCC'``).
        version (str): Generator version.
        manifest_file (str): Manifest name, relative to ``root``.
        dirs (Sequence[str]): Folders the generator writes (relative).
        files (Sequence[str]): Files the generator writes (relative; the
            manifest included).
        prune (Sequence[str]): Folders to remove when left empty, in order.
        indent (int, optional): JSON indent of the manifest.
    """

    def __init__(self,
                 root: str,
                 generator: str,
                 version: str,
                 manifest_file: str,
                 dirs: Sequence[str],
                 files: Sequence[str],
                 prune: Sequence[str] = (),
                 indent: Optional[int] = None) -> None:
        self.root = osp.abspath(root)
        self.generator, self.version = generator, version
        self.manifest_file = manifest_file
        self.dirs, self.files, self.prune = dirs, files, prune
        self.indent = indent

    def path(self, *parts: str) -> str:
        """A path inside the folder."""
        return osp.join(self.root, *parts)

    def read_manifest(self) -> Optional[dict]:
        """The manifest, or None when missing, unreadable or another
        generator's."""
        try:
            with open(self.path(self.manifest_file), encoding='utf-8') as f:
                manifest = json.load(f)
        except (OSError, ValueError):
            return None
        if (not isinstance(manifest, dict)
                or manifest.get('generator') != self.generator):
            return None
        return manifest

    def prepare(self, params: dict, overwrite: bool,
                is_complete: Callable[[dict], bool]) -> Optional[dict]:
        """Make the folder ready to generate into.

        Args:
            params (dict): The run's parameters (as in the manifest).
            overwrite (bool): Replace a complete dataset made with other
                parameters or another version.
            is_complete (Callable[[dict], bool]): Whether the manifest's
                dataset is fully on disk and unmodified.

        Returns:
            dict | None: The manifest of a complete dataset made with the
            same parameters and version (nothing to do), else None: the
            folder is empty or missing, or what an earlier run of ours
            wrote was removed.

        Raises:
            NotADirectoryError: ``root`` is a file.
            FileExistsError: ``root`` is neither empty nor ours, or holds
                a dataset made with other settings and ``overwrite`` is
                False.
        """
        root, name = self.root, self.generator
        if osp.exists(root) and not osp.isdir(root):
            raise NotADirectoryError(f'{root} exists and is not a folder')
        if not (osp.isdir(root) and os.listdir(root)):
            return None
        manifest = self.read_manifest()
        if manifest is None:
            raise FileExistsError(
                f'Refusing to write {name} into {root}: the folder is not '
                f'empty and is not a {name} dataset (it has no '
                f'{self.manifest_file} of {name}). Choose an empty or new '
                'folder.')
        same = (
            manifest.get('generator_version') == self.version
            and manifest.get('params') == params)
        if same and is_complete(manifest):
            logger.info('%s at %s is complete; nothing to do', name, root)
            return manifest
        if not same and manifest.get('complete') and not overwrite:
            old = dict(
                manifest.get('params', {}),
                generator_version=manifest.get('generator_version'))
            new = dict(params, generator_version=self.version)
            diff = ', '.join(f'{k}: {old.get(k)!r} -> {v!r}'
                             for k, v in new.items() if old.get(k) != v)
            raise FileExistsError(
                f'{root} holds a {name} dataset made with other settings '
                f'({diff}). Pass overwrite=True (--overwrite) to replace it, '
                'or choose another folder.')
        # an interrupted, modified or replaced run of ours: start afresh
        self.remove_outputs()
        return None

    def remove_outputs(self) -> None:
        """Delete what a generation writes (and nothing else)."""
        for rel in self.dirs:
            if osp.isdir(self.path(rel)):
                shutil.rmtree(self.path(rel))
        for rel in self.files:
            if osp.isfile(self.path(rel)):
                os.remove(self.path(rel))
        for rel in self.prune:
            if osp.isdir(self.path(rel)) and not os.listdir(self.path(rel)):
                os.rmdir(self.path(rel))

    def write_manifest(self, fields: Dict[str, Any], complete: bool) -> None:
        """Write the manifest: generator, version, ``fields`` (in order),
        and whether the dataset is complete.

        Written with ``complete=False`` before anything else, so that an
        interrupted run is recognisably ours and is redone without
        ``overwrite``; rewritten with ``complete=True`` last.
        """
        write_json(
            self.path(self.manifest_file),
            dict(
                generator=self.generator,
                generator_version=self.version,
                **fields,
                complete=complete),
            indent=self.indent)
