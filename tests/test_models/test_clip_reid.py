"""CLIP-ReID / CCAF assembly: backbone outputs, prompts, the two steps."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmpretrain.structures import DataSample

from mmreid_clip.registry import MODELS
from mmreid_clip.utils import register_all_modules

register_all_modules()

NUM_PIDS, NUM_CLOTHES, B = 4, 8, 8
IMG = (32, 16)

MICRO = dict(
    type='CCAF',
    image_encoder=dict(
        type='OpenCLIPReIDVisionTransformer', arch='clip-micro',
        img_size=IMG),
    text_encoder=dict(type='OpenCLIPTextTransformer', arch='clip-micro'),
    head=dict(type='BNNeckHead', in_channels=(64, 48)),
    id_loss=dict(
        type='LabelSmoothCrossEntropyLoss', label_smooth_val=0.1,
        loss_weight=0.25),
    i2t_loss=dict(type='LabelSmoothCrossEntropyLoss', label_smooth_val=0.1),
    num_classes=NUM_PIDS,
    num_clothes=NUM_CLOTHES)

OPTIM = dict(
    constructor='MultiOptimWrapperConstructor',
    prompt=dict(
        modules=['id_prompt', 'cfm.clothes_prompt'],
        optimizer=dict(type='Adam', lr=1e-3)),
    encoder=dict(
        modules=['image_encoder', 'head'],
        optimizer=dict(type='Adam', lr=1e-4),
        paramwise_cfg=dict(bias_lr_mult=2.0)),
    clothes_prompt=dict(
        modules=['cfm.clothes_prompt'], optimizer=dict(type='Adam',
                                                       lr=1e-3)))


def pid2clothes():
    p2c = torch.zeros(NUM_PIDS, NUM_CLOTHES, dtype=torch.bool)
    for p in range(NUM_PIDS):
        p2c[p, 2 * p] = p2c[p, 2 * p + 1] = True
    return p2c


def make_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(B):
        pid = i // 2
        samples.append(
            DataSample(
                metainfo=dict(
                    pid=pid,
                    camid=i % 3,
                    clothes_id=2 * pid + i % 2,
                    subset='train')).set_gt_label(pid))

    def img():
        return torch.randint(0, 255, (B, 3, *IMG), generator=g,
                             dtype=torch.uint8)

    return dict(
        inputs=dict(
            images=img(), shield_images=img(), clothes_images=img()),
        data_samples=samples)


def build(**overrides):
    cfg = copy.deepcopy(MICRO)
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.set_train_metainfo(
        dict(
            num_pids=NUM_PIDS,
            num_clothes=NUM_CLOTHES,
            pid2clothes=pid2clothes().numpy()))
    return model


def test_reid_backbone_features_and_sie():
    enc = MODELS.build(
        dict(
            type='OpenCLIPReIDVisionTransformer',
            arch='clip-micro',
            img_size=IMG,
            sie_cameras=3))
    x = torch.randn(2, 3, *IMG)
    out = enc(x, torch.tensor([0, 2]))
    assert out['f11'].shape == (2, 64) and out['f12'].shape == (2, 64)
    assert out['fp'].shape == (2, 48) and out['global'] is out['fp']
    # fp is the projection of f12 (CLIP's joint space)
    assert torch.allclose(out['fp'], out['f12'] @ enc.visual.proj)
    # the camera embedding changes the features; missing camids is an error
    other = enc(x, torch.tensor([1, 2]))
    assert not torch.allclose(out['f12'][0], other['f12'][0])
    assert torch.allclose(out['f12'][1], other['f12'][1])
    with pytest.raises(ValueError, match='camids'):
        enc(x)
    with pytest.raises(ValueError, match='SIE table'):
        enc(x, torch.tensor([0, 3]))


def test_reid_backbone_overlapping_patches():
    enc = MODELS.build(
        dict(
            type='OpenCLIPReIDVisionTransformer',
            arch='clip-micro',
            img_size=IMG,
            stride=6))
    # (32 - 8) // 6 + 1 = 5 rows, (16 - 8) // 6 + 1 = 2 columns
    assert enc.grid_size == (5, 2)
    assert enc.visual.positional_embedding.shape[0] == 1 + 10
    assert enc(torch.randn(1, 3, *IMG))['fp'].shape == (1, 48)


def test_prompt_learner_splices_learnt_tokens():
    text = MODELS.build(
        dict(type='OpenCLIPTextTransformer', arch='clip-micro', frozen=True))
    prompts = MODELS.build(
        dict(type='PromptLearner', num_ctx=4),
        default_args=dict(num_classes=3, text_encoder=text))
    # "A photo of a X X X X person." -> SOT a photo of a | X*4 | person . EOT
    assert prompts.ctx_start == 5 and prompts.eot_index == 11
    assert prompts.prefix.shape[0] == 5
    feats = prompts(text)
    assert feats.shape == (3, 48)
    # identical learnt tokens give identical features; labels index rows
    with torch.no_grad():
        prompts.ctx[2] = prompts.ctx[0]
    feats = prompts(text)
    assert torch.allclose(feats[0], feats[2], atol=1e-6)
    assert torch.allclose(prompts(text, torch.tensor([1]))[0], feats[1],
                          atol=1e-6)
    # chunking does not change the result
    assert torch.allclose(prompts(text, chunk_size=2), feats, atol=1e-6)
    # gradients reach ctx through the frozen tower, not the tower itself
    prompts(text).sum().backward()
    assert prompts.ctx.grad is not None and prompts.ctx.grad.abs().sum() > 0
    assert all(p.grad is None for p in text.parameters())
    with pytest.raises(ValueError, match='placeholders'):
        MODELS.build(
            dict(type='PromptLearner', template='X of a {} person.'),
            default_args=dict(num_classes=3, text_encoder=text))


def test_prompt_features_equal_tokenized_text_when_ctx_is_the_word():
    """Splicing the word's own embedding reproduces the plain text."""
    from mmreid_clip.datasets.tokenizers import OpenCLIPTokenizer
    text = MODELS.build(
        dict(type='OpenCLIPTextTransformer', arch='clip-micro', frozen=True))
    prompts = MODELS.build(
        dict(type='PromptLearner', num_ctx=2),
        default_args=dict(num_classes=1, text_encoder=text))
    tok = OpenCLIPTokenizer()
    ids = tok('A photo of a tall man person.')
    with torch.no_grad():
        prompts.ctx[0] = text.token_embedding(ids[0, 5:7])
    ref = text(ids)['global']
    assert torch.allclose(prompts(text), ref, atol=1e-5)


