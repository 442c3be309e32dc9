""".dev_scripts/bench_models.py: the quick mode of each section.

The sections run once per module (fixtures) with one torch thread. Timings
and their ratios are benchmark figures, not test results: a loaded machine
moves them by 2x between calls. The tests check what the report is made of
(rows, keys, how ratios and noise are derived) and the properties the
ratios stand for through the code path taken (which modules run), never a
measured time.
"""
import json
import math
import os.path as osp

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402

pytestmark = pytest.mark.slow

bm = load_tool('.dev_scripts/bench_models.py')


class TrainingOnlyCalled(RuntimeError):
    pass


def _raiser(what):

    def fail(*args, **kwargs):
        raise TrainingOnlyCalled(f'{what} ran at inference')

    return fail


def _patch_training_only(name, model):
    """Make every training-only part of ``model`` raise when called."""
    kind = type(model).__name__
    if kind == 'CFine':
        parts = [model.cfr, model.fcd, *model.losses, *model.sim_losses]
        for part in parts:
            part.forward = _raiser(type(part).__name__)
    elif kind in ('CCAF', 'CLIPReID'):
        for attr in ('text_encoder', 'id_prompt', 'head', 'id_loss',
                     'triplet_loss', 'i2t_loss', 'stage1_loss'):
            getattr(model, attr).forward = _raiser(attr)
        if model.ifp is not None:
            model.ifp.forward = model.ifp.loss = _raiser('IFP')
        if model.cfm is not None:
            for meth in ('forward', 'clothes_features', 'examine_loss',
                         'minimise_loss', 'stage1_loss', 'logits'):
                setattr(model.cfm, meth, _raiser(f'CFM.{meth}'))
    elif kind == 'CLIPTextImageReID':
        for part in [*model.losses, model.id_head]:
            part.forward = _raiser(type(part).__name__)
            if hasattr(part, 'loss'):
                part.loss = _raiser(type(part).__name__)
    else:
        raise AssertionError(f'unexpected model {kind} for {name}')


@pytest.fixture(scope='module')
def inference():
    models = {}

    def on_model(name, model):
        _patch_training_only(name, model)
        models[name] = model

    result = bm.bench_inference(quick=True, on_model=on_model, threads=1)
    return result, models


@pytest.fixture(scope='module')
def train():
    return bm.bench_train_step(quick=True, threads=1)


@pytest.fixture(scope='module')
def data(train):
    return bm.bench_data_pipeline(quick=True, train_result=train, threads=1)


def _finite_positive(ratios):
    assert ratios
    for key, value in ratios.items():
        assert math.isfinite(value) and value > 0, (key, value)


def test_inference_rows_and_ratios(inference):
    result, _ = inference
    assert result['section'] == 'inference' and result['quick'] is True
    assert result['torch_threads'] == 1
    assert result['batch'] == {'clip-tiny': 8}  # no ViT-B/16 in quick
    expected = {
        'cfine_tiny/image', 'cfine_tiny/text', 'cfine_tiny/both',
        'cfine_tiny/image_tower_attn', 'cfine_tiny/text_tower_attn',
        'baseline_tiny/image', 'baseline_tiny/text', 'ccaf_tiny/image',
        'clipreid_tiny/image', 'ccaf_tiny_vs_clipreid_tiny/image'
    }
    assert set(result['ratios']) == expected
    _finite_positive(result['ratios'])
    for row in result['rows']:
        assert row['rounds'] >= 5
        for key in ('ratio_paired', 'ratio_wall', 'ratio_cpu'):
            assert math.isfinite(row[key]) and row[key] > 0, (row['name'], key)
        assert row['ratio'] == row['ratio_cpu']  # the default clock
        if row['target'] is not None:
            assert row['meets_target'] == (row['ratio'] <= row['target'])
            assert row['within_noise'] == (
                row['ratio'] <= row['target'] + result['noise']['clip-tiny'])
    # the same-path rows (baseline vs its own towers, CLIP-ReID vs its
    # tower) set the resolution of the run
    same = [r['name'] for r in result['rows'] if r.get('same_path')]
    assert sorted(same) == [
        'baseline_tiny/image', 'baseline_tiny/text', 'clipreid_tiny/image'
    ]
    # the noise is derived from the same-path rows, whatever the machine
    assert result['noise']['clip-tiny'] == max(
        abs(r['ratio'] - 1) for r in result['rows'] if r.get('same_path'))
    # the "both" row is the sum of the image and the text sides
    rows = {r['name']: r for r in result['rows']}
    both = rows['cfine_tiny/both']
    assert both['method_s'] == pytest.approx(
        rows['cfine_tiny/image']['method_s'] +
        rows['cfine_tiny/text']['method_s'])


