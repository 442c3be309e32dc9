"""CLIP-ReID configs on Market-1501, MSMT17, DukeMTMC-reID and Occluded-Duke:
they follow the paper's recipe (with and without SIE + OLP), build the
model (micro CLIP) and the datasets (tiny real-format trees), and the two
run together through the standard protocol. The folder's PRCC / LTCC
configs (the cloth-changing baseline) are tested with CCAF's, in
test_ccaf_configs.py."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from mmreid_clip.datasets import CountMismatchError, reid_collate
from mmreid_clip.evaluation import ReIDMetric
from mmreid_clip.registry import DATASETS, MODELS
from mmreid_clip.utils import register_all_modules

register_all_modules()
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.std_reid_fixtures import write_dataset  # noqa: E402

ALL_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/clip_reid/*.py')))
#: cloth-changing datasets: the baseline row of CCAF (test_ccaf_configs.py)
CC_TOKENS = ('prcc', 'ltcc')
# config dataset token -> (dataset type, ReIDMetric preset, train ids,
# cameras)
DATASETS_OF = {
    'market1501': ('Market1501', 'market1501', 751, 6),
    'msmt17': ('MSMT17', 'msmt17', 1041, 15),
    'dukemtmc': ('DukeMTMCReID', 'dukemtmc', 702, 8),
    'occluded-duke': ('OccludedDuke', 'occluded_duke', 702, 8),
}
LOADERS = ('train_dataloader', 'stage1_dataloader', 'test_dataloader',
           'val_dataloader')


def _parse(path):
    """(dataset token, SIE + OLP?) from the config's file name; a
    ``_rerank`` variant tests the same model with re-ranking."""
    stem = osp.splitext(osp.basename(path))[0]
    assert stem.startswith('clip-reid_vit-b16_'), stem
    token = stem[len('clip-reid_vit-b16_'):]
    if token.endswith('_rerank'):
        token = token[:-len('_rerank')]
    olp = token.endswith('_sie-olp')
    return token[:-len('_sie-olp')] if olp else token, olp


def _is_cc(path):
    return _parse(path)[0] in CC_TOKENS


CONFIGS = [p for p in ALL_CONFIGS if not _is_cc(p)]


def test_folder_holds_standard_and_cloth_changing_configs():
    tokens = sorted(_parse(p)[0] for p in ALL_CONFIGS)
    assert set(tokens) == set(DATASETS_OF) | set(CC_TOKENS)
    assert sorted(t for t in tokens if t in CC_TOKENS) == sorted(CC_TOKENS)


def _reranked(path):
    return path.endswith('_rerank.py')


def micro(model_cfg: dict) -> dict:
    """The config's model with the micro CLIP (same modules, tiny sizes);
    OLP's stride 12 of 16-px patches becomes 6 of the micro 8-px ones."""
    cfg = copy.deepcopy(model_cfg)
    enc = cfg['image_encoder']
    enc.update(arch='clip-micro', pretrained=None, img_size=(32, 16))
    if enc.get('stride') is not None:
        enc['stride'] = enc['stride'] * 8 // 16
    cfg['text_encoder'].update(arch='clip-micro', pretrained=None)
    cfg['head']['in_channels'] = (64, 48)
    return cfg


def test_every_dataset_has_both_configs():
    assert sorted(_parse(p) for p in CONFIGS if not _reranked(p)) == sorted(
        (token, olp) for token in DATASETS_OF for olp in (False, True))
    # the official README's re-ranked numbers: MSMT17, SIE + OLP
    assert [_parse(p) for p in CONFIGS if _reranked(p)] == [('msmt17', True)]


