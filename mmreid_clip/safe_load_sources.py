"""Weights from elsewhere than a local file, read safely: URLs are
downloaded to the torch hub cache and read by
:func:`~mmreid_clip.safe_load_pickle.safe_torch_load`, and every scheme of
mmengine's ``CheckpointLoader`` is replaced by one that does the same
(part of :mod:`mmreid_clip.safe_load`).
"""
import io
import os
import os.path as osp
import tempfile
from typing import Optional
from urllib.parse import urlparse

import torch
from mmengine.logging import print_log

from .safe_load_pickle import safe_torch_load
from .safe_load_trust import UnsafeCheckpointError


def download_to_cache(url: str, model_dir: Optional[str] = None) -> str:
    """Download ``url`` once into the torch hub cache and return the path.

    The file lands where ``torch.hub.load_state_dict_from_url`` puts it
    (``$TORCH_HOME/hub/checkpoints/<basename>``), so files mmengine
    downloaded before are reused. ``torch.hub.download_url_to_file`` writes
    to a temporary name and renames it, so an interrupted download never
    leaves a partial file under the final name.

    Args:
        url: An ``http://`` or ``https://`` address.
        model_dir: Folder; defaults to the torch hub cache.

    Returns:
        str: The local file.
    """
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    name = osp.basename(urlparse(url).path)
    if not name or name in ('.', '..'):
        raise ValueError(f'cannot name the download of {url!r}: the URL '
                         'path does not end with a file name')
    path = osp.join(model_dir, name)
    if not osp.isfile(path):
        os.makedirs(model_dir, exist_ok=True)
        print_log(f'Downloading {url} to {path}', logger='current')
        torch.hub.download_url_to_file(url, path, progress=False)
    return path


def load_url_safely(url: str, map_location=None,
                    model_dir: Optional[str] = None):
    """Download a checkpoint (rank 0 first) and read it with
    :func:`safe_torch_load`, never with ``weights_only=False`` unless the
    user trusts checkpoints.

    Raises:
        UnsafeCheckpointError: as :func:`safe_torch_load`; the message names
            the URL and the downloaded file.
    """
    from mmengine.dist import get_dist_info
    rank, world_size = get_dist_info()
    if rank == 0:
        path = download_to_cache(url, model_dir)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = download_to_cache(url, model_dir)
    try:
        return safe_torch_load(path, map_location)
    except UnsafeCheckpointError as err:
        raise UnsafeCheckpointError(f'{url} (downloaded to {path}): '
                                    f'{err}') from None


def _load_from_local(filename: str, map_location=None):
    # mmengine's scheme loaders take (filename, map_location)
    return safe_torch_load(filename, map_location)


def _load_from_http(filename: str, map_location=None, model_dir=None,
                    progress=False):
    # mmengine's own loader reads downloads with weights_only=False
    return load_url_safely(filename, map_location, model_dir)


def _load_from_torchvision(filename: str, map_location=None):
    from mmengine.runner.checkpoint import get_torchvision_models
    name = filename.split('://', 1)[1]
    return _load_from_http(get_torchvision_models()[name], map_location)


def _load_from_openmmlab(filename: str, map_location=None):
    from mmengine.runner.checkpoint import (_get_mmengine_home,
                                            get_deprecated_model_names,
                                            get_external_models)
    name = filename.split('://', 1)[1]
    name = get_deprecated_model_names().get(name, name)
    url = get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return _load_from_http(url, map_location)
    return safe_torch_load(osp.join(_get_mmengine_home(), url), map_location)


def _load_from_mmcls(filename: str, map_location=None):
    from mmengine.runner.checkpoint import (_process_mmcls_checkpoint,
                                            get_mmcls_models)
    checkpoint = _load_from_http(get_mmcls_models()[filename[8:]],
                                 map_location)
    return _process_mmcls_checkpoint(checkpoint)


def _load_from_bytes(data: bytes, source: str, map_location=None):
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, osp.basename(source) or 'checkpoint.pth')
        with open(path, 'wb') as f:
            f.write(data)
        try:
            return safe_torch_load(path, map_location)
        except UnsafeCheckpointError as err:
            raise UnsafeCheckpointError(
                str(err).replace(path, source)) from None


def _load_from_ceph(filename: str, map_location=None, backend='petrel'):
    from mmengine.fileio import get_file_backend
    file_backend = get_file_backend(
        filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return _load_from_bytes(buffer.getvalue(), filename, map_location)


def _load_from_pavi(filename: str, map_location=None):
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError(
            'Please install pavi to load checkpoint from modelcloud.')
    model = modelcloud.get(filename[len('pavi://'):])
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, model.name)
        model.download(path)
        return safe_torch_load(path, map_location)


#: Every scheme mmengine 0.10.7 registers, with its safe replacement.
SAFE_SCHEMES = (
    ('', _load_from_local),
    (('http://', 'https://'), _load_from_http),
    (('modelzoo://', 'torchvision://'), _load_from_torchvision),
    (('open-mmlab://', 'openmmlab://'), _load_from_openmmlab),
    ('mmcls://', _load_from_mmcls),
    ([r'(\S+\:)?s3://', r'(\S+\:)?petrel://'], _load_from_ceph),
    ('pavi://', _load_from_pavi),
)


def install_safe_loaders() -> None:
    """Register :data:`SAFE_SCHEMES` with mmengine's ``CheckpointLoader``
    (idempotent). Importing :mod:`mmreid_clip.registry` does it, so any
    model built through the project's registries loads safely."""
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefixes, loader in SAFE_SCHEMES:
        CheckpointLoader.register_scheme(
            prefixes=prefixes, loader=loader, force=True)
