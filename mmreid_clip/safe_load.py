"""The one safe path every source of weights is read through.

Every weight file the project reads, whatever the entry point (``load_from``,
``--resume``, ``init_cfg=dict(type='Pretrained')``, ``pretrained=`` of the
CLIP towers, open_clip tags, the converters), ends in one of two readers:

* :func:`safe_torch_load`: ``torch.load(weights_only=True)`` with an
  allow-list of exactly the types mmengine's Runner writes (numpy arrays
  and dtypes, ``HistoryBuffer``, ``ConfigDict``). A URL is downloaded to
  the torch hub cache first (:func:`load_url_safely`) and then read the
  same way.
* :func:`read_torchscript_state_dict`: the tensors of a TorchScript
  archive (OpenAI's ``ViT-B-16.pt``), rebuilt from the archive's data
  records by a restricted unpickler that creates only tensors and inert
  stand-ins for the scripted modules. The archive's code is never run
  (``torch.jit.load`` runs scripted ``__setstate__`` methods, which can
  write files).

Arbitrary pickled objects are loaded only when the user opts in:
``MMREID_TRUST_CHECKPOINTS=1`` (:func:`checkpoints_trusted`, parsed
strictly) or :func:`trust_checkpoints`. ``docs/reliability.md`` (section
"Safe loading") lists every entry point with the test that pins it.
"""
import collections
import contextlib
import io
import os
import os.path as osp
import pickle
import re
import sys
import tempfile
import zipfile
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.logging import print_log

__all__ = [
    'TRUST_ENV', 'UnsafeCheckpointError', 'parse_bool_switch',
    'checkpoints_trusted', 'trust_checkpoints', 'safe_torch_load',
    'download_to_cache', 'load_url_safely', 'is_torchscript_archive',
    'read_torchscript_state_dict', 'torchscript_state_dict',
    'install_safe_loaders', 'SAFE_SCHEMES'
]

TRUST_ENV = 'MMREID_TRUST_CHECKPOINTS'
_TRUE = ('1', 'true', 'yes', 'on')
_FALSE = ('', '0', 'false', 'no', 'off')


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds pickled objects outside the allow-list."""


def parse_bool_switch(value: Optional[str], name: str) -> bool:
    """Read an on/off environment switch strictly.

    ``1/true/yes/on`` are on, ``0/false/no/off`` and the empty string (or
    an unset variable) are off, in any case and with surrounding spaces;
    anything else is an error, so that a typo never turns a safety switch
    on (or off) silently.

    Args:
        value: The variable's value (None when unset).
        name: The variable, for the error message.

    Raises:
        ValueError: ``value`` is none of the above.
    """
    if value is None:
        return False
    norm = value.strip().lower()
    if norm in _TRUE:
        return True
    if norm in _FALSE:
        return False
    raise ValueError(
        f'{name}={value!r} is not a yes/no value: use 1/true/yes to turn '
        f'it on, or 0/false/no/off (or leave it unset) to turn it off.')


def checkpoints_trusted() -> bool:
    """Whether the user opted in to loading arbitrary pickled checkpoints.

    Raises:
        ValueError: ``MMREID_TRUST_CHECKPOINTS`` holds a value that is
            neither yes nor no (:func:`parse_bool_switch`).
    """
    return parse_bool_switch(os.environ.get(TRUST_ENV), TRUST_ENV)


@contextlib.contextmanager
def trust_checkpoints() -> Iterator[None]:
    """Context in which checkpoints are loaded with ``weights_only=False``.

    Only for files you trust: unpickling them can execute arbitrary code.
    """
    old = os.environ.get(TRUST_ENV)
    os.environ[TRUST_ENV] = '1'
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(TRUST_ENV, None)
        else:
            os.environ[TRUST_ENV] = old


def _trust_hint() -> str:
    return (f'If you trust this file, set {TRUST_ENV}=1 (or pass '
            '--trust-checkpoint to tools/train.py / tools/test.py).')


# ---------------------------------------------------------------------------
# torch.load with the allow-list


def _checkpoint_safe_globals() -> List:
    """Types that mmengine's Runner writes into its checkpoints.

    The message hub stores ``HistoryBuffer`` objects holding numpy arrays and
    numpy scalars; the config travels as mmengine ``ConfigDict`` in some
    versions. Nothing here can run code when unpickled: they are plain data
    containers reconstructed field by field.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    # numpy 2 pickles arrays through numpy._core, numpy 1 through numpy.core
    core = np._core if hasattr(np, '_core') else np.core
    safe = [
        HistoryBuffer, collections.OrderedDict, collections.defaultdict,
        np.ndarray, np.dtype, core.multiarray._reconstruct,
        core.multiarray.scalar
    ]
    # numpy >= 1.25 pickles dtypes as instances of per-type dtype classes
    # (numpy.dtypes.Float64DType, ...); allow every one of them.
    safe += [
        getattr(np.dtypes, name) for name in dir(np.dtypes)
        if name.endswith('DType')
    ]
    from mmengine.config import ConfigDict
    safe.append(ConfigDict)
    # HistoryBuffer pickles its statistics methods as getattr(HistoryBuffer,
    # name); the stand-in resolves exactly those and nothing else.
    safe.append((_history_buffer_getattr, 'builtins.getattr'))
    return safe


