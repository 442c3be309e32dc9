"""The released-checkpoint converters against the official models.

``tests/data/fidelity/converters/`` holds, for CLIP-ReID, IRRA and CFine, a
small random model of the *official* code saved in the layout its training
script writes, a few preprocessed inputs and that official model's
inference features (``tools/fidelity/make_converter_goldens.py``;
provenance in ``tests/data/fidelity/PROVENANCE.md``). Each test converts
the official checkpoint with ``tools/model_converters/*_to_mmreid.py``,
builds this project's model from the zoo's config with the options the
converter prints (the small archs replacing ViT-B/16), loads the result
strictly and compares features.

Tolerance: max|ours - official| / max|official| <= 1e-5 in fp32. The two
implementations order some operations differently (sequence-first vs
batch-first attention, CFine's gathers), which leaves differences below
1e-6; the image features of CLIP-ReID and IRRA agree exactly.
"""
import argparse
import copy
import os
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from mmreid_clip.registry import MODELS
from mmreid_clip.utils.checkpoint_convert import (ConversionError,
                                                  format_cfg_options,
                                                  load_official_checkpoint)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402

DATA = osp.join(ROOT, 'tests', 'data', 'fidelity', 'converters')
RTOL = 1e-5


clip_reid = load_tool('tools/model_converters/clip_reid_to_mmreid.py')
irra = load_tool('tools/model_converters/irra_to_mmreid.py')
cfine = load_tool('tools/model_converters/cfine_to_mmreid.py')

# the small official models (make_converter_goldens.py)
CLIPREID_IMG = (64, 32)
IRRA_IMG = (64, 32)


def data(name):
    return torch.load(osp.join(DATA, name), weights_only=True)


def rel_err(ours, official):
    ours, official = ours.detach().double(), official.detach().double()
    assert ours.shape == official.shape
    return ((ours - official).abs().max() /
            official.abs().max().clamp_min(1e-12)).item()


