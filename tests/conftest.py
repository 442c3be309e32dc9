import os

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