def test_rerank_config_uses_the_released_convention():
    path, = [p for p in CONFIGS if _reranked(p)]
    cfg = Config.fromfile(path)
    base = Config.fromfile(path.replace('_rerank', ''))
    assert cfg.model == base.model
    assert cfg.test_evaluator.rerank == dict(
        k1=50, k2=15, lambda_value=0.3, convention='released',
        max_items=100000)
    # the pool (11,659 queries + 82,161 gallery images) fits
    assert cfg.test_evaluator.rerank.max_items >= 11659 + 82161
    ReIDMetric(**{k: v for k, v in cfg.test_evaluator.to_dict().items()
                  if k != 'type'})


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_follows_the_recipe(path):
    token, olp = _parse(path)
    ds_type, preset, num_ids, num_cams = DATASETS_OF[token]
    cfg = Config.fromfile(path)
    m = cfg.model
    assert m.type == 'CLIPReID' and m.num_classes == num_ids
    # num_classes is the dataset's documented train identities
    assert DATASETS.get(ds_type).EXPECTED_IDS['train'] == num_ids
    assert DATASETS.get(ds_type).NUM_CAMERAS == num_cams
    enc = m.image_encoder
    # OpenAI's ViT-B/16 with its QuickGELU, also without the archive
    assert enc.arch == 'ViT-B-16-quickgelu' and enc.img_size == (256, 128)
    assert enc.pretrained.endswith('ViT-B-16.pt')
    if olp:
        # CLIP-ReID README: SIE_CAMERA True, SIE_COE 1.0, STRIDE [12, 12]
        assert (enc.sie_cameras, enc.sie_coef, enc.stride) == (num_cams,
                                                               1.0, 12)
    else:
        assert enc.get('sie_cameras', 0) == 0
        assert enc.get('stride') is None
    assert m.id_loss.loss_weight == 0.25 and m.triplet_loss.margin == 0.3
    assert cfg.train_cfg.type == 'TwoStageEpochBasedTrainLoop'
    assert (cfg.train_cfg.stage1_epochs, cfg.train_cfg.max_epochs) == (120,
                                                                       180)
    assert cfg.train_dataloader.batch_size == 64
    assert cfg.train_dataloader.sampler.num_instances == 4
    for key in LOADERS:
        dataset = cfg[key].dataset
        assert dataset.type == ds_type, key
        assert dataset.check_counts is True, key
        assert not dataset.get('with_mask', False), key
    assert cfg.train_dataloader.dataset.split == 'train'
    assert cfg.stage1_dataloader.dataset.split == 'train'
    assert cfg.test_dataloader.dataset.split == 'test'
    if ds_type == 'MSMT17':
        assert cfg.train_dataloader.dataset.train_with_val is True
    evaluator = dict(type='ReIDMetric', settings=preset)
    assert cfg.val_evaluator == evaluator
    if not _reranked(path):
        assert cfg.test_evaluator == evaluator
    # CLIP-ReID's transforms, kept in one place: ltcc.py's no-mask ones
    ltcc = Config.fromfile(osp.join(ROOT, 'configs/_base_/datasets/ltcc.py'))
    assert cfg.train_dataloader.dataset.pipeline == \
        ltcc.train_pipeline_nomask
    assert cfg.stage1_dataloader.dataset.pipeline == \
        ltcc.stage1_pipeline_nomask
    assert cfg.test_dataloader.dataset.pipeline == ltcc.test_pipeline
    assert cfg.train_dataloader.sampler == ltcc.train_dataloader.sampler
    for key in LOADERS:
        pipeline = cfg[key].dataset.pipeline
        assert 'LoadParsingMask' not in [t['type'] for t in pipeline], key
        # 256 x 128 (mmcv's Resize takes (W, H))
        sizes = [t['scale'] for t in pipeline if t['type'] == 'Resize']
        assert sizes == [(128, 256)], key


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_model_and_datasets(path, tmp_path):
    token, olp = _parse(path)
    ds_type, preset, _, num_cams = DATASETS_OF[token]
    cfg = Config.fromfile(path)
    model = MODELS.build(micro(cfg.model.to_dict()))
    ow = build_optim_wrapper(model, cfg.optim_wrapper.to_dict())
    assert sorted(ow.keys()) == ['encoder', 'prompt']
    assert model.use_camids == olp
    if olp:
        assert model.image_encoder.sie_embed.shape[0] == num_cams
        # overlapping patches: (32 - 8) // 6 + 1 by (16 - 8) // 6 + 1
        assert model.image_encoder.grid_size == (5, 2)

    root = write_dataset(ds_type, str(tmp_path / token))
    built = {}
    for key in LOADERS:
        ds_cfg = cfg[key].dataset.to_dict()
        # the tiny tree is not the full release: the configs' check
        # refuses it, naming the data
        with pytest.raises(CountMismatchError, match='full release'):
            DATASETS.build(dict(ds_cfg, data_root=root))
        built[key] = DATASETS.build(
            dict(ds_cfg, data_root=root, check_counts=False))
    train = built['train_dataloader']
    assert train.metainfo['num_pids'] >= 2
    item = train[0]
    assert tuple(item['inputs']['images'].shape) == (3, 256, 128)
    item = built['stage1_dataloader'][0]
    assert tuple(item['inputs']['images'].shape) == (3, 256, 128)

    # test split -> micro model (SIE reads the loader's camids) -> metric
    pipeline = copy.deepcopy(cfg.test_pipeline)
    for t in pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (16, 32)
    test = DATASETS.build(
        dict(
            cfg.test_dataloader.dataset.to_dict(),
            data_root=root,
            check_counts=False,
            pipeline=pipeline))
    batch = reid_collate([test[i] for i in range(len(test))])
    model.eval()
    with torch.no_grad():
        preds = model.test_step(batch)
    assert len(preds) == len(test)
    assert all(0 <= p.camid < num_cams for p in preds)
    metric = ReIDMetric(**{
        k: v
        for k, v in cfg.test_evaluator.to_dict().items() if k != 'type'
    })
    metric.process(batch, [p.to_dict() for p in preds])
    out = metric.compute_metrics(metric.results)
    assert out['general/num_valid_queries'] >= 1
    assert 0.0 <= out['general/mAP'] <= 100.0
