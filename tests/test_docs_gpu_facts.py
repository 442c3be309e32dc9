"""The method READMEs' "Running on GPUs" sections: present, and their GPU
time estimates follow from their own columns (items x epochs / samples per
second), so an edited figure cannot drift from the others silently."""
import os.path as osp
import re

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
READMES = ('cfine', 'ccaf', 'clip_reid', 'baselines')


def _section(name: str) -> str:
    with open(osp.join(ROOT, 'configs', name, 'README.md')) as f:
        text = f.read()
    assert '## Running on GPUs' in text, name
    return text.split('## Running on GPUs', 1)[1].split('\n## ', 1)[0]


def _num(cell: str) -> float:
    return float(cell.replace(',', ''))


@pytest.mark.parametrize('name', READMES)
def test_section_says_batch_and_checkpoint(name):
    section = _section(name)
    assert 'Which checkpoint to report' in section
    assert re.search(r'per\s+process|one process', section)


def _rows(section: str):
    for line in section.splitlines():
        if line.startswith('| `'):
            yield [c.strip() for c in line.strip('|').split('|')]


@pytest.mark.parametrize('name,unit', [('cfine', 3600.0), ('ccaf', 60.0)])
def test_estimates_follow_from_the_table(name, unit):
    rates = None
    rows = list(_rows(_section(name)))
    assert len(rows) >= 2
    for cells in rows:
        items, epochs = _num(cells[1]), _num(cells[2])
        if cells[4] != 'same model':
            rates = [_num(x) for x in cells[4].split('/')]
        estimates = [float(re.sub(r'[^\d.]', '', x))
                     for x in cells[5].split('/')]
        for rate, est in zip(rates, estimates):
            exact = items * epochs / rate / unit
            # rounded to one decimal (hours) or to the minute
            tolerance = 0.05 if unit == 3600 else 0.5
            assert abs(exact - est) <= tolerance + 1e-9, (cells[0], exact,
                                                          est)


def test_clip_reid_estimates_follow_from_the_table():
    for cells in _rows(_section('clip_reid')):
        minutes = _num(cells[1]) * 60 / 1045 / 60
        assert abs(minutes - float(cells[2].split()[0])) <= 0.5, cells
