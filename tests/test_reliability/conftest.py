"""Fixtures of the reliability tests (helpers live in
``reliability_helpers`` and, for the annotation formats, in
``tests/test_datasets/tipr_fixtures``)."""
import logging
import os.path as osp
import sys
from typing import Callable, List, Optional

import pytest

_DATASET_TESTS = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'test_datasets')
if _DATASET_TESTS not in sys.path:
    sys.path.insert(0, _DATASET_TESTS)

from tipr_fixtures import FORMATS, write_dataset  # noqa: E402


@pytest.fixture
def make_tipr(tmp_path) -> Callable:
    """``make_tipr(type, entries=None, ann_name=None) -> (data_root,
    entries)``: a tiny dataset of that type's on-disk format."""

    def make(kind: str,
             entries: Optional[List[dict]] = None,
             ann_name: Optional[str] = None):
        folder, default_name, path_key, default_entries = FORMATS[kind]
        entries = default_entries() if entries is None else entries
        root = str(tmp_path / folder)
        write_dataset(root, ann_name or default_name, entries, path_key)
        return root, entries

    return make


@pytest.fixture
def mm_records():
    """Records logged through mmengine's current logger during the test."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