def _history_buffer_getattr(obj, name: str):
    from mmengine.logging.history_buffer import HistoryBuffer

    # the built-in statistics are registered lazily (on the first
    # HistoryBuffer()), so name them explicitly as well
    allowed = {'min', 'max', 'current', 'mean'}
    allowed.update(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise UnsafeCheckpointError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def _refusal(filename: str, what: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f'Refusing to load checkpoint {filename}: it contains pickled '
        f'objects that are not plain weights or the mmengine training state '
        f'({what}). Unpickling them could run arbitrary code. ' +
        _trust_hint())


def safe_torch_load(filename: str, map_location=None):
    """``torch.load`` a checkpoint, refusing anything off the allow-list.

    Args:
        filename (str): Path of the checkpoint.
        map_location: As for :func:`torch.load`.

    Returns:
        The unpickled checkpoint.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        UnsafeCheckpointError: the file needs globals outside the allow-list;
            the message names the file, the globals and how to opt in for
            trusted files.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist.')
    if checkpoints_trusted():
        print_log(
            f'{TRUST_ENV} is set: loading {filename} with weights_only=False '
            '(this can execute code from the file).',
            logger='current',
            level=30)
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    with torch.serialization.safe_globals(_checkpoint_safe_globals()):
        try:
            return torch.load(
                filename, map_location=map_location, weights_only=True)
        except UnsafeCheckpointError as err:  # the getattr stand-in
            raise _refusal(filename, str(err)) from None
        except Exception as err:  # torch raises UnpicklingError/RuntimeError
            if 'weights_only' not in str(err) and 'Unsupported' not in str(
                    err):
                raise
            try:
                unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(
                    filename)
            except Exception:  # a non-zip legacy file cannot be listed
                unsafe = []
            allowed = {
                g[1] if isinstance(g, tuple) else
                f'{g.__module__}.{g.__qualname__}'
                for g in _checkpoint_safe_globals()
            }
            unsafe = [g for g in unsafe if g not in allowed]
            if not unsafe:
                # a legacy (non-zip) file cannot be listed; torch's message
                # names the first offending global
                unsafe = re.findall(r'GLOBAL ([\w.]+)', str(err))[:1]
            if not unsafe and 'getattr(' in str(err):
                unsafe = re.findall(r'getattr\([^\n]*\)', str(err))[:1]
            what = ', '.join(unsafe) if unsafe else str(err).splitlines()[0]
            raise _refusal(filename, what) from None


# ---------------------------------------------------------------------------
# URLs: download to the cache, then the same allow-list loader


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


# ---------------------------------------------------------------------------
# mmengine's CheckpointLoader schemes


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


# ---------------------------------------------------------------------------
# TorchScript archives, read without running them

_STORAGE_DTYPES = {
    'HalfStorage': torch.float16,
    'FloatStorage': torch.float32,
    'DoubleStorage': torch.float64,
    'BFloat16Storage': torch.bfloat16,
    'LongStorage': torch.int64,
    'IntStorage': torch.int32,
    'ShortStorage': torch.int16,
    'CharStorage': torch.int8,
    'ByteStorage': torch.uint8,
    'BoolStorage': torch.bool,
    'ComplexFloatStorage': torch.complex64,
    'ComplexDoubleStorage': torch.complex128,
}


def is_torchscript_archive(path: str) -> bool:
    """Whether ``path`` is a ``torch.jit.save`` archive.

    ``torch.jit.save`` writes ``<name>/constants.pkl``, ``torch.save``
    never does (the test ``torch.load`` uses to dispatch to
    ``torch.jit.load``).
    """
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(
            n.count('/') == 1 and n.endswith('/constants.pkl')
            for n in zf.namelist())


class _StorageType:
    """Stand-in for ``torch.<X>Storage`` in a persistent id."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class _ScriptObject:
    """Inert stand-in for an instance of a scripted class: it only records
    the state the pickle hands to ``__setstate__``."""

    qualname = ''

    def __setstate__(self, state) -> None:
        self.__dict__['state'] = state


def _identity(value, *args):
    return value


class _ClassInfo(collections.namedtuple('_ClassInfo',
                                        'is_module params buffers')):
    pass


def _script_classes(zf: zipfile.ZipFile, prefix: str) -> Dict[str,
                                                               _ClassInfo]:
    """Parameter and buffer names of every scripted class, read as text
    from the archive's ``code/`` records (never compiled or run)."""
    classes = {}
    root = f'{prefix}/code/'
    for name in zf.namelist():
        if not (name.startswith(root) and name.endswith('.py')):
            continue
        module = name[len(root):-len('.py')].replace('/', '.')
        text = zf.read(name).decode('utf-8', errors='replace')
        for match in re.finditer(
                r'^class (\w+)\(([\w.]+)\):\n((?:[ \t].*\n|\n)*)',
                text + '\n', re.M):
            cls, base, body = match.groups()
            lists = {}
            for attr in ('__parameters__', '__buffers__'):
                found = re.search(rf'^\s+{attr} = \[(.*?)\]', body,
                                  re.M | re.S)
                lists[attr] = re.findall(r'"([^"]*)"',
                                         found.group(1)) if found else []
            classes[f'{module}.{cls}'] = _ClassInfo(
                base == 'Module', lists['__parameters__'],
                lists['__buffers__'])
    return classes


class _ArchiveUnpickler(pickle.Unpickler):
    """Rebuilds tensors and inert stand-ins, nothing else."""

    def __init__(self, data: bytes, zf: zipfile.ZipFile, prefix: str,
                 path: str) -> None:
        super().__init__(io.BytesIO(data))
        self.zf = zf
        self.prefix = prefix
        self.path = path
        self.storages: Dict[str, torch.Tensor] = {}
        self.stubs: Dict[str, type] = {}

    def find_class(self, module: str, name: str):
        if module == '__torch__' or module.startswith('__torch__.'):
            qualname = f'{module}.{name}'
            if qualname not in self.stubs:
                self.stubs[qualname] = type('ScriptObject', (_ScriptObject, ),
                                            dict(qualname=qualname))
            return self.stubs[qualname]
        if module == 'torch' and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == 'torch._utils' and name == '_rebuild_tensor_v2':
            return self._rebuild_tensor
        if module == 'torch._utils' and name == '_rebuild_tensor':
            return self._rebuild_tensor
        if module == 'collections' and name == 'OrderedDict':
            return collections.OrderedDict
        if module == 'torch.jit._pickle' and (name == 'restore_type_tag'
                                              or name.startswith('build_')):
            return _identity
        raise UnsafeCheckpointError(
            f'Refusing to read the TorchScript archive {self.path}: its '
            f'data refers to {module}.{name}, which is neither a tensor nor '
            f'a scripted module. ' + _trust_hint())

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5
                and pid[0] == 'storage'
                and isinstance(pid[1], _StorageType)):
            raise UnsafeCheckpointError(
                f'{self.path}: unknown storage record {pid!r} in the '
                'TorchScript archive')
        _, storage_type, key, _location, numel = pid
        key = str(key)
        if key not in self.storages:
            raw = self.zf.read(f'{self.prefix}/data/{key}')
            dtype = storage_type.dtype
            itemsize = torch.empty((), dtype=dtype).element_size()
            if len(raw) != int(numel) * itemsize:
                raise ValueError(
                    f'{self.path}: storage {key} holds {len(raw)} bytes, '
                    f'not {numel} x {itemsize}; the archive is corrupt')
            self.storages[key] = (torch.frombuffer(bytearray(raw),
                                                   dtype=dtype)
                                  if raw else torch.empty(0, dtype=dtype))
        return self.storages[key]

    @staticmethod
    def _rebuild_tensor(storage, storage_offset, size, stride, *args):
        return storage.as_strided(tuple(size), tuple(stride),
                                  int(storage_offset))


