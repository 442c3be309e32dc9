"""Fixtures of every test; shared helper modules live in ``tests/helpers``
(importable as ``helpers``: ``pythonpath = tests`` in setup.cfg)."""
import contextlib
import logging
import os
from typing import Callable, Iterator, List, Optional, Tuple

# Keep tests single-threaded per process and offline: the machine has two
# cores and no network, and CI runs on the same size.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('OMP_NUM_THREADS', '2')

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope='session')
def _mmreid_scope():
    from mmreid_clip.utils import register_all_modules
    register_all_modules(init_scope=True)
    yield


@contextlib.contextmanager
def _default_scope_restored() -> Iterator[None]:
    """Put ``DefaultScope``'s instances back as they were on entry.

    A Runner (or ``init_default_scope``) registers a new current default
    scope for the rest of the process, so a later test's registry lookups
    would depend on which tests ran before it. The instances live in the
    class's ``_instance_dict`` (``mmengine.utils.ManagerMixin``), which
    ``DefaultScope.overwrite_default_scope`` also replaces wholesale, so
    both the object and its content are put back.
    """
    from mmengine.registry import DefaultScope
    saved = DefaultScope._instance_dict
    content = saved.copy()
    try:
        yield
    finally:
        saved.clear()
        saved.update(content)
        DefaultScope._instance_dict = saved


@pytest.fixture(autouse=True, scope='module')
def _restore_default_scope_per_module() -> Iterator[None]:
    """Also around each module: module-scoped fixtures (a Runner built once
    for a module) are set up outside the per-test window below."""
    with _default_scope_restored():
        yield


@pytest.fixture(autouse=True)
def _restore_default_scope() -> Iterator[None]:
    """Undo the default scopes a test leaves behind (see
    :func:`_default_scope_restored`)."""
    with _default_scope_restored():
        yield


@pytest.fixture
def mm_records() -> Iterator[List[logging.LogRecord]]:
    """Records logged through mmengine's current logger during the test.

    The MMLogger does not propagate to the root logger, so pytest's
    ``caplog`` cannot see them.
    """
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    records: List[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def make_tipr(tmp_path) -> Callable:
    """``make_tipr(type, entries=None, ann_name=None) -> (data_root,
    entries)`` writes a tiny dataset of that type's on-disk format (see
    ``helpers.tipr_fixtures.FORMATS``) under ``tmp_path``."""
    from helpers.tipr_fixtures import FORMATS, write_dataset

    def make(kind: str,
             entries: Optional[List[dict]] = None,
             ann_name: Optional[str] = None) -> Tuple[str, List[dict]]:
        folder, default_name, path_key, default_entries = FORMATS[kind]
        entries = default_entries() if entries is None else entries
        root = str(tmp_path / folder)
        write_dataset(root, ann_name or default_name, entries, path_key)
        return root, entries

    return make