def _modules_run(model, fn, grad=False):
    """Names of ``model``'s submodules that ``fn`` calls, in call order
    (with one torch thread; without autograd unless ``grad``)."""
    names = []
    hooks = [
        module.register_forward_pre_hook(
            lambda module, args, name=name: names.append(name))
        for name, module in model.named_modules() if name
    ]
    try:
        with bm.torch_threads(1), torch.set_grad_enabled(grad):
            fn()
    finally:
        for hook in hooks:
            hook.remove()
    return names


def test_ccaf_inference_is_clipreid_inference(inference):
    """The properties the ~1.0 image ratios stand for, checked on the code
    path rather than on the clock."""
    result, models = inference
    # the same path (the image tower alone): the same features ...
    rows = {r['name']: r for r in result['rows']}
    assert rows['ccaf_tiny_vs_clipreid_tiny/image']['identical_features']
    # ... by the same modules in the same order ...
    ccaf, clipreid = models['ccaf_tiny'], models['clipreid_tiny']
    images = torch.randn(2, 3, *ccaf.image_encoder.img_size)
    ccaf_path = _modules_run(ccaf, lambda: ccaf.extract_img_feat(images))
    assert ccaf_path == _modules_run(
        clipreid, lambda: clipreid.extract_img_feat(images))
    # ... all of them inside the image tower: the retrievers add no module
    # to the bare tower (CCAF's and CLIP-ReID's, and the CLIP baseline's)
    assert ccaf_path and all(
        n.split('.')[0] == 'image_encoder' for n in ccaf_path)
    baseline = models['baseline_tiny']
    base_path = _modules_run(
        baseline, lambda: baseline.extract_feat({'images': images}))
    assert base_path and all(
        n.split('.')[0] == 'image_encoder' for n in base_path)


def test_inference_never_runs_training_only_modules(inference):
    result, models = inference
    # the forward pre-hooks saw no call ...
    assert result['training_only_calls'] == {
        'cfine_tiny': 0,
        'baseline_tiny': 0,
        'ccaf_tiny': 0,
        'clipreid_tiny': 0
    }
    # ... and the patched modules, which would have raised, are the ones the
    # training paths do run
    assert set(models) == {
        'cfine_tiny', 'baseline_tiny', 'ccaf_tiny', 'clipreid_tiny'
    }
    cfine = models['cfine_tiny']
    with bm.torch_threads(1), torch.no_grad():
        img = cfine.encode_image(torch.randn(2, 3, 128, 64))
        txt = cfine.encode_text(bm.make_texts(2, 77, 49408, bert=False))
    with pytest.raises(TrainingOnlyCalled, match='CFR'):
        cfine.similarity(img, txt)
    with pytest.raises(TrainingOnlyCalled):
        cfine.losses[0](img['levels'], txt['levels'], torch.tensor([0, 1]))
    ccaf = models['ccaf_tiny']
    ccaf._t_id = None
    with pytest.raises(TrainingOnlyCalled, match='id_prompt|text_encoder'):
        ccaf.begin_stage2(0)
    with pytest.raises(TrainingOnlyCalled, match='CFM'):
        ccaf.cfm.clothes_features(ccaf.text_encoder)


def test_train_step_ratios(train):
    assert train['section'] == 'train' and train['quick'] is True
    assert set(train['ratios']) == {
        'cfine_tiny_vs_baseline_tiny/train_step',
        'ccaf_tiny_vs_clipreid_tiny/train_step'
    }
    _finite_positive(train['ratios'])
    assert set(train['step_s']) == {
        'cfine_tiny', 'baseline_tiny', 'ccaf_tiny', 'clipreid_tiny'
    }
    assert set(train['batch_size'].values()) == {8}
    rows = {r['name']: r for r in train['rows']}
    cfine = rows['cfine_tiny_vs_baseline_tiny/train_step']
    assert cfine['target'] == 1.5
    assert cfine['ratio'] == train['ratios'][
        'cfine_tiny_vs_baseline_tiny/train_step']


