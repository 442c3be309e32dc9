"""The repository cites only documents that it contains.

Method notes live in ``docs/methods/``; code and configs cite them as
``docs/methods/<name>.md §N`` (or ``<name>.md §N`` once the page is named).
Design notes kept outside the repository must not be cited, because users
never see them.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODS = ROOT / 'docs' / 'methods'
SELF = Path(__file__).resolve()
SCANNED = ('mmreid_clip', 'configs', 'tools', '.dev_scripts', 'docs', 'tests',
           'README.md', 'model_zoo.md')
TEXT_SUFFIXES = {'.py', '.md', '.yml', '.yaml', '.txt', '.cfg', '.sh',
                 '.json', '.toml', '.rst'}

#: Documents outside the repository, and the tags of their tables.
FORBIDDEN = [
    re.compile(r'spec\.md'),
    re.compile(r'datasets-and-protocols\.md'),
    re.compile(r'ecosystem\.md'),
    re.compile(r'\.\./shared'),
    re.compile(r'\[(?:I|B|S|P|B/I|S/I)\]\s*#\s*\d'),
]
#: A cited method page: docs/methods/<name>.md or methods/<name>.md.
PAGE = re.compile(r'(?:docs/)?methods/([\w-]+)\.md')
#: A cited section of a method page: <name>.md §N or §N.M.
SECTION = re.compile(r'([\w-]+)\.md`*\)?\s*§(\d+(?:\.\d+)?)')


def _scanned_files():
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            yield path
        elif path.is_dir():
            for f in sorted(path.rglob('*')):
                if (f.is_file() and f.suffix in TEXT_SUFFIXES
                        and f.resolve() != SELF):
                    yield f


def _read(path):
    return path.read_text(encoding='utf-8', errors='replace')


def _sections(page):
    """Section numbers ('3', '7.1') of the headings of a method page."""
    heads = re.findall(r'^#{2,4}\s+(\d+(?:\.\d+)?)\.?\s', _read(page),
                       flags=re.M)
    return set(heads)


def test_no_reference_to_documents_outside_the_repository():
    hits = []
    for f in _scanned_files():
        for lineno, line in enumerate(_read(f).splitlines(), 1):
            for pattern in FORBIDDEN:
                if pattern.search(line):
                    hits.append(f'{f.relative_to(ROOT)}:{lineno}: '
                                f'{line.strip()[:100]}')
    assert not hits, ('cite the paper or docs/methods/ instead:\n' +
                      '\n'.join(hits))


def test_cited_method_pages_and_sections_exist():
    pages = {p.stem: p for p in METHODS.glob('*.md')}
    assert {'cfine', 'ccaf', 'datasets', 'fidelity'} <= set(pages)
    missing = []
    for f in _scanned_files():
        text = _read(f)
        for name in PAGE.findall(text):
            if name not in pages:
                missing.append(f'{f.relative_to(ROOT)}: methods/{name}.md')
        for name, section in SECTION.findall(text):
            if name in pages and section not in _sections(pages[name]):
                missing.append(
                    f'{f.relative_to(ROOT)}: {name}.md §{section}')
    assert not missing, 'cited but missing:\n' + '\n'.join(sorted(
        set(missing)))


@pytest.mark.parametrize('line', [
    'see ccaf-spec.md §5', 'datasets-and-protocols.md §2',
    'ecosystem.md §3.6', '# [I] #11: centroid', '../shared/docs/x.md'
])
def test_patterns_catch_old_references(line):
    assert any(p.search(line) for p in FORBIDDEN)
