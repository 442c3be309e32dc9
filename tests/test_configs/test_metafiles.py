"""Every metafile entry points at a config that exists and parses."""
import glob
import os.path as osp

import pytest
import yaml
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METAFILES = sorted(glob.glob(osp.join(ROOT, 'configs/*/metafile.yml')))


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
