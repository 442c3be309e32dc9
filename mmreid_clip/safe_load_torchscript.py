"""TorchScript archives read as data (OpenAI's ``ViT-B-16.pt``): a
restricted unpickler rebuilds the tensors and inert stand-ins for the
scripted modules, and the parameter and buffer names are read from the
archive's code as text; the code is never run (part of
:mod:`mmreid_clip.safe_load`).
"""
import collections
import io
import pickle
import re
import sys
import zipfile
from typing import Any, Dict, Tuple

import torch
from mmengine.logging import print_log

from .safe_load_trust import (TRUST_ENV, UnsafeCheckpointError, _trust_hint,
                              checkpoints_trusted)

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


def _script_classes(zf: zipfile.ZipFile,
                    prefix: str) -> Dict[str, _ClassInfo]:
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
