"""Every metafile entry points at a config that exists and parses."""
import glob
import os.path as osp
import re

import pytest
import yaml
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METAFILES = sorted(glob.glob(osp.join(ROOT, 'configs/*/metafile.yml')))
from helpers.tool_loader import load_tool  # noqa: E402


@pytest.mark.parametrize('path', METAFILES)
def test_metafile_configs_exist(path):
    meta = yaml.safe_load(open(path))
    assert meta['Models'], path
    for model in meta['Models']:
        cfg = osp.join(ROOT, model['Config'])
        assert osp.isfile(cfg), f'{path}: {model["Config"]} is missing'
        Config.fromfile(cfg)
        for result in model.get('Results') or []:
            # paper and measured numbers must say which they are
            assert result.get('Source'), f'{model["Name"]} lacks a Source'


def test_there_are_metafiles():
    assert len(METAFILES) >= 2


def test_metafiles_follow_the_zoo_schema():
    """Sources say paper/measured, measured numbers name their data,
    collections and weights are valid (.dev_scripts/gen_model_zoo.py)."""
    tool = load_tool('.dev_scripts/gen_model_zoo.py')
    tool.validate({p: yaml.safe_load(open(p)) for p in METAFILES}, ROOT)


@pytest.mark.parametrize('path', METAFILES)
def test_measured_numbers_match_the_readme(path):
    """A measured number in a metafile is also in its method's README (of
    its collection, whichever metafile defines it: CCAF's ablation-baseline
    rows are CLIP-ReID models), or in the study log its run note names
    (``docs/studies/*.md``)."""
    meta = yaml.safe_load(open(path))
    readmes = {
        c['Name']: c.get('README')
        for p in METAFILES
        for c in yaml.safe_load(open(p)).get('Collections') or []
    }
    for model in meta['Models']:
        for result in model.get('Results') or []:
            if not str(result['Source']).startswith('measured'):
                continue
            readme = readmes.get(model['In Collection'])
            assert readme, f'{model["Name"]}: measured but no README'
            text = open(osp.join(ROOT, readme)).read()
            for study in re.findall(r'docs/studies/[\w.-]+\.md',
                                    str(result.get('Run', ''))):
                text += '\n' + open(osp.join(ROOT, study)).read()
            # a table row of the values, each optionally "± std" (means
            # over seeds)
            row = r'\s*\|\s*'.join(
                re.escape(f'{v:.2f}') + r'(?: ± [0-9.]+)?'
                for v in result['Metrics'].values())
            assert re.search(row, text), (
                f'{path}: {model["Name"]} {result.get("Split", "")} numbers '
                f'{row} are not in {readme} or its study log')
