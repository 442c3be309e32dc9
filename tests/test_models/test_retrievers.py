import pytest
import torch
from mmpretrain.structures import DataSample

from mmreid_clip.registry import MODELS


def _model(**kwargs):
    cfg = dict(
        type='CLIPTextImageReID',
        image_encoder=dict(
            type='OpenCLIPVisionTransformer', arch='clip-micro',
            img_size=(32, 16)),
        text_encoder=dict(
            type='OpenCLIPTextTransformer', arch='clip-micro',
            context_length=16),
        losses=[dict(type='SDMLoss'), dict(type='InfoNCELoss')],
        id_head=dict(type='SharedIDHead', in_channels=48, num_classes=3))
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _sample(pid, image, text):
    s = DataSample(metainfo=dict(pid=pid, has_image=image, has_text=text))
    return s.set_gt_label(pid)


def _batch(n_img, n_txt, samples):
    inputs = {}
    if n_img:
        inputs['images'] = torch.randint(0, 256, (n_img, 3, 32, 16),
                                         dtype=torch.uint8)
    if n_txt:
        inputs['texts'] = torch.randint(1, 400, (n_txt, 16))
        inputs['texts'][:, -1] = 49407  # EOT, the argmax position
    return dict(inputs=inputs, data_samples=samples)


def test_train_step_gives_every_parameter_a_gradient():
    model = _model()
    data = _batch(4, 4, [_sample(p, True, True) for p in (0, 0, 1, 2)])
    data = model.data_preprocessor(data, True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_sdm', 'loss_infonce', 'loss_id'}
    sum(losses.values()).backward()
    no_grad = [n for n, p in model.named_parameters()
               if p.requires_grad and p.grad is None]
    assert no_grad == []


def test_predict_assigns_normalised_features_in_item_order():
    model = _model().eval()
    samples = [_sample(0, True, False), _sample(1, False, True),
               _sample(2, True, False), _sample(0, False, True)]
    data = model.data_preprocessor(_batch(2, 2, samples))
    with torch.no_grad():
        out = model(**data, mode='predict')
        feats = model.extract_feat(data['inputs'])
    assert 'img_feat' in out[0] and 'text_feat' not in out[0]
    assert 'text_feat' in out[1] and 'img_feat' not in out[1]
    assert torch.allclose(out[2].img_feat.norm(), torch.tensor(1.))
    assert torch.allclose(
        out[3].text_feat,
        torch.nn.functional.normalize(feats['text_feats'][1], dim=-1))


def test_loss_needs_pairs():
    model = _model()
    data = model.data_preprocessor(
        _batch(0, 2, [_sample(0, False, True)] * 2))
    with pytest.raises(ValueError, match='pairs'):
        model(**data, mode='loss')
    with pytest.raises(ValueError, match='invalid mode'):
        model(**data, mode='nope')


def test_mismatched_batch_and_samples_is_an_error():
    model = _model().eval()
    data = model.data_preprocessor(
        _batch(2, 0, [_sample(0, True, False)]))
    with pytest.raises(ValueError, match='disagree'):
        model(**data, mode='predict')


def test_duplicate_loss_names_rejected():
    with pytest.raises(ValueError, match='unique'):
        _model(losses=[dict(type='SDMLoss'), dict(type='SDMLoss')])
