"""The project against golden outputs of the official CLIP-ReID and CFine
code (tests/data/fidelity/, written by tools/fidelity/make_fidelity_goldens.py
from the official repositories; provenance in tests/data/fidelity/
PROVENANCE.md). The official code is not needed here.

Some tests pin one behaviour that once differed from the official code:
the stage-2 learning rate of every *bias* parameter, the stage-1 cache
without SIE, the overlapping-patch positional embedding, and CFine's Pillow
resize. The last two replay one official training step of each stage
(features, losses, gradients).
"""
import copy
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpretrain.structures import DataSample

from mmreid_clip.registry import MODELS, TRANSFORMS
from mmreid_clip.utils import register_all_modules

register_all_modules()

DATA = osp.join(osp.dirname(__file__), '..', 'data', 'fidelity')
CLIPREID_CFG = 'configs/clip_reid/clip-reid_vit-b16_ltcc.py'
CFINE_CFG = 'configs/cfine/cfine_vit-b16-bert_cuhk-pedes.py'
# the tiny CLIP of the goldens, as an open_clip arch (OpenAI layout, 12
# vision blocks as the official forward indexes, width 64, one head)
TINY_ARCH = dict(
    embed_dim=32,
    quick_gelu=True,
    vision_cfg=dict(image_size=224, layers=12, width=64, head_width=64,
                    patch_size=16),
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=1,
                  layers=1))


def repo_path(rel):
    return osp.join(osp.dirname(__file__), '..', '..', rel)


@pytest.fixture(scope='module')
def golden():
    return dict(np.load(osp.join(DATA, 'clipreid_tiny.npz')))


@pytest.fixture(scope='module')
def weights(golden, tmp_path_factory):
    """The golden visual weights as an OpenAI-layout state-dict file."""
    path = tmp_path_factory.mktemp('w') / 'tiny-openai.pt'
    sd = {k[3:]: torch.from_numpy(v) for k, v in golden.items()
          if k.startswith('sd.')}
    torch.save(sd, path)
    return str(path)


def paper_cfg(weights, **encoder):
    """The CLIP-ReID paper config at the golden's tiny size."""
    cfg = Config.fromfile(repo_path(CLIPREID_CFG))
    model = copy.deepcopy(cfg.model)
    model.image_encoder.update(arch=TINY_ARCH, pretrained=weights, **encoder)
    model.text_encoder.update(arch=TINY_ARCH, pretrained=None)
    model.head.in_channels = (64, 32)
    model.num_classes = 4
    return cfg, model


def encoder(weights, **kw):
    cfg, model = paper_cfg(weights, **kw)
    return MODELS.build(model.image_encoder).eval()


def test_olp_positional_embedding_is_resized_once(golden, weights):
    """Stride 12: the 14x14 table goes straight to 21x10 in fp16, as the
    official load_clip_to_cpu does (a detour through the 16x8 grid, or an
    fp32 resize, changes it)."""
    enc = encoder(weights, stride=12)
    pos = enc.visual.positional_embedding.detach()
    assert tuple(pos.shape) == (211, 64) and enc.grid_size == (21, 10)
    assert torch.equal(pos, torch.from_numpy(golden['olp_pos_embed']))
    x = torch.from_numpy(golden['images']).float()
    with torch.no_grad():
        fp = enc(x)['fp']
    official = torch.from_numpy(golden['olp_fp'])
    err = (fp - official).abs().max() / official.abs().max()
    assert err < 1e-5, err


def sie_model(weights, golden):
    cfg, model = paper_cfg(weights, sie_cameras=3, sie_coef=1.0)
    net = MODELS.build(model)
    with torch.no_grad():
        net.image_encoder.sie_embed.copy_(torch.from_numpy(
            golden['sie_embed']))
    return cfg, net.eval()


def raw_batch(net, golden):
    """The golden (normalised RGB) images as the data preprocessor's input
    (0-255 BGR), with their camera ids."""
    x = torch.from_numpy(golden['images']).float()
    dp = net.data_preprocessor
    raw = x * dp.std + dp.mean
    if dp.to_rgb:
        raw = raw.flip(1)
    samples = [
        DataSample(metainfo=dict(pid=0, camid=int(c), clothes_id=0,
                                 subset='train'))
        for c in golden['camids']
    ]
    return dict(inputs=dict(images=raw), data_samples=samples), x


