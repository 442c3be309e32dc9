"""Import a script under ``tools/`` or ``.dev_scripts/`` as a module, for
tests that call its functions (the tools are scripts, not a package)."""
import importlib.util
import os.path as osp
from types import ModuleType

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool(rel_path: str) -> ModuleType:
    """The module of ``ROOT/rel_path`` (e.g. ``'tools/analysis/x.py'``,
    ``'.dev_scripts/run_seeds.py'``)."""
    path = osp.join(ROOT, rel_path)
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
