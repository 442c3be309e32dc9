"""ONNX export of the zoo's models, checked against onnxruntime and predict.

The export tests build the tiny baseline and the tiny CFine from their real
configs with random weights; each export takes 10-20 s of CPU, so they are
marked slow and share module-scoped exports.
"""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from mmreid_clip.deploy import (ExportError, ImageFeatureEncoder, ParityError,
                                TextFeatureEncoder, TextInputSpec,
                                check_parity, export_encoder, export_model,
                                has_text_branch, infer_image_size,
                                infer_text_spec, predict_features,
                                random_images, random_texts)
from mmreid_clip.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASELINE = osp.join(ROOT, 'configs/baselines/clip-baseline_synthpedes-tiny.py')
CFINE = osp.join(ROOT, 'configs/cfine/cfine_clip-tiny_synthpedes-tiny.py')
TOL = 1e-4
from helpers.tool_loader import load_tool  # noqa: E402

needs_onnx = pytest.mark.skipif(
    not all(
        importlib.util.find_spec(m)
        for m in ('onnx', 'onnxscript', 'onnxruntime')),
    reason='needs onnx, onnxscript and onnxruntime')


def _build(config, seed=0):
    cfg = Config.fromfile(config)
    torch.manual_seed(seed)
    return MODELS.build(cfg.model).eval(), cfg


def _cli():
    return load_tool('tools/deploy/export_onnx.py')


def _ort(path, batch):
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return session.run(None, {session.get_inputs()[0].name: batch.numpy()})[0]