def read_torchscript_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The ``state_dict()`` of a TorchScript archive, without running it.

    ``data.pkl`` is unpickled by a restricted unpickler that rebuilds
    tensors from the ``data/<n>`` records and turns every scripted object
    into an inert stand-in; which attributes are parameters and buffers is
    read from the ``__parameters__``/``__buffers__`` lines of the archive's
    code, as text. The result holds exactly the tensors, keys and values
    ``torch.jit.load(path).state_dict()`` returns.

    A module that restores itself with its own scripted ``__setstate__``
    (never the case in OpenAI's or open_clip's archives) cannot be read
    without running that code and is refused, as is any pickled global
    other than tensors, storages and ordered dicts.

    Args:
        path: The archive.

    Returns:
        dict: Tensors by state-dict key (CPU, the archive's dtypes).

    Raises:
        UnsafeCheckpointError: the archive needs its code to be run; the
            message says how to convert it once in a trusted environment.
        ValueError: not a TorchScript archive, or a corrupt one.
    """
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkls = [n for n in names if n.count('/') == 1
                and n.endswith('/data.pkl')]
        if len(pkls) != 1:
            raise ValueError(f'{path} is not a TorchScript archive (no '
                             'single <name>/data.pkl record)')
        prefix = pkls[0].split('/')[0]
        order = f'{prefix}/byteorder'
        if order in names and zf.read(order).decode().strip() not in (
                sys.byteorder, ''):
            raise ValueError(f'{path} was written on a '
                             f'{zf.read(order).decode().strip()}-endian '
                             'machine; convert it there')
        classes = _script_classes(zf, prefix)
        try:
            root = _ArchiveUnpickler(zf.read(pkls[0]), zf, prefix,
                                     path).load()
        except (UnsafeCheckpointError, ValueError):
            raise
        except Exception as err:  # a truncated or malformed pickle
            raise ValueError(f'{path}: unreadable TorchScript data '
                             f'({type(err).__name__}: {err})') from None
    state_dict: Dict[str, torch.Tensor] = {}
    _collect(root, '', classes, path, state_dict, set())
    return state_dict


def _convert_hint(path: str) -> str:
    return (f'To use it, convert it once in an environment you trust: '
            f'python -c "import torch; torch.save(dict(torch.jit.load('
            f'{path!r}, map_location=\'cpu\').state_dict()), '
            f'\'weights.pth\')" and pass weights.pth instead. If you trust '
            f'the file, {TRUST_ENV}=1 loads it with torch.jit.load.')


def _collect(obj: Any, prefix: str, classes: Dict[str, _ClassInfo],
             path: str, out: Dict[str, torch.Tensor], seen: set) -> None:
    where = prefix[:-1] or 'the root module'
    if not isinstance(obj, _ScriptObject):
        raise ValueError(f'{path}: {where} is not a scripted module')
    info = classes.get(obj.qualname)
    if info is None or not info.is_module:
        raise ValueError(f'{path}: the archive has no code for the module '
                         f'class {obj.qualname} of {where}; it is not a '
                         'TorchScript module archive')
    state = obj.__dict__.get('state')
    if not isinstance(state, dict):
        raise UnsafeCheckpointError(
            f'Refusing to read the TorchScript archive {path}: {where} '
            f'({obj.qualname}) restores itself with its own scripted '
            f'__setstate__, which torch.jit.load would run. ' +
            _convert_hint(path))
    if id(obj) in seen:
        return
    seen.add(id(obj))
    for name in info.params + info.buffers:
        value = state.get(name)
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
    for name, value in state.items():
        if isinstance(value, _ScriptObject):
            child = classes.get(value.qualname)
            if child is not None and child.is_module:
                _collect(value, f'{prefix}{name}.', classes, path, out, seen)


def torchscript_state_dict(path: str) -> Tuple[Dict[str, torch.Tensor], bool]:
    """:func:`read_torchscript_state_dict`, or ``torch.jit.load`` when the
    user trusts checkpoints and the archive cannot be read as data.

    Returns:
        ``(state_dict, ran_code)``.
    """
    try:
        return read_torchscript_state_dict(path), False
    except UnsafeCheckpointError:
        if not checkpoints_trusted():
            raise
    print_log(
        f'{TRUST_ENV} is set: loading {path} with torch.jit.load (this runs '
        'the archive\'s code).',
        logger='current',
        level=30)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        module = torch.jit.load(path, map_location='cpu')
    return dict(module.state_dict()), True
