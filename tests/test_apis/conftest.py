import pytest
from helpers.tiny_search_setup import make_tiny_setup


@pytest.fixture(scope='session')
def tiny(tmp_path_factory):
    """Tiny SynthPedes data, a tiny config and two random checkpoints."""
    return make_tiny_setup(str(tmp_path_factory.mktemp('tiny_search')))