def test_bnneck_head_frozen_bias():
    head = MODELS.build(
        dict(type='BNNeckHead', in_channels=(6, 4), num_classes=5))
    out = head(dict(f12=torch.randn(3, 6), fp=torch.randn(3, 4)))
    assert out['logits_f12'].shape == (3, 5)
    assert out['bn_fp'].shape == (3, 4)
    assert not head.bns[0].bias.requires_grad
    assert head.classifiers[0].bias is None
    with pytest.raises(KeyError, match='f12'):
        head(dict(fp=torch.randn(3, 4)))


def test_stage1_updates_only_prompts():
    model = build()
    ow = build_optim_wrapper(model, copy.deepcopy(OPTIM))
    cache = model.cache_features(make_batch())
    assert set(cache) == {'pids', 'clothes_ids', 'feat_id', 'feat_clothes'}
    assert cache['feat_id'].shape == (B, 48)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    logs = model.train_step(dict(cache, stage=1), ow)
    assert {'loss_i2t_s1', 'loss_t2i_s1', 'loss_clothes_s1'} <= set(logs)
    changed = {
        n
        for n, p in model.named_parameters() if not torch.equal(p, before[n])
    }
    assert changed == {'id_prompt.ctx', 'cfm.clothes_prompt.ctx'}


def test_stage2_step_every_trainable_parameter_moves():
    model = build()
    ow = build_optim_wrapper(model, copy.deepcopy(OPTIM))
    model.begin_stage2(0)
    assert not model.id_prompt.ctx.requires_grad
    t_id = model._t_id.clone()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    logs = model.train_step(make_batch(), ow)
    for key in ('loss_id', 'loss_tri', 'loss_i2t', 'loss_i2i',
                'loss_id_shield', 'loss_tri_shield', 'loss_cfm',
                'loss_clothes_examine'):
        assert key in logs and torch.isfinite(logs[key]), key
    stuck = [
        n for n, p in model.named_parameters()
        if p.requires_grad and torch.equal(p, before[n])
    ]
    assert stuck == []
    # the text tower and the identity prompts are frozen in stage 2
    for n, p in model.named_parameters():
        if n.startswith(('text_encoder', 'id_prompt')):
            assert torch.equal(p, before[n]), n
    assert torch.equal(model._t_id, t_id)


