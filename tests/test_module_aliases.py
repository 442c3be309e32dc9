"""Old module paths stay importable as thin aliases of the renamed modules.

The text-image modules took the ``text_image_*`` prefix that mirrors the
``reid_*`` ones (``docs/design.md``, "Names"). Registered type names did not
change, and each class or function is registered once, by its new module.
CFM and IFP moved from ``models/necks/`` to ``models/heads/``.
The last group are paths an external equivalence harness imports: they must
keep working unchanged.
"""
import importlib

import pytest

#: old module -> (new module, names the old one must re-export)
ALIASES = {
    'mmreid_clip.datasets.collate':
    ('mmreid_clip.datasets.text_image_collate', ['text_image_collate']),
    'mmreid_clip.datasets.transforms.formatting':
    ('mmreid_clip.datasets.transforms.text_image_formatting',
     ['PackTextImageInputs']),
    'mmreid_clip.datasets.transforms.formatting_reid':
    ('mmreid_clip.datasets.transforms.reid_formatting',
     ['PackReIDInputs', 'DEFAULT_VIEW_KEYS']),
    'mmreid_clip.models.utils.data_preprocessor':
    ('mmreid_clip.models.utils.text_image_data_preprocessor',
     ['TextImageDataPreprocessor', 'CLIP_MEAN', 'CLIP_STD']),
    # CFM and IFP own losses (and CFM an optimizer step): heads, not necks
    'mmreid_clip.models.necks.cfm': ('mmreid_clip.models.heads.cfm_head',
                                     ['CFM']),
    'mmreid_clip.models.necks.ifp': ('mmreid_clip.models.heads.ifp_head',
                                     ['IFP']),
}

#: imported by the CLIP-ReID / CFine equivalence harness (outside the repo)
HARNESS = [
    ('mmreid_clip.datasets.reid_collate', 'reid_collate'),
    ('mmreid_clip.datasets.cloth_changing.base', '_compose'),
    ('mmreid_clip.datasets.samplers.identity_sampler',
     'IdentityBalancedSampler'),
    ('mmreid_clip.datasets.tokenizers', 'OpenCLIPTokenizer'),
    ('mmreid_clip.engine.runner.two_stage_loop',
     'TwoStageEpochBasedTrainLoop'),
]


@pytest.mark.parametrize('old', sorted(ALIASES))
def test_old_path_reexports_the_new_objects(old):
    new, names = ALIASES[old]
    old_mod = importlib.import_module(old)
    new_mod = importlib.import_module(new)
    for name in names:
        assert getattr(old_mod, name) is getattr(new_mod, name), (old, name)


@pytest.mark.parametrize('module,name', HARNESS)
def test_harness_paths_import(module, name):
    assert hasattr(importlib.import_module(module), name), (module, name)


def test_registered_names_unchanged():
    from mmengine.registry import FUNCTIONS

    from mmreid_clip.registry import MODELS, TRANSFORMS
    import mmreid_clip.datasets  # noqa: F401
    import mmreid_clip.models  # noqa: F401
    for name in ('PackTextImageInputs', 'PackReIDInputs'):
        assert TRANSFORMS.get(name) is not None, name
    for name in ('TextImageDataPreprocessor', 'ReIDDataPreprocessor', 'CFM',
                 'IFP'):
        assert MODELS.get(name) is not None, name
    for name in ('text_image_collate', 'reid_collate'):
        assert FUNCTIONS.get(name) is not None, name
