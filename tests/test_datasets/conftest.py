"""Fixtures of the dataset tests (helpers live in ``tipr_fixtures``)."""
from typing import Callable, List, Optional

import pytest
from tipr_fixtures import FORMATS, write_dataset


@pytest.fixture
def make_tipr(tmp_path) -> Callable:
    """``make_tipr(type, entries=None, ann_name=None) -> (data_root,
    entries)`` writes a dataset of that type's format under ``tmp_path``."""

    def make(kind: str,
             entries: Optional[List[dict]] = None,
             ann_name: Optional[str] = None):
        folder, default_name, path_key, default_entries = FORMATS[kind]
        entries = default_entries() if entries is None else entries
        root = str(tmp_path / folder)
        write_dataset(root, ann_name or default_name, entries, path_key)
        return root, entries

    return make
