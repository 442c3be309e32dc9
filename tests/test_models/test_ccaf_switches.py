"""CCAF's documented switches: BN statistics of the shielding branch, the
features CFM examines, and which clothes features the adversary uses."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from test_clip_reid import B, OPTIM, build, make_batch

from mmreid_clip.registry import MODELS


def test_bnneck_statistics_from_the_first_rows():
    head = MODELS.build(
        dict(type='BNNeckHead', in_channels=(6, ), keys=('f', ),
             num_classes=3))
    ref = copy.deepcopy(head)
    head.train()
    ref.train()
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(8, 6, generator=g)
    shield = 3 + 2 * torch.randn(8, 6, generator=g)
    out = head({'f': torch.cat([raw, shield])}, stats_rows=8)['bn_f']
    alone = ref({'f': raw})['bn_f']
    # the raw rows and the running statistics are those of raw alone
    assert torch.allclose(out[:8], alone, atol=1e-6)
    bn, bn_ref = head.bns[0], ref.bns[0]
    assert torch.allclose(bn.running_mean, bn_ref.running_mean)
    assert torch.allclose(bn.running_var, bn_ref.running_var)
    # the shielding rows are normalised with the raw batch's statistics
    mean, var = raw.mean(0), raw.var(0, unbiased=False)
    expected = (shield - mean) / torch.sqrt(var + bn.eps)
    assert torch.allclose(out[8:], expected, atol=1e-5)
    # joint statistics differ
    joint = ref({'f': torch.cat([raw, shield])})['bn_f']
    assert not torch.allclose(joint[:8], alone, atol=1e-3)


@pytest.mark.parametrize('bn_stats', ['joint', 'raw'])
def test_ifp_bn_stats_switch(bn_stats):
    model = build(ifp=dict(type='IFP', bn_stats=bn_stats), cfm=None)
    model.train()
    data = model.data_preprocessor(make_batch(), True)
    raw, shield = model._encode(data['inputs'], None, True)
    alone = copy.deepcopy(model.head)
    feats = model.image_encoder(data['inputs']['images'])
    raw_only = alone(feats)['bn_f12']
    same = torch.allclose(raw['bn_f12'], raw_only, atol=1e-5)
    assert same == (bn_stats == 'raw')
    with pytest.raises(ValueError, match="'joint' or 'raw'"):
        MODELS.build(dict(type='IFP', bn_stats='shield'))


def examiner_step(model, optim):
    ow = build_optim_wrapper(model, copy.deepcopy(optim))
    model.begin_stage2(0)
    model.train_step(make_batch(), ow)
    return ow


@pytest.mark.parametrize('adversary', ['pre', 'post'])
def test_cfm_adversary_uses_pre_or_post_update_clothes_features(adversary):
    model = build(cfm=dict(type='CFM', adversary=adversary))
    before = model.cfm.clothes_features(model.text_encoder).detach()
    examiner_step(model, OPTIM)
    with torch.no_grad():
        after = model.cfm.clothes_features(model.text_encoder)
    assert not torch.allclose(before, after)  # the examiner moved
    used = model._u_cache
    assert torch.allclose(used, after, atol=1e-6) == (adversary == 'post')
    assert torch.allclose(used, before, atol=1e-6) == (adversary == 'pre')


def test_cfm_examines_f12_through_an_adapter():
    cfm = dict(type='CFM', feature_keys=('f12', 'fp'))
    model = build(cfm=cfm)
    adapter = model.cfm.adapters['f12']
    # starts as CLIP's projection: f12 . adapter = fp
    proj = model.image_encoder.visual.proj
    assert torch.equal(adapter.weight, proj.t())
    # the examiner optimizer must own the adapter
    with pytest.raises(ValueError, match='cfm.adapters'):
        examiner_step(model, OPTIM)
    model = build(cfm=cfm)
    optim = copy.deepcopy(OPTIM)
    optim['clothes_prompt']['modules'] = ['cfm.clothes_prompt', 'cfm.adapters']
    w0 = model.cfm.adapters['f12'].weight.detach().clone()
    examiner_step(model, optim)
    assert not torch.equal(model.cfm.adapters['f12'].weight, w0)
    # step B sends no gradient to the adapter (the encoder unlearns)
    model.zero_grad(set_to_none=True)
    data = model.data_preprocessor(make_batch(1), True)
    feats = model.image_encoder(data['inputs']['images'])
    clothes = torch.tensor([2 * (i // 2) + i % 2 for i in range(B)])
    loss = model.cfm.minimise_loss(
        {k: feats[k] for k in ('f12', 'fp')}, clothes, clothes // 2,
        model._u_cache, model.pid2clothes)
    loss.backward()
    assert model.cfm.adapters['f12'].weight.grad is None
    assert model.image_encoder.visual.conv1.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="'fp' only"):
        build(cfm=dict(type='CFM', mode='proj', feature_keys=('f12', 'fp')))