def build(config, conv, archs=('image_encoder', 'text_encoder'),
          extra=None):
    """The zoo's ``config`` with the converter's options, as a user would
    run tools/test.py without the CLIP (and BERT) weight files."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    for enc in archs:
        cfg.model[enc].arch = copy.deepcopy(conv.arch)
    cfg.merge_from_dict(conv.options)
    cfg.merge_from_dict(conv.no_archive_options)
    if extra:
        cfg.merge_from_dict(extra)
    model = MODELS.build(cfg.model)
    model.load_state_dict(conv.state_dict, strict=True)
    return model.eval(), cfg


# ----------------------------------------------------------------- CLIP-ReID
CLIPREID_CFG = 'configs/_base_/models/clip-reid_vit-b16.py'


def clipreid_official(plain=False):
    """The official state dict; the plain (stride 16, no SIE) model shares
    every tensor but the positional embedding with the SIE+OLP one, so it
    is stored as that tensor (the generator asserts the identity)."""
    state = data('clipreid_sie-olp_official.pt')
    if plain:
        state = {k: v for k, v in state.items() if k != 'cv_embed'}
        state['image_encoder.positional_embedding'] = data(
            'clipreid_plain_io.pt')['positional_embedding']
    return state


def clipreid_convert(plain=False, **kwargs):
    return clip_reid.convert(
        clipreid_official(plain), 'official', img_size=CLIPREID_IMG,
        stride=16 if plain else 12, **kwargs)


def check_clipreid_features(model, io, camids):
    x = io['images'].float()
    with torch.no_grad():
        enc = model.image_encoder(x, camids)
        for key in ('f11', 'f12', 'fp'):
            assert rel_err(enc[key], io[key]) <= RTOL, key
        model.test_neck = 'before'
        before = model.extract_img_feat(x, camids)
        model.test_neck = 'after'
        after = model.extract_img_feat(x, camids)
    # the official evaluator L2-normalises (TEST.FEAT_NORM yes)
    assert rel_err(before, F.normalize(io['feat_before'], dim=1)) <= RTOL
    assert rel_err(after, F.normalize(io['feat_after'], dim=1)) <= RTOL


def test_clipreid_sie_olp_matches_official():
    conv = clipreid_convert()
    assert conv.info['stride'] == 12 and conv.info['sie_cameras'] == 3
    assert conv.options['model.image_encoder.stride'] == 12
    assert conv.options['model.image_encoder.sie_cameras'] == 3
    assert conv.options['model.image_encoder.sie_coef'] == 1.0
    assert conv.options['model.num_classes'] == 5
    assert conv.options['model.head.in_channels'] == (64, 32)
    model, _ = build(CLIPREID_CFG, conv)
    io = data('clipreid_sie-olp_io.pt')
    check_clipreid_features(model, io, io['camids'])
    # SIE is really applied: other cameras, other features
    with torch.no_grad():
        other = model.image_encoder(io['images'].float(),
                                    (io['camids'] + 1) % 3)['f12']
    assert rel_err(other, io['f12']) > 1e-3


def test_clipreid_plain_matches_official():
    conv = clipreid_convert(plain=True)
    assert conv.info['sie_cameras'] == 0
    assert conv.options['model.image_encoder.stride'] is None
    model, _ = build(CLIPREID_CFG, conv)
    check_clipreid_features(model, data('clipreid_plain_io.pt'), None)


def test_clipreid_identity_prompts_match_official():
    """The text tower, the learnt contexts and the token-embedding rows
    rebuilt from the template give the official prompt features."""
    conv = clipreid_convert()
    model, cfg = build(CLIPREID_CFG, conv)
    io = data('clipreid_sie-olp_io.pt')
    # PromptLearner computes its template buffers once, from the tower it
    # is built with (non-persistent buffers): a model built without CLIP
    # weights keeps those of its random init even after loading a
    # checkpoint, so the learner is rebuilt on the loaded tower here.
    learner = MODELS.build(
        cfg.model.id_prompt,
        default_args=dict(
            num_classes=conv.info['num_classes'],
            text_encoder=model.text_encoder))
    learner.load_state_dict(model.id_prompt.state_dict())
    with torch.no_grad():
        text = learner(model.text_encoder, io['labels'])
    assert rel_err(text, io['text_feat']) <= RTOL


def test_clipreid_fp32_and_wrapped_checkpoints_convert_alike():
    ref = clipreid_convert().state_dict
    state = clipreid_official()
    # as the official training saves it (fp32), and from a DDP run
    wrapped = {
        'module.' + k: v.float() if v.is_floating_point() else v
        for k, v in state.items()
    }
    conv = clip_reid.convert(wrapped, 'x', img_size=CLIPREID_IMG, stride=12)
    assert conv.state_dict.keys() == ref.keys()
    assert all(torch.equal(conv.state_dict[k], v) for k, v in ref.items())
    assert all(v.dtype != torch.float16 for v in ref.values())


def test_clipreid_clip_weights_give_the_whole_token_table(tmp_path):
    conv = clipreid_convert()
    rebuilt = conv.state_dict['text_encoder.token_embedding.weight']
    used = rebuilt.abs().sum(1) > 0
    assert 5 <= int(used.sum()) <= 10  # the template's distinct tokens
    table = torch.randn(rebuilt.shape)
    table[used] = rebuilt[used]
    path = str(tmp_path / 'ViT-B-16-like.pt')
    # an OpenAI-style state dict (with a hyper-parameter entry)
    torch.save({'token_embedding.weight': table,
                'vocab_size': torch.tensor(table.shape[0])}, path)
    full = clipreid_convert(clip_weights=path)
    assert torch.equal(full.state_dict['text_encoder.token_embedding.weight'],
                       table)
    assert not any('rebuilt' in n for n in full.notes)
    # weights the model was not trained from are refused
    table[used.nonzero()[0]] += 1
    torch.save({'token_embedding.weight': table}, path)
    with pytest.raises(ConversionError, match='not trained from'):
        clipreid_convert(clip_weights=path)


def test_clipreid_finds_the_stride_of_released_runs():
    # 256x128 with 16-pixel patches: stride 16 -> 16x8, stride 12 -> 21x10
    assert clip_reid.find_strides(128, (256, 128), 16) == [16]
    assert clip_reid.find_strides(210, (256, 128), 16) == [12]
    # the released towers are the configs' arch: nothing to override
    info = dict(clip_reid.VIT_B16, vocab_size=49408, img_size=[256, 128])
    assert clip_reid._arch(info) is None
    assert clip_reid._arch(dict(info, width=64)) is not None
    # small inputs can be ambiguous: the converter then asks for --stride
    assert clip_reid.find_strides(8, CLIPREID_IMG, 16) == [16, 15, 14, 13]
    with pytest.raises(ConversionError, match='pass --stride'):
        clip_reid.convert(
            clipreid_official(plain=True), 'x', img_size=CLIPREID_IMG)
    with pytest.raises(ConversionError, match='stride 16'):
        clip_reid.convert(
            clipreid_official(), 'x', img_size=CLIPREID_IMG, stride=16)


def test_clipreid_refuses_rn50_and_other_files():
    state = clipreid_official()
    rn50 = {k: v for k, v in state.items()
            if not k.startswith('image_encoder.')}
    rn50['image_encoder.layer1.0.conv1.weight'] = torch.zeros(64, 64, 1, 1)
    rn50['image_encoder.attnpool.c_proj.weight'] = torch.zeros(1024, 2048)
    with pytest.raises(ConversionError, match='RN50'):
        clip_reid.convert(rn50, 'cnn.pth')
    with pytest.raises(ConversionError, match='missing'):
        clip_reid.convert({'image_encoder.conv1.weight': torch.zeros(1)},
                          'partial.pth')
    baseline = {k: v for k, v in state.items()
                if not k.startswith(('prompt_learner.', 'text_encoder.'))}
    with pytest.raises(ConversionError, match='ViT baseline'):
        clip_reid.convert(baseline, 'ViT-B-16_baseline.pth')
    with pytest.raises(ConversionError, match='not the state dict'):
        clip_reid.convert({'network': 3}, 'cfine.pth')
    with pytest.raises(ConversionError, match='does not know'):
        clip_reid.convert(dict(state, extra_head=torch.zeros(2)), 'x.pth',
                          img_size=CLIPREID_IMG, stride=12)
    converted = {'state_dict': clipreid_convert().state_dict}
    with pytest.raises(ConversionError, match='already'):
        clip_reid.convert(converted, 'mine.pth')


def test_clipreid_command_output_loads_as_tools_test_does(tmp_path, capsys):
    """The written file goes through tools/test.py's loading path: the
    Runner's checkpoint loader (weights_only) and the strict
    CheckpointMatchHook, with the printed options on a zoo config."""
    official = str(tmp_path / 'ViT-B-16_60.pth')
    torch.save(clipreid_official(), official)
    out = str(tmp_path / 'converted.pth')
    clip_reid.main([official, out, '--img-size', '64', '32', '--stride',
                    '12'])
    printed = capsys.readouterr().out
    conv = clipreid_convert()
    assert format_cfg_options(conv.options) in printed
    assert format_cfg_options(conv.no_archive_options) in printed
    assert 'model.image_encoder.pretrained=None' in printed
    ckpt = load_official_checkpoint(out)
    assert set(ckpt) == {'meta', 'state_dict'}
    assert ckpt['meta']['detected']['stride'] == 12

    from mmengine.runner import Runner

    from mmreid_clip.utils import setup_runtime
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/clip_reid/clip-reid_vit-b16_ltcc.py'))
    for enc in ('image_encoder', 'text_encoder'):
        cfg.model[enc].arch = conv.arch
    cfg.merge_from_dict(conv.options)
    cfg.merge_from_dict(conv.no_archive_options)
    cfg.test_dataloader.dataset.data_root = str(tmp_path)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.launcher = 'none'
    cfg.default_hooks.checkpoint_match = dict(
        type='CheckpointMatchHook', strict=True, source=out)
    setup_runtime(cfg, loaders=('test_dataloader', ))
    runner = Runner.from_cfg(cfg)
    runner.load_checkpoint(out)
    io = data('clipreid_sie-olp_io.pt')
    check_clipreid_features(runner.model.eval(), io, io['camids'])
    # the hook is strict: a file lacking a tensor is refused, not half-used
    from mmreid_clip.utils import CheckpointMismatchError
    del ckpt['state_dict']['text_encoder.token_embedding.weight']
    torch.save(ckpt, out)
    with pytest.raises(CheckpointMismatchError, match='token_embedding'):
        runner.load_checkpoint(out)


# ---------------------------------------------------------------------- IRRA
IRRA_CFG = 'configs/baselines/clip-baseline_vit-b16_cuhk-pedes.py'
IRRA_HEADS = {'cross_attn', 'cross_modal_transformer', 'ln_pre_t',
              'ln_pre_i', 'ln_post', 'mlm_head'}


def test_irra_matches_official():
    ckpt = data('irra_official.pt')
    conv = irra.convert(ckpt, 'best.pth', img_size=IRRA_IMG)
    # the MLM branch is dropped, and nothing else
    assert {k.split('.')[0] for k in conv.dropped} == IRRA_HEADS
    assert len(conv.dropped) + len(conv.state_dict) == len(ckpt['model'])
    assert conv.options['model.id_head.num_classes'] == 7
    # IRRA saves a partly fp16 model; the project's is fp32
    assert {v.dtype for v in ckpt['model'].values()} == {torch.float16,
                                                         torch.float32}
    model, _ = build(IRRA_CFG, conv)
    io = data('irra_io.pt')
    with torch.no_grad():
        img = model.extract_img_feat(io['images'].float())
        text = model.extract_text_feat(io['texts'])
        logits = model.id_head(img)
    assert rel_err(img, io['img_feat']) <= RTOL
    assert rel_err(text, io['text_feat']) <= RTOL
    official_logits = F.linear(io['img_feat'],
                               ckpt['model']['classifier.weight'].float(),
                               ckpt['model']['classifier.bias'].float())
    assert rel_err(logits, official_logits) <= RTOL


def test_irra_without_id_loss_and_wrong_inputs():
    ckpt = data('irra_official.pt')
    state = {k: v for k, v in ckpt['model'].items()
             if not k.startswith('classifier.')}
    conv = irra.convert(state, 'sdm-only.pth', img_size=IRRA_IMG)
    assert conv.options['model.id_head'] is None
    model, _ = build(IRRA_CFG, conv)  # strict: no ID head left over
    assert model.id_head is None
    with pytest.raises(ConversionError, match='--img-size'):
        irra.convert(ckpt, 'best.pth')  # trained at 64x32, not 384x128
    with pytest.raises(ConversionError, match='does not know'):
        irra.convert(dict(state, prompt=torch.zeros(1)), 'x.pth',
                     img_size=IRRA_IMG)
    with pytest.raises(ConversionError, match='not what IRRA'):
        irra.convert({'network': {}}, 'cfine.pth')
    with pytest.raises(ConversionError, match='not an IRRA checkpoint'):
        irra.convert(clipreid_official(), 'clipreid.pth')


# --------------------------------------------------------------------- CFine
CFINE_CFG = 'configs/cfine/cfine_vit-b16-bert_cuhk-pedes.py'
# the official code hard-codes 12 MGF heads; the small model was built with
# 2 (make_converter_goldens.py), as was its BERT
CFINE_HEADS = dict(bert_heads=2, mgf_heads=2)


def cfine_model(conv):
    # the small BERT has no vocab.txt: its size comes with the config
    return build(CFINE_CFG, conv, archs=('image_encoder', ),
                 extra={'model.text_encoder.vocab_file': None})[0]


def test_cfine_matches_official():
    ckpt = data('cfine_official.pt')
    conv = cfine.convert(ckpt, 'best_model.pth.tar', **CFINE_HEADS)
    assert conv.dropped == [
        'language_model.textExtractor.pooler.dense.bias',
        'language_model.textExtractor.pooler.dense.weight'
    ]
    assert conv.options['model.losses.1.num_classes'] == 6
    assert torch.equal(conv.state_dict['losses.1.cmpc_W'],
                       ckpt['W'].float())
    model = cfine_model(conv)
    io = data('cfine_io.pt')
    images, texts = io['images'].float(), io['texts']
    with torch.no_grad():
        img = model.encode_image(images)['levels']
        txt = model.encode_text(texts)['levels']
        feats = model.extract_feat(dict(images=images, texts=texts))
    assert rel_err(img, io['img_levels']) <= RTOL
    assert rel_err(txt, io['text_levels']) <= RTOL
    # CFine's test: concatenate the three BN-necked levels, L2-normalise
    for ours, levels in ((feats['img_feats'], io['img_levels']),
                         (feats['text_feats'], io['text_levels'])):
        assert rel_err(ours, F.normalize(levels.flatten(1), dim=1)) <= RTOL


def test_cfine_cmpc_position_and_inputs(tmp_path):
    ckpt = data('cfine_official.pt')
    config = tmp_path / 'cfine_other.py'
    config.write_text(
        "model = dict(type='CFine', losses=[dict(type='CMPCLoss'), "
        "dict(type='CMPMLoss')])\n")
    assert cfine.cmpc_index(str(config)) == 0
    assert cfine.cmpc_index(osp.join(ROOT, CFINE_CFG)) == 1
    conv = cfine.convert(ckpt, 'x', cmpc=0, **CFINE_HEADS)
    assert 'losses.0.cmpc_W' in conv.state_dict
    conv = cfine.convert(ckpt, 'x', cmpc=None, **CFINE_HEADS)
    assert 'W' in conv.dropped
    assert not any(k.startswith('losses.') for k in conv.state_dict)
    with pytest.raises(ConversionError, match='not what CFine'):
        cfine.convert(data('irra_official.pt'), 'irra.pth')
    network = dict(ckpt['network'])
    network['module.block.layers.1.ln_0.weight'] = torch.ones(64)
    with pytest.raises(ConversionError, match='does not know'):
        cfine.convert(dict(ckpt, network=network), 'x.pth')


# -------------------------------------------------------------- the commands
def test_commands_never_overwrite(tmp_path, capsys):
    official = str(tmp_path / 'best.pth')
    torch.save(data('irra_official.pt'), official)
    out = str(tmp_path / 'out.pth')
    irra.main([official, out, '--img-size', '64', '32'])
    # every dropped IRRA tensor is named
    printed = capsys.readouterr().out
    assert 'mlm_head.fc.weight' in printed
    assert 'cross_modal_transformer.resblocks.0.ln_1.bias' in printed
    first = os.path.getmtime(out)
    with pytest.raises(FileExistsError, match='--force'):
        irra.main([official, out, '--img-size', '64', '32'])
    assert os.path.getmtime(out) == first
    irra.main([official, out, '--img-size', '64', '32', '--force'])
    # the input is never the output, with or without --force
    for force in ([], ['--force']):
        with pytest.raises(ValueError, match='is the input'):
            irra.main([official, official, '--img-size', '64', '32'] + force)
    assert 'model' in torch.load(official, weights_only=True)
    # nothing left behind by the atomic write
    assert sorted(os.listdir(tmp_path)) == ['best.pth', 'out.pth']


def test_commands_refuse_unreadable_and_pickled_files(tmp_path):
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(ConversionError, match='notes.pth'):
        load_official_checkpoint(str(text))
    with pytest.raises(FileNotFoundError):
        load_official_checkpoint(str(tmp_path / 'missing.pth'))
    pickled = str(tmp_path / 'pickled.pth')
    # e.g. a training script that saved its argparse options alongside
    torch.save({'model': data('irra_official.pt')['model'],
                'args': argparse.Namespace(lr=1e-5)}, pickled)
    with pytest.raises(ConversionError, match='weights_only'):
        irra.main([pickled, str(tmp_path / 'out.pth')])
    assert not osp.exists(tmp_path / 'out.pth')
