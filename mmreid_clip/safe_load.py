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

This module is the one name to import them by; the readers live beside
it, one job each, and every name stays importable from here:
:mod:`.safe_load_trust` (the opt-in switch and
:class:`UnsafeCheckpointError`), :mod:`.safe_load_pickle`
(:func:`safe_torch_load` and its allow-list), :mod:`.safe_load_sources`
(URLs and mmengine's ``CheckpointLoader`` schemes) and
:mod:`.safe_load_torchscript` (TorchScript archives).
"""
from .safe_load_pickle import (_checkpoint_safe_globals,  # noqa: F401
                               _history_buffer_getattr, _refusal,
                               safe_torch_load)
from .safe_load_sources import (SAFE_SCHEMES, _load_from_bytes,  # noqa: F401
                                _load_from_ceph, _load_from_http,
                                _load_from_local, _load_from_mmcls,
                                _load_from_openmmlab, _load_from_pavi,
                                _load_from_torchvision, download_to_cache,
                                install_safe_loaders, load_url_safely)
from .safe_load_torchscript import (_STORAGE_DTYPES,  # noqa: F401
                                    _ArchiveUnpickler, _ClassInfo, _collect,
                                    _convert_hint, _identity, _script_classes,
                                    _ScriptObject, _StorageType,
                                    is_torchscript_archive,
                                    read_torchscript_state_dict,
                                    torchscript_state_dict)
from .safe_load_trust import (_FALSE, _TRUE, TRUST_ENV,  # noqa: F401
                              UnsafeCheckpointError, _trust_hint,
                              checkpoints_trusted, parse_bool_switch,
                              trust_checkpoints)

__all__ = [
    'TRUST_ENV', 'UnsafeCheckpointError', 'parse_bool_switch',
    'checkpoints_trusted', 'trust_checkpoints', 'safe_torch_load',
    'download_to_cache', 'load_url_safely', 'is_torchscript_archive',
    'read_torchscript_state_dict', 'torchscript_state_dict',
    'install_safe_loaders', 'SAFE_SCHEMES'
]