def test_stage1_cache_is_camera_free_with_sie(golden, weights):
    """The official stage 1 calls the encoder without camera ids."""
    _, net = sie_model(weights, golden)
    data, _ = raw_batch(net, golden)
    cache = net.cache_features(data)['feat_id']
    official = torch.from_numpy(golden['sie_cache_fp'])
    err = (cache - official).abs().max() / official.abs().max()
    assert err < 1e-5, err
    # the switch encodes with the camera embedding instead
    net.cache_with_sie = True
    assert (net.cache_features(data)['feat_id'] - official).abs().max() > \
        1e-3 * official.abs().max()


def test_inference_feature_with_sie(golden, weights):
    _, net = sie_model(weights, golden)
    _, x = raw_batch(net, golden)
    camids = torch.from_numpy(golden['camids']).long()
    with torch.no_grad():
        feat = net.extract_img_feat(x, camids)
    official = F.normalize(torch.from_numpy(golden['sie_eval_feat']), dim=1)
    assert (feat - official).abs().max() < 1e-5


def official_to_ours(name):
    fixed = {
        'cv_embed': 'image_encoder.sie_embed',
        'classifier.weight': 'head.classifiers.0.weight',
        'classifier_proj.weight': 'head.classifiers.1.weight',
    }
    if name in fixed:
        return fixed[name]
    for old, new in (('image_encoder.', 'image_encoder.visual.'),
                     ('bottleneck_proj.', 'head.bns.1.'),
                     ('bottleneck.', 'head.bns.0.')):
        if name.startswith(old):
            return new + name[len(old):]
    raise KeyError(name)


def test_stage2_lr_and_decay_of_every_tensor(golden, weights):
    """The paper config's stage-2 optimizer gives every trainable tensor the
    official lr and weight decay (x2 lr for every name containing "bias":
    LayerNorm biases and attention in_proj_bias too)."""
    with open(osp.join(DATA, 'clipreid_stage2_groups.json')) as f:
        official = json.load(f)
    cfg, net = sie_model(weights, golden)
    ow = build_optim_wrapper(net, copy.deepcopy(cfg.optim_wrapper))
    names = {id(p): n for n, p in net.named_parameters()}
    ours = {
        names[id(p)]: [g['lr'], g['weight_decay']]
        for g in ow['encoder'].param_groups for p in g['params']
        if id(p) in names and p.requires_grad
    }
    assert type(ow['encoder'].optimizer).__name__ == official['optimizer']
    expected = {official_to_ours(k): v
                for k, v in official['groups'].items()}
    assert set(ours) == set(expected)
    wrong = {k: (ours[k], v) for k, v in expected.items()
             if not np.allclose(ours[k], v, rtol=1e-12, atol=0)}
    assert not wrong, list(wrong.items())[:4]
    doubled = [k for k, v in expected.items() if v[0] > 5e-6]
    assert any(k.endswith('ln_1.bias') for k in doubled)
    assert any(k.endswith('in_proj_bias') for k in doubled)


def test_cfine_test_pipeline_resizes_as_torchvision_on_pil():
    """CFine's official test transform: torchvision's bicubic Resize on the
    PIL image (antialiased). The paper config's pipeline gives the same
    pixels; OpenCV's bicubic would be up to 15 levels off."""
    cfg = Config.fromfile(repo_path(CFINE_CFG))
    pipeline = Compose([
        TRANSFORMS.build(t) for t in cfg.test_dataloader.dataset.pipeline
    ])
    out = pipeline(dict(img_path=osp.join(DATA, 'cfine_resize.jpg')))
    ours = out['img'][..., ::-1].astype(int)  # BGR -> RGB
    official = np.load(osp.join(DATA, 'cfine_resize.npz'))['resized_rgb']
    assert ours.shape == official.shape == (224, 224, 3)
    assert np.abs(ours - official.astype(int)).max() == 0


# ------------------------------------------------------- one step per stage


@pytest.fixture(scope='module')
def train_golden():
    return dict(np.load(osp.join(DATA, 'clipreid_train.npz')))