def test_cfm_examine_step_does_not_touch_the_encoder():
    """Step A trains the clothes prompts on detached image features."""
    model = build()
    ow = build_optim_wrapper(model, copy.deepcopy(OPTIM))
    data = model.data_preprocessor(make_batch(), True)
    fp = model.image_encoder(data['inputs']['images'])['fp']
    clothes = torch.tensor([2 * (i // 2) + i % 2 for i in range(B)])
    u = model.cfm.clothes_features(model.text_encoder)
    loss = model.cfm.examine_loss(fp, clothes, u)
    loss.backward()
    assert model.cfm.clothes_prompt.ctx.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.image_encoder.parameters())
    # step B: gradients reach the encoder but not the prompts
    model.zero_grad(set_to_none=True)
    fp = model.image_encoder(data['inputs']['images'])['fp']
    model.cfm.minimise_loss(fp, clothes, clothes // 2, u,
                            model.pid2clothes).backward()
    assert model.cfm.clothes_prompt.ctx.grad is None
    assert model.image_encoder.visual.proj.grad.abs().sum() > 0
    del ow


def test_cfm_projection_variant_and_start_epoch():
    cfm = dict(type='CFM', mode='proj', start_epoch=1)
    model = build(cfm=cfm)
    ow = build_optim_wrapper(model, copy.deepcopy(OPTIM))
    model.begin_stage2(0)
    logs = model.train_step(make_batch(), ow)
    assert 'loss_cfm' not in logs  # stage-2 epoch 0 < start_epoch
    model.begin_stage2(1)
    logs = model.train_step(make_batch(), ow)
    assert 'loss_cfm' in logs and 'loss_clothes_examine' in logs


def test_baseline_needs_no_masks_and_ablation_switches():
    base = build(type='CLIPReID', num_clothes=None)
    assert base.ifp is None and base.cfm is None
    assert base.stage1_views() == {'images'}
    optim = copy.deepcopy(OPTIM)
    optim['prompt']['modules'] = ['id_prompt']
    del optim['clothes_prompt']
    ow = build_optim_wrapper(base, optim)
    batch = make_batch()
    del batch['inputs']['shield_images'], batch['inputs']['clothes_images']
    base.begin_stage2(0)
    logs = base.train_step(batch, ow)
    assert set(k for k in logs if k.startswith('loss_')) == {
        'loss_id', 'loss_tri', 'loss_i2t'
    }
    ifp_only = build(cfm=None, num_clothes=None)
    assert ifp_only.stage1_views() == {'shield_images'}
    no_shield = build(ifp=dict(type='IFP', i2i_loss=None,
                               shield_id_tri=False))
    assert not no_shield.ifp.needs_shield_branch


def test_inference_runs_only_the_image_encoder(monkeypatch):
    model = build().eval()
    called = []
    for name in ('text_encoder', 'head', 'id_prompt', 'cfm', 'ifp'):
        module = getattr(model, name)
        monkeypatch.setattr(module, 'forward',
                            lambda *a, _n=name, **k: called.append(_n))
    out = model.test_step(make_batch())
    assert called == []
    feat = out[0].img_feat
    assert feat.shape == (64 + 48, )
    assert torch.allclose(feat.norm(), torch.tensor(1.0))
    # the same image gives the same feature whatever the branch modules
    base = build(type='CLIPReID', ifp=None, cfm=None,
                 num_clothes=None).eval()
    base.image_encoder.load_state_dict(model.image_encoder.state_dict())
    ref = base.test_step(make_batch())[0].img_feat
    assert torch.allclose(ref, feat, atol=1e-6)


def test_test_neck_after_uses_the_bnneck_outputs():
    model = build(test_neck='after').eval()
    batch = make_batch()
    gen = torch.Generator().manual_seed(0)
    for bn in model.head.bns:  # trained-looking statistics: not a no-op
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen))
        bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + .5)
    with torch.no_grad():
        feat = model.test_step(batch)[0].img_feat
        data = model.data_preprocessor(batch, False)
        raw = model.image_encoder(data['inputs']['images'])
        bn = model.head(raw, with_logits=False)
    want = torch.nn.functional.normalize(
        torch.cat([bn['bn_f12'][0], bn['bn_fp'][0]]), dim=0)
    torch.testing.assert_close(feat, want)
    before = build().eval()
    before.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not torch.allclose(before.test_step(batch)[0].img_feat, feat)
    with pytest.raises(ValueError, match="'before' or 'after'"):
        build(test_neck='bn')
    with pytest.raises(ValueError, match=r"none for \['f11'\]"):
        build(test_neck='after', test_feat_keys=('f11', 'fp'))