def test_ccaf_train_step_does_more_than_clipreid():
    """What the CCAF / CLIP-ReID step ratio (> 1) stands for, counted: one
    step of CCAF calls every module CLIP-ReID's step calls, as often, and
    also the clothes examiner through the text tower."""
    from collections import Counter

    def modules_of_step(name):
        model, optim, batch, _ = bm._prepare_train(name, True)
        return Counter(
            n.split('.')[0] for n in _modules_run(
                model, lambda: model.train_step(batch, optim),
                grad=True))

    ccaf = modules_of_step('ccaf_tiny')
    clipreid = modules_of_step('clipreid_tiny')
    assert all(ccaf[k] >= v for k, v in clipreid.items()), (ccaf, clipreid)
    assert ccaf['text_encoder'] > 0 and ccaf['cfm'] > 0
    assert clipreid['text_encoder'] == 0
    assert sum(ccaf.values()) > sum(clipreid.values())


def test_data_pipeline_ratios(data):
    assert data['section'] == 'data' and data['step_times_reused'] is True
    assert set(data['ratios']) == {
        f'{n}/{w}'
        for n in ('baseline_tiny', 'cfine_tiny', 'ccaf_tiny', 'clipreid_tiny')
        for w in ('configured', '0_workers')
    }
    _finite_positive(data['ratios'])
    for row in data['rows']:
        assert row['batch'] == 8
        assert '0' in row['pipeline_wall']
        assert row['pipeline_cpu_0_workers'] > 0
        assert 0 < row['data_share_0_workers'] < 1
        assert row['meets_target'] == (
            min(row['ratio_configured'], row['ratio_0_workers']) > 1)
    with pytest.raises(ValueError, match='quick'):
        bm.bench_data_pipeline(quick=False, train_result=dict(quick=True))


def test_report_formats_and_serialises(inference, train, data):
    report = dict(
        machine=bm.machine_info(),
        quick=True,
        clock='cpu',
        torch_threads=1,
        load_avg_end=None,
        sections=dict(inference=inference[0], train=train, data=data))
    text = bm.format_report(report)
    for name in ('ccaf_tiny_vs_clipreid_tiny/image',
                 'cfine_tiny_vs_baseline_tiny/train_step', 'clipreid_tiny'):
        assert name in text
    back = json.loads(json.dumps(bm._jsonable(report)))
    assert back['sections']['train']['ratios'] == pytest.approx(
        train['ratios'])


def test_time_interleaved_rounds_and_clocks():
    order = []
    fns = {k: (lambda k=k: order.append(k)) for k in 'abc'}
    out = bm.time_interleaved(fns, repeats=3, warmup=1)
    # one warm-up round, then rounds whose order rotates
    assert order == list('abc') + list('abc') + list('bca') + list('cab')
    for res in out.values():
        assert res['rounds'] == 3 and len(res['samples_cpu']) == 3
        assert res['best'] == res['best_cpu'] <= res['median_cpu']
    wall = bm.time_interleaved(fns, repeats=2, warmup=0, clock='wall')
    assert wall['a']['best'] == wall['a']['best_wall']
    with pytest.raises(ValueError, match='repeats'):
        bm.time_interleaved(fns, repeats=0)
    with pytest.raises(ValueError, match='clock'):
        bm.time_interleaved(fns, repeats=1, clock='gpu')
    assert bm.paired_ratio([2.0, 4.0, 9.0], [1.0, 1.0, 3.0]) == 3.0


def test_synthetic_captions_look_tokenised():
    clip = bm.make_texts(6, 77, 49408, bert=False)
    lengths = (clip != 0).sum(1)
    assert ((lengths >= 20) & (lengths <= 45)).all()
    assert (clip[:, 0] == 49406).all()
    # the EOT is the argmax, where CLIP's text tower reads its global token
    assert (clip.argmax(1) == lengths - 1).all()
    bert = bm.make_texts(6, 100, 30522, bert=True)
    lengths = (bert != 0).sum(1)
    assert (bert[:, 0] == 101).all()
    assert (bert[torch.arange(6), lengths - 1] == 102).all()
    assert int(bert.max()) < 30522


def test_random_weights_needs_no_files():
    cfg = bm.load_config('cfine_vitb').model
    rnd = bm.random_weights(cfg)
    assert rnd['image_encoder']['pretrained'] is None
    text = rnd['text_encoder']
    assert text['pretrained'] is None and text['vocab_file'] is None
    assert text['config']['vocab_size'] == 30522
    assert text['config']['num_hidden_layers'] == 12
    # the config itself is untouched
    assert cfg['text_encoder']['pretrained'] == 'checkpoints/bert-base-uncased'
