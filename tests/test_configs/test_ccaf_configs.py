"""CCAF / CLIP-ReID cloth-changing configs: they parse, follow the recipe,
fail fast. The CLIP-ReID baseline on PRCC / LTCC lives in configs/clip_reid/
with CLIP-ReID's other configs; its recipe on the standard ReID benchmarks is
tested in test_clip_reid_configs.py."""
import copy
import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from mmreid_clip.registry import MODELS, PARAM_SCHEDULERS
from mmreid_clip.utils import register_all_modules

register_all_modules()
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# CCAF's own configs (the clip-reid_* files there are aliases, see below)
CCAF_CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs/ccaf/*.py'))
    if not osp.basename(p).startswith('clip-reid'))
#: the CLIP-ReID baseline on the cloth-changing datasets (CCAF's baseline row)
CLIP_REID_CC = [
    osp.join(ROOT, f'configs/clip_reid/clip-reid_vit-b16_{name}.py')
    for name in ('prcc', 'ltcc')
]
CONFIGS = CCAF_CONFIGS + CLIP_REID_CC


def micro(model_cfg: dict) -> dict:
    """The config's model with the micro CLIP (same modules, tiny sizes)."""
    cfg = copy.deepcopy(model_cfg)
    cfg['image_encoder'].update(
        arch='clip-micro', pretrained=None, img_size=(32, 16))
    cfg['text_encoder'].update(arch='clip-micro', pretrained=None)
    cfg['head']['in_channels'] = (64, 48)
    return cfg


def test_clip_reid_cc_configs_moved_to_clip_reid():
    """CLIP-ReID's PRCC / LTCC configs live in configs/clip_reid/ (and
    build, below); configs/ccaf/ keeps only aliases of them at the old
    paths (existing commands and the CLIP-ReID equivalence harness use
    those), which build exactly the same config."""
    for name in ('prcc', 'ltcc'):
        old = osp.join(ROOT, f'configs/ccaf/clip-reid_vit-b16_{name}.py')
        new = osp.join(ROOT, f'configs/clip_reid/clip-reid_vit-b16_{name}.py')
        with open(old) as f:
            code = [line for line in f if not line.startswith('#')]
        assert ''.join(code).strip() == (
            f"_base_ = ['../clip_reid/clip-reid_vit-b16_{name}.py']")
        a, b = Config.fromfile(old).to_dict(), Config.fromfile(new).to_dict()
        assert a == b
    assert all(osp.isfile(p) for p in CLIP_REID_CC)


def test_all_ccaf_configs_parse_and_build_optimizers():
    assert len(CCAF_CONFIGS) >= 10
    for path in CONFIGS:
        cfg = Config.fromfile(path)
        model = MODELS.build(micro(cfg.model.to_dict()))
        ow = build_optim_wrapper(model, cfg.optim_wrapper.to_dict())
        has_cfm = cfg.model.get('cfm') is not None
        assert ('clothes_prompt' in ow.keys()) == has_cfm, path
        assert cfg.train_cfg.type == 'TwoStageEpochBasedTrainLoop'
        # masks are loaded exactly when a module needs them
        needs_masks = has_cfm or cfg.model.get('ifp') is not None
        assert cfg.train_dataloader.dataset.with_mask == needs_masks, path
        assert cfg.stage1_dataloader.dataset.with_mask == needs_masks, path
        assert cfg.test_dataloader.dataset.split == 'test'


def test_paper_recipe_fields():
    cfg = Config.fromfile(osp.join(ROOT, 'configs/ccaf/ccaf_vit-b16_prcc.py'))
    m = cfg.model
    assert m.image_encoder.arch == 'ViT-B-16-quickgelu'
    assert m.image_encoder.img_size == (256, 128)
    assert m.image_encoder.pretrained.endswith('ViT-B-16.pt')
    assert m.id_loss.loss_weight == 0.25 and m.id_loss.label_smooth_val == 0.1
    assert m.triplet_loss.margin == 0.3
    assert m.cfm.scale == 16.0 and m.cfm.adv_loss.epsilon == 0.1
    assert m.ifp.i2i_keys == ('bn_f12', 'bn_fp')
    assert m.test_feat_keys == ('f12', 'fp')
    assert cfg.train_dataloader.batch_size == 64
    assert cfg.train_dataloader.sampler.num_instances == 4
    assert cfg.model.data_preprocessor.mean == [127.5] * 3
    assert cfg.test_evaluator.settings == 'prcc'


def _lr_trace(cfg_path):
    cfg = Config.fromfile(cfg_path)
    model = MODELS.build(micro(cfg.model.to_dict()))
    ow = build_optim_wrapper(model, cfg.optim_wrapper.to_dict())
    scheds = []
    for name in ow.keys():
        for s in cfg.param_scheduler[name]:
            scheds.append(
                PARAM_SCHEDULERS.build(dict(s.to_dict(), optimizer=ow[name])))
    trace = {}
    for epoch in range(1, cfg.train_cfg.max_epochs + 1):
        trace[epoch] = {
            n: sorted({round(g['lr'], 15)
                       for g in ow[n].param_groups})
            for n in ow.keys()
        }
        for s in scheds:
            s.step()
    return trace


def test_two_stage_lr_trace_matches_clip_reid():
    """Per-epoch lr of the ViT-B/16 recipe (docs/methods/ccaf.md §4, §9)."""
    import math
    trace = _lr_trace(osp.join(ROOT, 'configs/ccaf/ccaf_vit-b16_ltcc.py'))
    prompt = {e: v['prompt'][0] for e, v in trace.items()}
    # stage 1: timm warm-up from 1e-5 over 5 epochs, then absolute cosine
    assert prompt[1] == pytest.approx(1e-5 + (3.5e-4 - 1e-5) / 5)
    assert prompt[4] == pytest.approx(1e-5 + 4 * (3.5e-4 - 1e-5) / 5)
    for e in (5, 60, 119, 120):
        ref = 1e-6 + 0.5 * (3.5e-4 - 1e-6) * (1 + math.cos(math.pi * e / 120))
        assert prompt[e] == pytest.approx(ref), e
    # stage 2 (epochs 121-180): base 5e-6, biases x2; WarmupMultiStepLR
    enc = {e: v['encoder'] for e, v in trace.items()}
    assert enc[121] == pytest.approx([0.19 * 5e-6, 0.19 * 1e-5])
    assert enc[125] == pytest.approx([(0.1 * 0.5 + 0.5) * 5e-6,
                                      (0.1 * 0.5 + 0.5) * 1e-5])
    assert enc[130] == pytest.approx([5e-6, 1e-5])
    assert enc[149] == pytest.approx([5e-6, 1e-5])
    assert enc[150] == pytest.approx([5e-7, 1e-6])
    assert enc[169] == pytest.approx([5e-7, 1e-6])
    assert enc[170] == pytest.approx([5e-8, 1e-7])
    assert enc[180] == pytest.approx([5e-8, 1e-7])
    # the examiner's lr is constant
    assert {v['clothes_prompt'][0] for v in trace.values()} == {3.5e-4}


@pytest.mark.parametrize('name', [
    'ccaf/ccaf_vit-b16_prcc.py', 'clip_reid/clip-reid_vit-b16_ltcc.py',
    'ccaf/ccaf_clip-tiny_synthcc-tiny.py'
])
def test_missing_data_and_weights_fail_fast(name, tmp_path):
    extra = []
    if 'tiny' in name:
        # the shared init may exist on this machine; point at a missing one
        extra = [
            f'model.image_encoder.pretrained={tmp_path}/missing-init.pth',
            f'model.text_encoder.pretrained={tmp_path}/missing-init.pth'
        ]
    proc = subprocess.run(
        [
            sys.executable, 'tools/train.py', f'configs/{name}',
            '--work-dir',
            str(tmp_path), '--cfg-options',
            f'train_dataloader.dataset.data_root={tmp_path}/nodata',
            f'test_dataloader.dataset.data_root={tmp_path}/nodata',
            f'val_dataloader.dataset.data_root={tmp_path}/nodata',
            f'stage1_dataloader.dataset.data_root={tmp_path}/nodata'
        ] + extra,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300)
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    assert f'{tmp_path}/nodata' in err
    # one short error naming every missing file, not a deep traceback
    assert 'FileNotFoundError' in err
    assert 'Traceback' not in err.split('FileNotFoundError')[-1]
    if 'vit-b16' in name:
        assert 'checkpoints/clip/ViT-B-16.pt' in err
    else:
        assert f'{tmp_path}/missing-init.pth' in err


def test_synthcc_v2_study_rows_share_everything_but_the_modules():
    rows = [c for c in CONFIGS if 'synthcc-v2' in c]
    assert len(rows) == 4
    cfgs = [Config.fromfile(c) for c in rows]
    for key in ('max_epochs', 'stage1_epochs'):
        assert len({c.train_cfg[key] for c in cfgs}) == 1
    assert {c.train_cfg.stage1_epochs for c in cfgs} == {20}
    assert {c.train_cfg.max_epochs for c in cfgs} == {28}
    # the official batch P x K = 16 x 4 and the stand-in CLIP for all
    assert {c.train_dataloader.batch_size for c in cfgs} == {64}
    assert {c.train_dataloader.sampler.batch_size for c in cfgs} == {64}
    assert {c.model.image_encoder.pretrained for c in cfgs} == {
        'checkpoints/synth-clip/clip-tiny-p8-synth.pth'}
    assert {c.model.image_encoder.arch for c in cfgs} == {'clip-tiny-p8'}
    assert {c.model.text_encoder.arch for c in cfgs} == {'clip-tiny-p8'}
    assert {c.train_dataloader.dataset.data_root for c in cfgs} == {
        'data/synth-cc-v2/LTCC_ReID'}
    for cfg in cfgs:
        ow = cfg.optim_wrapper
        # official rates: stage-1 prompts unscaled; the tower and the
        # examiner both x10, keeping the official examiner/tower ratio
        assert ow.prompt.optimizer.lr == 3.5e-4
        assert ow.encoder.optimizer.lr == pytest.approx(5e-5)
        assert ow.encoder.optimizer.type == 'Adam'
        assert ow.encoder.paramwise_cfg.custom_keys['bias'].lr_mult == 2.0
        if ow.get('clothes_prompt'):
            assert ow.clothes_prompt.optimizer.lr / ow.encoder.optimizer.lr \
                == pytest.approx(3.5e-4 / 5e-6)
        assert 'clip_grad' not in ow.encoder


def test_tiny_configs_share_budget_and_init():
    tiny = [c for c in CONFIGS if 'synthcc-tiny' in c]
    assert len(tiny) == 4
    cfgs = [Config.fromfile(c) for c in tiny]
    for key in ('max_epochs', 'stage1_epochs'):
        assert len({c.train_cfg[key] for c in cfgs}) == 1
    assert len({c.train_dataloader.batch_size for c in cfgs}) == 1
    assert len({c.model.image_encoder.pretrained for c in cfgs}) == 1
    assert len({c.randomness.seed for c in cfgs}) == 1
    assert torch.__version__  # keep torch imported for the builders
