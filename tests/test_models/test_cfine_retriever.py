import copy

import pytest
import torch
from helpers.micro_models import CFINE, W
from mmpretrain.structures import DataSample

from mmreid_clip.registry import MODELS


def _cfg(**overrides):
    cfg = copy.deepcopy(CFINE)
    cfg.update(overrides)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _sample(pid, image=True, text=True):
    s = DataSample(metainfo=dict(pid=pid, has_image=image, has_text=text))
    return s.set_gt_label(pid)


def _batch(model, pids, images=True, texts=True):
    g = torch.Generator().manual_seed(0)
    n = len(pids)
    inputs = {}
    if images:
        inputs['images'] = torch.randint(
            0, 256, (n, 3, 32, 16), dtype=torch.uint8, generator=g)
    if texts:
        t = torch.randint(1, 400, (n, 16), generator=g)
        t[:, 0] = 49406
        t[:, 9] = 49407  # EOT (the argmax), then padding
        t[:, 10:] = 0
        inputs['texts'] = t
    samples = [_sample(p, images, texts) for p in pids]
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples),
                                   True)


def test_training_step_losses_and_gradients():
    model = _cfg()
    data = _batch(model, [0, 0, 1, 2])
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cmpm', 'loss_cmpc', 'loss_div',
                           'loss_triplet'}
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and p.grad is None]
    assert missing == []
    # BN necks keep their bias frozen at zero (docs/methods/cfine.md §4)
    assert not model.neck.bn_img.bias.requires_grad


def test_inference_never_runs_cfr_or_fcd(monkeypatch):
    model = _cfg().eval()

    def boom(*args, **kwargs):
        raise AssertionError('CFR/FCD must not run at inference')

    monkeypatch.setattr(model.cfr, 'forward', boom)
    monkeypatch.setattr(model.fcd, 'forward', boom)
    data = _batch(model, [0, 1, 2])
    with torch.no_grad():
        out = model(**data, mode='predict')
    # three levels of width W, concatenated then L2-normalised (cfine.md §9)
    assert out[0].img_feat.shape == (3 * W, )
    assert torch.allclose(out[1].text_feat.norm(), torch.tensor(1.0))
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
    assert torch.allclose(out[2].img_feat, feats['img_feats'][2])


def test_ablations_are_config_changes():
    baseline = _cfg(
        neck=dict(type='MGF', embed_dims=W, num_heads=4, num_groups=0),
        cfr=None, fcd=None, sim_losses=[],
        losses=[dict(type='CMPMLoss', level_weights=(1.0, )),
                dict(type='CMPCLoss', in_channels=W, num_classes=3)])
    assert baseline.neck.mgf_block is None
    data = _batch(baseline, [0, 1, 2])
    losses = baseline(**data, mode='loss')
    assert set(losses) == {'loss_cmpm', 'loss_cmpc'}
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in baseline.parameters()
               if p.requires_grad)
    with torch.no_grad():
        feats = baseline.eval().extract_feat(data['inputs'])
    assert feats['img_feats'].shape == (3, W)  # the global level only

    no_fcd = _cfg(fcd=None)
    assert set(no_fcd(**_batch(no_fcd, [0, 1]), mode='loss')) >= {
        'loss_triplet'}
    with pytest.raises(ValueError, match='num_groups'):
        _cfg(neck=dict(type='MGF', embed_dims=W, num_heads=4, num_groups=0))
    with pytest.raises(ValueError, match='sim_losses'):
        _cfg(cfr=None, fcd=None)
    with pytest.raises(ValueError, match='text_global'):
        _cfg(text_global='first')