@pytest.fixture(scope='module')
def train_model(golden, train_golden, tmp_path_factory):
    """The paper config at 64x32 with the golden's weights (both towers,
    BNNeck, classifiers, prompt tokens)."""
    sd = {k[3:]: torch.from_numpy(v) for k, v in golden.items()
          if k.startswith('sd.')}
    sd.update({k[8:]: torch.from_numpy(v) for k, v in train_golden.items()
               if k.startswith('text.sd.')})
    # only the rows the prompt template uses were stored
    emb = torch.zeros(49408, 64, dtype=torch.float16)
    emb[torch.from_numpy(train_golden['text.token_ids'])] = \
        torch.from_numpy(train_golden['text.token_rows'])
    sd['token_embedding.weight'] = emb
    path = tmp_path_factory.mktemp('w') / 'tiny-openai-full.pt'
    torch.save(sd, path)
    cfg, model = paper_cfg(str(path), img_size=(64, 32))
    model.text_encoder.pretrained = str(path)
    net = MODELS.build(model)
    ours = {
        'bottleneck.': 'head.bns.0.',
        'bottleneck_proj.': 'head.bns.1.',
        'classifier.weight': 'head.classifiers.0.weight',
        'classifier_proj.weight': 'head.classifiers.1.weight',
        'prompt_learner.cls_ctx': 'id_prompt.ctx',
    }
    state = net.state_dict()
    with torch.no_grad():
        for key, value in train_golden.items():
            if not key.startswith('init.'):
                continue
            name = key[5:]
            prefix = max((p for p in ours if name.startswith(p)), key=len)
            state[ours[prefix] + name[len(prefix):]].copy_(
                torch.from_numpy(value))
    return net


def close(ours, official, tol=1e-5):
    official = torch.as_tensor(official).double()
    err = (ours.detach().double() - official).abs().max()
    return float(err / official.abs().max().clamp_min(1e-12)) <= tol


def test_stage1_step_matches_the_official(train_golden, train_model):
    """Cache features, prompt text features, SupCon i2t / t2i and the
    gradient on the prompt tokens."""
    net, g = train_model.eval(), train_golden
    pids = torch.from_numpy(g['pids']).long()
    data, _ = raw_batch(net, dict(images=g['images'],
                                  camids=np.zeros(len(pids), int)))
    feats = net.cache_features(data)['feat_id']
    assert close(feats, g['s1.image_feats'])
    net.id_prompt.ctx.grad = None
    text = net.id_prompt(net.text_encoder, pids)
    assert close(text, g['s1.text_feats'])
    i2t = net.stage1_loss(feats, text, pids, pids)
    t2i = net.stage1_loss(text, feats, pids, pids)
    assert close(i2t, g['s1.loss_i2t']) and close(t2i, g['s1.loss_t2i'])
    (i2t + t2i).backward()
    assert close(net.id_prompt.ctx.grad, g['s1.ctx_grad'], 1e-4)


def test_stage2_step_matches_the_official(train_golden, train_model):
    """Train-mode BNNeck, classifier logits, 0.25 ID + triplet + I2T, the
    gradient on the images and on the backbone and head parameters."""
    net, g = train_model, train_golden
    net.train()
    net._t_id = None
    net.begin_stage2(0)
    assert close(net._t_id, g['s2.t_id'])
    x = torch.from_numpy(g['images']).float().requires_grad_(True)
    samples = [
        DataSample(metainfo=dict(pid=int(p), camid=0, clothes_id=0,
                                 subset='train')) for p in g['pids']
    ]
    net.zero_grad(set_to_none=True)
    losses, raw = net._stage2_losses({'images': x}, samples)
    assert close(raw['logits_f12'], g['s2.logits_f12'])
    assert close(raw['logits_fp'], g['s2.logits_fp'])
    for key in ('loss_id', 'loss_tri', 'loss_i2t'):
        assert close(losses[key], g[f's2.{key}']), key
    total, _ = net.parse_losses(losses)
    assert close(total, g['s2.loss_total'])
    total.backward()
    # fp32 rounding grows through the batch-statistics BN of 8 images
    assert close(x.grad, g['s2.images_grad'], 1e-4)
    params = dict(net.named_parameters())
    for key, value in g.items():
        if key.startswith('s2.grad.'):
            name = official_to_ours(key[len('s2.grad.'):])
            assert close(params[name].grad, value, 1e-4), name
