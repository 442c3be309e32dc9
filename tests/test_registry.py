"""Registry wiring: our scope, mmpretrain's parents, and external plugins."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mmreid_clip.registry import (DATA_SAMPLERS, DATASETS, FUNCTIONS, METRICS,
                                  MODELS, OPTIM_WRAPPERS, TRANSFORMS)

HERE = osp.dirname(osp.abspath(__file__))


def test_scope_and_parent_lookups():
    assert MODELS.scope == 'mmreid_clip'
    # our own components
    for registry, name in [(MODELS, 'CLIPTextImageReID'),
                           (MODELS, 'OpenCLIPVisionTransformer'),
                           (MODELS, 'SDMLoss'), (DATASETS, 'CUHKPEDES'),
                           (TRANSFORMS, 'TokenizeCaption'),
                           (DATA_SAMPLERS, 'IdentityBalancedSampler'),
                           (METRICS, 'TextImageRetrievalMetric'),
                           (OPTIM_WRAPPERS, 'CPUAutocastOptimWrapper'),
                           (FUNCTIONS, 'text_image_collate')]:
        assert registry.get(name) is not None, name
    # mmpretrain's and mmengine's, without prefixes
    assert MODELS.get('ImageClassifier').__module__.startswith('mmpretrain')
    assert TRANSFORMS.get('RandomFlip') is not None
    assert TRANSFORMS.get('mmpretrain.RandomErasing').__module__.startswith(
        'mmpretrain')
    # ours extends mmpretrain's (impl='timm') under the same name
    assert issubclass(TRANSFORMS.get('RandomErasing'),
                      TRANSFORMS.get('mmpretrain.RandomErasing'))
    assert OPTIM_WRAPPERS.get('OptimWrapper') is not None


def test_unknown_type_names_the_type():
    with pytest.raises(KeyError, match='NoSuchBackbone'):
        MODELS.build(dict(type='NoSuchBackbone'))


def test_custom_imports_plugin_is_built_by_the_runner(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(osp.join(HERE, 'data', 'plugins'))
    cfg_file = tmp_path / 'plugin_cfg.py'
    cfg_file.write_text(f'''
custom_imports = dict(imports=['toy_plugin'], allow_failed_imports=False)
default_scope = 'mmreid_clip'
model = dict(
    type='CLIPTextImageReID',
    image_encoder=dict(type='OpenCLIPVisionTransformer', arch='clip-micro',
                       img_size=(32, 16)),
    text_encoder=dict(type='OpenCLIPTextTransformer', arch='clip-micro'),
    losses=[dict(type='ToyPluginLoss', loss_weight=2.0)])
work_dir = r'{tmp_path / "work"}'
''')
    cfg = Config.fromfile(str(cfg_file))
    runner = Runner.from_cfg(cfg)
    loss = runner.model.losses[0]
    assert type(loss).__name__ == 'ToyPluginLoss'
    assert type(loss).__module__ == 'toy_plugin'
    assert loss.loss_weight == 2.0
