"""Imports inside ``mmreid_clip`` follow the layers of ``docs/design.md``.

The rule table and the table of recorded exceptions are read from the
"Layers" section of ``docs/design.md`` (the doc is the one place they are
written), so the picture and this check cannot drift apart. Every import of
every module under ``mmreid_clip/`` is checked, module-level and inside
functions (parsed with ``ast``, nothing is imported).
"""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'mmreid_clip'
DOC = ROOT / 'docs' / 'design.md'


def _table_after(marker: str):
    """Rows (lists of cells) of the markdown table after ``marker``."""
    text = DOC.read_text(encoding='utf-8')
    assert marker in text, f'docs/design.md lost its {marker!r}'
    lines = text.split(marker, 1)[1].strip().splitlines()
    rows = []
    for line in lines:
        if not line.startswith('|'):
            break
        rows.append([c.strip() for c in line.strip().strip('|').split('|')])
    return rows[2:]  # header and separator


def _paths(cell: str):
    return re.findall(r'`([^`]+)`', cell)


def load_rules():
    """layer -> (path patterns, allowed layers) and the exception pairs."""
    layers = {}
    for name, modules, allowed in _table_after(
            '<!-- layer table: read by tests/test_design_layers.py -->'):
        allow = {a.strip() for a in allowed.split(',') if a.strip()}
        layers[name] = (_paths(modules), allow | {name})
    exceptions = set()
    for module, imports, reason in _table_after(
            '<!-- layer exceptions: read by tests/test_design_layers.py -->'):
        assert reason, f'exception {module} -> {imports} gives no reason'
        for src in _paths(module):
            for dst in _paths(imports):
                exceptions.add((src, dst))
    return layers, exceptions


LAYERS, EXCEPTIONS = load_rules()


def layer_of(rel: str) -> str:
    """The layer of a file path relative to ``mmreid_clip/`` (longest
    matching pattern: a file, or a folder ending in ``/``)."""
    best, best_len = None, -1
    for name, (patterns, _) in LAYERS.items():
        for pattern in patterns:
            hit = (rel.startswith(pattern) if pattern.endswith('/') else
                   rel == pattern)
            if hit and len(pattern) > best_len:
                best, best_len = name, len(pattern)
    assert best is not None, f'{rel} is in no layer of docs/design.md'
    return best


def _module_file(dotted: str):
    """``mmreid_clip.a.b`` -> ``a/b.py`` or ``a/b/__init__.py`` (relative to
    the package), or None when no such file exists."""
    parts = dotted.split('.')[1:]
    base = PKG.joinpath(*parts) if parts else PKG
    for cand in (base.with_suffix('.py'), base / '__init__.py'):
        if parts and cand.is_file():
            return cand.relative_to(PKG).as_posix()
    if not parts:
        return '__init__.py'
    return None


def imported_files(path: Path):
    """(line, target file relative to mmreid_clip/) of every import of an
    ``mmreid_clip`` module in ``path``."""
    rel = path.relative_to(PKG)
    package = ['mmreid_clip', *rel.parent.parts]
    tree = ast.parse(path.read_text(encoding='utf-8'))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] == 'mmreid_clip':
                    yield node.lineno, _module_file(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = '.'.join(base + ([node.module]
                                          if node.module else []))
            else:
                module = node.module or ''
            if module.split('.')[0] != 'mmreid_clip':
                continue
            for alias in node.names:
                # ``from pkg import submodule`` imports the submodule
                target = _module_file(f'{module}.{alias.name}')
                yield node.lineno, target or _module_file(module)


def test_doc_tables_are_complete():
    assert {'core', 'models', 'entry'} - set(LAYERS) == {'models'}
    for name, (_, allowed) in LAYERS.items():
        assert allowed <= set(LAYERS), (name, allowed - set(LAYERS))
    for src, dst in EXCEPTIONS:
        assert (PKG / src).is_file() and (PKG / dst).is_file(), (src, dst)


def test_every_module_is_in_a_layer():
    for path in sorted(PKG.rglob('*.py')):
        layer_of(path.relative_to(PKG).as_posix())


def test_no_module_imports_a_higher_layer():
    bad, used = [], set()
    for path in sorted(PKG.rglob('*.py')):
        src = path.relative_to(PKG).as_posix()
        src_layer = layer_of(src)
        allowed = LAYERS[src_layer][1]
        for line, dst in imported_files(path):
            assert dst is not None, f'{src}:{line}: unresolved import'
            dst_layer = layer_of(dst)
            if dst_layer in allowed:
                continue
            if (src, dst) in EXCEPTIONS:
                used.add((src, dst))
                continue
            bad.append(f'mmreid_clip/{src}:{line} ({src_layer}) imports '
                       f'{dst} ({dst_layer})')
    assert not bad, ('imports against the layer table of docs/design.md '
                     '(fix them, or record the exception there with its '
                     'reason):\n' + '\n'.join(bad))
    # an exception that no longer happens must leave the doc
    assert used == EXCEPTIONS, EXCEPTIONS - used


@pytest.mark.parametrize('src,dst,ok', [
    ('models/backbones/openclip_vision.py', 'models/utils/freeze.py', True),
    ('models/utils/freeze.py', 'models/backbones/openclip_vision.py', False),
    ('datasets/reid_collate.py', 'models/retrievers/clip_reid.py', False),
    ('models/heads/prompt_learner.py', 'datasets/tokenizers.py', True),
    ('models/heads/prompt_learner.py', 'datasets/text_image_dataset.py',
     False),
    ('engine/runner/two_stage_loop.py', 'models/retrievers/cfine.py', False),
    ('apis/inference.py', 'models/retrievers/cfine.py', True),
])
def test_rule_table_reads_as_intended(src, dst, ok):
    assert (layer_of(dst) in LAYERS[layer_of(src)][1]) == ok