def test_metainfo_mismatch_is_a_clear_error():
    model = build()
    with pytest.raises(ValueError, match='num_classes=4 but the training '
                       'set has 5'):
        model.set_train_metainfo(dict(num_pids=5))
    with pytest.raises(ValueError, match='num_clothes=8'):
        model.set_train_metainfo(
            dict(num_pids=4, num_clothes=9, pid2clothes=None))
    with pytest.raises(ValueError, match='num_clothes'):
        build(type='CLIPReID', cfm=dict(type='CFM'), num_clothes=None)


def test_multi_optim_constructor_errors():
    model = build()
    bad = copy.deepcopy(OPTIM)
    bad['prompt']['modules'] = ['prompt_learner']
    with pytest.raises(KeyError, match="'prompt_learner'"):
        build_optim_wrapper(model, bad)
    with pytest.raises(TypeError, match='MultiOptimWrapperConstructor'):
        model.train_step(
            make_batch(),
            build_optim_wrapper(
                model, dict(optimizer=dict(type='Adam', lr=1e-3))))


def test_prompts_follow_weights_loaded_into_the_tower_later():
    """prefix/suffix come from the tower's current token embedding, so a
    checkpoint loaded after the model was built (weights only in the
    checkpoint) gives the prompts of the checkpoint's tower."""
    text = MODELS.build(
        dict(type='OpenCLIPTextTransformer', arch='clip-micro', frozen=True))
    prompts = MODELS.build(
        dict(type='PromptLearner', num_ctx=4),
        default_args=dict(num_classes=2, text_encoder=text))
    fresh = copy.deepcopy(text)
    with torch.no_grad():
        fresh.token_embedding.weight.normal_(0, 0.5)
    rebuilt = MODELS.build(
        dict(type='PromptLearner', num_ctx=4),
        default_args=dict(num_classes=2, text_encoder=fresh))
    with torch.no_grad():
        rebuilt.ctx.copy_(prompts.ctx)
    assert torch.allclose(prompts(fresh), rebuilt(fresh), atol=1e-6)
    assert torch.equal(prompts.prefix, rebuilt.prefix)