class ImageOnlyReID(nn.Module):
    """Stand-in for an image-only ReID model (CCAF): BN-necked features."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Conv2d(3, 8, 4, stride=4)
        self.backbone.img_size = (16, 8)
        self.bn = nn.BatchNorm1d(8)

    def extract_img_feat(self, images):
        return self.bn(self.backbone(images).flatten(2).mean(-1))


# ---------------------------------------------------------------- contract


def test_feature_sources_follow_the_documented_order():
    baseline, _ = _build(BASELINE)
    assert ImageFeatureEncoder(baseline).source == 'extract_img_feat'
    assert TextFeatureEncoder(baseline).source == 'extract_text_feat'
    cfine, _ = _build(CFINE)
    assert ImageFeatureEncoder(cfine).source.startswith('extract_feat(')
    assert "['text_feats']" in TextFeatureEncoder(cfine).source

    reid = ImageOnlyReID().eval()
    assert ImageFeatureEncoder(reid).source == 'extract_img_feat'
    assert not has_text_branch(reid)
    with pytest.raises(TypeError, match='extract_text_feat'):
        TextFeatureEncoder(reid)
    # the explicit export method wins over extract_img_feat
    reid.encode_image_for_export = lambda x: torch.ones(x.shape[0], 2)
    encoder = ImageFeatureEncoder(reid)
    assert encoder.source == 'encode_image_for_export'
    out = encoder(torch.zeros(3, 3, 16, 8))
    assert torch.allclose(out, torch.full((3, 2), 2**-0.5))
    with pytest.raises(TypeError, match='encode_image_for_export'):
        ImageFeatureEncoder(nn.Linear(2, 2))


def test_wrappers_equal_predict():
    for config in (BASELINE, CFINE):
        model, cfg = _build(config)
        images = random_images(3, infer_image_size(model), seed=1)
        texts = random_texts(4, infer_text_spec(model, cfg), seed=2)
        ref = predict_features(model, images=images, texts=texts)
        with torch.no_grad():
            img = ImageFeatureEncoder(model)(images)
            txt = TextFeatureEncoder(model)(texts)
        assert torch.allclose(img, ref['img_feat'], atol=1e-6), config
        assert torch.allclose(txt, ref['text_feat'], atol=1e-6), config
        assert torch.allclose(img.norm(dim=-1), torch.ones(3))


def test_text_spec_and_random_texts_follow_the_tokenizer():
    model, cfg = _build(BASELINE)
    spec = infer_text_spec(model, cfg)
    # open_clip's BPE: <start_of_text>, <end_of_text>, 0-padding
    assert (spec.context_length, spec.vocab_size) == (77, 49408)
    assert (spec.bos_token_id, spec.eos_token_id,
            spec.pad_token_id) == (49406, 49407, 0)
    texts = random_texts(5, spec, seed=3)
    assert texts.shape == (5, 77) and texts.dtype == torch.long
    assert (texts[:, 0] == spec.bos_token_id).all()
    eot = texts.argmax(dim=-1)  # what CLIP's text tower pools
    assert eot[0] == 2 and eot[-1] == 76  # shortest and full rows
    for row, end in zip(texts, eot.tolist()):
        assert row[end] == spec.eos_token_id
        assert (row[end + 1:] == spec.pad_token_id).all()
        content = row[1:end]
        assert ((content > 0) & (content < spec.bos_token_id)).all()
    assert torch.equal(texts, random_texts(5, spec, seed=3))
    assert infer_text_spec(model, cfg, context_length=20).context_length == 20


def test_random_texts_rejects_an_empty_vocabulary():
    with pytest.raises(ValueError, match='content ids'):
        random_texts(2, TextInputSpec(8, 3, 0, 1, 2))


def test_image_size_is_required_when_the_model_does_not_tell():
    with pytest.raises(ValueError, match='img_size'):
        infer_image_size(nn.Linear(2, 2))
    assert infer_image_size(ImageOnlyReID()) == (16, 8)


@needs_onnx
def test_export_rejects_low_opset_and_value_reading_code(tmp_path):

    class ChecksValues(nn.Module):

        def forward(self, x):
            if int(x.max()) > 100:  # an eager-mode input check
                raise ValueError('out of range')
            return x * 2

    with pytest.raises(ValueError, match='opset must be >= 17'):
        export_encoder(
            ChecksValues(),
            torch.zeros(2, 3),
            str(tmp_path / 'a.onnx'),
            'x',
            'y',
            opset=16)
    with pytest.raises(
            ExportError, match='torch.compiler.is_exporting') as err:
        export_encoder(ChecksValues(), torch.zeros(2, 3),
                       str(tmp_path / 'a.onnx'), 'x', 'y')
    assert 'int(x.max())' in str(err.value)


# ------------------------------------------------------------------ export


@pytest.fixture(scope='module')
def baseline_export(tmp_path_factory):
    model, cfg = _build(BASELINE)
    out = str(tmp_path_factory.mktemp('onnx_baseline'))
    return model, cfg, export_model(
        model, out, cfg=cfg, metadata=dict(config='baseline'))


@pytest.fixture(scope='module')
def cfine_export(tmp_path_factory):
    model, cfg = _build(CFINE)
    out = str(tmp_path_factory.mktemp('onnx_cfine'))
    return model, cfg, export_model(model, out, cfg=cfg)


def _check_graph_file(result, dim):
    import onnx
    proto = onnx.load(result.path)
    assert max(
        o.version for o in proto.opset_import
        if o.domain in ('', 'ai.onnx')) >= 17
    [inp], [out] = proto.graph.input, proto.graph.output
    assert inp.name == result.input_name
    assert out.name == result.output_name
    assert inp.type.tensor_type.shape.dim[0].dim_param == 'batch'
    assert out.type.tensor_type.shape.dim[0].dim_param == 'batch'
    assert out.type.tensor_type.shape.dim[1].dim_value == dim
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta['mmreid_clip.modality'] == result.modality
    assert meta['mmreid_clip.source'] == result.source
    return meta


def _check_results(model, cfg, results, dim):
    assert set(results) == {'image', 'text'}
    for result in results.values():
        assert result.max_abs_diff < TOL
        assert result.predict_check == 'passed'
        assert result.predict_max_abs_diff < TOL
        assert result.feature_dim == dim
        assert result.check_batch_size == 3
    # a batch size the graphs were neither traced nor checked with, compared
    # with what predict puts on the data samples
    images = random_images(5, infer_image_size(model), seed=11)
    texts = random_texts(5, infer_text_spec(model, cfg), seed=12)
    ref = predict_features(model, images=images, texts=texts)
    img = _ort(results['image'].path, images)
    txt = _ort(results['text'].path, texts)
    assert img.shape == txt.shape == (5, dim)
    assert np.abs(img - ref['img_feat'].numpy()).max() < TOL
    assert np.abs(txt - ref['text_feat'].numpy()).max() < TOL
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1, atol=1e-5)
    single = _ort(results['image'].path, images[:1])
    assert np.abs(single - img[:1]).max() < TOL


@needs_onnx
@pytest.mark.slow
def test_baseline_export_matches_predict(baseline_export):
    model, cfg, results = baseline_export
    _check_results(model, cfg, results, 256)
    meta = _check_graph_file(results['image'], 256)
    assert meta['mmreid_clip.config'] == 'baseline'
    assert meta['mmreid_clip.model'] == 'CLIPTextImageReID'
    assert json.loads(meta['mmreid_clip.img_size']) == [128, 64]
    pre = json.loads(meta['mmreid_clip.preprocess'])
    assert pre['to_rgb'] is True and pre['in_graph'] is False
    assert pre['mean'] == pytest.approx([122.770938, 116.74601, 104.093735])
    meta = _check_graph_file(results['text'], 256)
    assert json.loads(
        meta['mmreid_clip.tokenizer'])['type'] == ('OpenCLIPTokenizer')


@needs_onnx
@pytest.mark.slow
def test_parity_check_fails_when_the_graph_is_stale(baseline_export):
    model, _, results = baseline_export
    result = results['image']
    images = random_images(2, infer_image_size(model), seed=5)
    encoder = ImageFeatureEncoder(model)
    assert check_parity(encoder, result.path, images) < TOL
    with torch.no_grad():
        model.image_encoder.visual.proj.mul_(-1.0)
    try:
        with pytest.raises(ParityError, match='image_encoder.onnx'):
            check_parity(encoder, result.path, images)
    finally:
        with torch.no_grad():
            model.image_encoder.visual.proj.mul_(-1.0)


@needs_onnx
@pytest.mark.slow
def test_cfine_export_matches_predict(cfine_export):
    model, cfg, results = cfine_export
    # L2norm(concat of 3 BN-necked levels), 3 x 256 (docs/methods/cfine.md §9)
    _check_results(model, cfg, results, 768)
    _check_graph_file(results['image'], 768)
    meta = _check_graph_file(results['text'], 768)
    pre = json.loads(
        _check_graph_file(results['image'], 768)['mmreid_clip.preprocess'])
    assert pre['type'] == 'TextImageDataPreprocessor'
    assert 'extract_feat' in meta['mmreid_clip.source']


@needs_onnx
@pytest.mark.slow
def test_cfine_text_graph_breaks_attention_ties_like_torch(cfine_export):
    """Short captions leave most EOT attention scores at exactly 0: the
    token selection (a stable sort) must pick the same tied positions."""
    model, cfg, results = cfine_export
    spec = infer_text_spec(model, cfg)
    texts = torch.zeros(4, spec.context_length, dtype=torch.long)
    texts[:, 0] = spec.bos_token_id
    for row, n in enumerate((1, 2, 3, 5)):
        texts[row, 1:n + 1] = torch.arange(100, 100 + n)
        texts[row, n + 1] = spec.eos_token_id
    out = _ort(results['text'].path, texts)
    ref = predict_features(model, texts=texts)['text_feat'].numpy()
    assert np.abs(out - ref).max() < TOL


@needs_onnx
@pytest.mark.slow
def test_cli_exports_an_image_only_checkpoint_with_preprocessor(tmp_path):
    """The CLI: safe checkpoint loading, uint8 input, image graph only."""
    tool = _cli()
    trained, _ = _build(BASELINE, seed=7)
    ckpt = str(tmp_path / 'epoch_1.pth')
    torch.save({
        'state_dict': trained.state_dict(),
        'meta': {
            'epoch': 1
        }
    }, ckpt)
    out_dir = str(tmp_path / 'onnx')
    assert tool.main([
        BASELINE, '--checkpoint', ckpt, '--out-dir', out_dir,
        '--with-preprocessor', '--image-only', '--check-batch-size', '4'
    ]) == 0
    summary = json.load(open(osp.join(out_dir, 'export_summary.json')))
    assert set(summary) == {'image'}
    assert not osp.exists(osp.join(out_dir, 'text_encoder.onnx'))
    assert summary['image']['input_dtype'] == 'uint8'
    assert summary['image']['max_abs_diff'] < TOL
    assert summary['image']['predict_check'] == 'passed'
    # the graph holds the checkpoint's weights and the preprocessing
    raw = torch.randint(0, 256, (3, 3, 128, 64), dtype=torch.uint8)
    batch = trained.data_preprocessor(
        dict(inputs=dict(images=raw), data_samples=None))['inputs']
    ref = predict_features(trained, images=batch['images'])['img_feat']
    out = _ort(summary['image']['path'], raw)
    assert np.abs(out - ref.numpy()).max() < TOL


def test_unsafe_checkpoint_is_refused_before_export(tmp_path, capsys):
    from mmreid_clip.safe_load import UnsafeCheckpointError
    from mmreid_clip.deploy import export_from_config
    model, _ = _build(BASELINE)
    ckpt = str(tmp_path / 'bad.pth')
    torch.save({
        'state_dict': model.state_dict(),
        'extra': ParityError('x')
    }, ckpt)
    with pytest.raises(UnsafeCheckpointError, match='bad.pth'):
        export_from_config(
            BASELINE, checkpoint=ckpt, out_dir=str(tmp_path / 'out'))
    assert not osp.exists(tmp_path / 'out')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        export_from_config(BASELINE, checkpoint=str(tmp_path / 'missing.pth'))
    # the command line says why in one line and exits with 1
    assert _cli().main([BASELINE, '--checkpoint', ckpt]) == 1
    err = capsys.readouterr().err
    assert err.startswith('export_onnx: Refusing to load checkpoint')
    assert 'bad.pth' in err and '--trust-checkpoint' in err
