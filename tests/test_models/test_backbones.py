"""CLIP backbones built with open_clip: outputs, parity, weight loading."""
import copy
import json
import math
import socket
import warnings

import open_clip
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from open_clip.transformer import QuickGELU
from safetensors.torch import save_file

from mmreid_clip.models.backbones import (TINY_ARCHS, build_open_clip,
                                          get_arch_config)
from mmreid_clip.registry import MODELS

MICRO = TINY_ARCHS['clip-micro']
PATCH = MICRO['vision_cfg']['patch_size']  # 8
# the micro arch with 16-pixel patches, to test another grid
MICRO_P16 = copy.deepcopy(MICRO)
MICRO_P16['vision_cfg'].update(patch_size=16, image_size=64)


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmreid_clip')


def vision(**kwargs):
    cfg = dict(type='OpenCLIPVisionTransformer', arch='clip-micro')
    cfg.update(kwargs)
    return MODELS.build(cfg).eval()


def text_tower(**kwargs):
    cfg = dict(type='OpenCLIPTextTransformer', arch='clip-micro')
    cfg.update(kwargs)
    return MODELS.build(cfg).eval()


def reference_clip(image_size=32, quick_gelu=False, seed=0):
    """A random open_clip CLIP of the micro arch, built by open_clip."""
    torch.manual_seed(seed)
    cfg = copy.deepcopy(MICRO)
    cfg['vision_cfg']['image_size'] = image_size
    model = open_clip.CLIP(**cfg, quick_gelu=quick_gelu).eval()
    with torch.no_grad():  # visible biases, so a missed copy shows
        for name, p in model.named_parameters():
            if name.endswith('bias'):
                p.normal_(0, 0.02)
    return model


@pytest.fixture(scope='module')
def texts():
    return open_clip.tokenize([
        'a woman in a red coat carrying a black bag',
        'a man with short hair, blue jeans and white shoes'
    ])


def saved_state_dict(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_weights_equal(tower_sd, saved, prefix='', skip=()):
    checked = 0
    for key, value in tower_sd.items():
        if key in skip:
            continue
        ref = saved[prefix + key]
        torch.testing.assert_close(value, ref.float(), rtol=0, atol=0, msg=key)
        checked += 1
    assert checked > 10


# ---------------------------------------------------------------- outputs


def test_tiny_archs_are_open_clip_model_configs():
    # shipped as open_clip model-config JSON and registered with open_clip
    assert {'clip-tiny', 'clip-tiny-p8', 'clip-micro'} <= set(
        open_clip.list_models())
    for name, table in TINY_ARCHS.items():
        assert open_clip.get_model_config(name) == table, name
    assert TINY_ARCHS['clip-tiny-p8']['vision_cfg']['image_size'] == [128, 64]
    # the builder reads the JSON list as an (H, W) pair, as before
    name, cfg = get_arch_config('clip-tiny-p8')
    assert name is None and cfg['vision_cfg']['image_size'] == (128, 64)


@pytest.mark.parametrize('arch,img_size', [
    ('clip-micro', (32, 32)),
    ('clip-micro', (64, 32)),
    (MICRO_P16, (64, 32)),
    (MICRO_P16, (128, 64)),
])
def test_vision_output_shapes(arch, img_size):
    model = vision(arch=arch, img_size=img_size)
    patch = arch['vision_cfg']['patch_size'] if isinstance(arch, dict) \
        else PATCH
    n = (img_size[0] // patch) * (img_size[1] // patch)
    out = model(torch.randn(3, 3, *img_size))
    assert set(out) == {'global', 'tokens'}
    assert model.embed_dim == MICRO['embed_dim'] and model.width == 64
    assert out['tokens'].shape == (3, 1 + n, model.embed_dim)
    assert out['global'].shape == (3, model.embed_dim)
    assert model.grid_size == (img_size[0] // patch, img_size[1] // patch)
    torch.testing.assert_close(out['global'], out['tokens'][:, 0])


def test_vision_rejects_wrong_input_size_and_patch():
    model = vision(img_size=(64, 32))
    with pytest.raises(ValueError, match='img_size'):
        model(torch.randn(1, 3, 32, 64))
    with pytest.raises(ValueError, match='divisible'):
        vision(img_size=(60, 32))


def test_vision_attention_is_the_cls_row_of_the_last_block():
    torch.manual_seed(0)
    model = vision(img_size=(64, 32), output_attn=True)
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        out = model(x)
        plain = vision(img_size=(64, 32))
        plain.load_state_dict(model.state_dict())
        ref_global = plain(x)['global']
    attn = out['attn']
    assert attn.shape == (2, 1 + 8 * 4)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2))
    assert (attn >= 0).all()
    # running the last block by hand must not change the features
    torch.testing.assert_close(out['global'], ref_global)

    # independent computation: softmax(q k^T / sqrt(d)) of the CLS query,
    # from the input of the last block, averaged over heads
    visual = model.visual
    layers = len(visual.transformer.resblocks)
    with torch.no_grad():
        inter = visual.forward_intermediates(
            x,
            indices=[layers - 2],
            output_fmt='NLC',
            output_extra_tokens=True,
            intermediates_only=True)
        h = torch.cat([
            inter['image_intermediates_prefix'][0],
            inter['image_intermediates'][0]
        ],
                      dim=1)
        block = visual.transformer.resblocks[-1]
        y = block.ln_1(h)
        q, k, _ = F.linear(y, block.attn.in_proj_weight,
                           block.attn.in_proj_bias).chunk(
                               3, dim=-1)
        heads = block.attn.num_heads
        d = q.shape[-1] // heads
        q = q.view(2, -1, heads, d).transpose(1, 2)
        k = k.view(2, -1, heads, d).transpose(1, 2)
        probs = (q @ k.transpose(-1, -2) / math.sqrt(d)).softmax(-1)
    torch.testing.assert_close(attn, probs.mean(1)[:, 0])


def test_vision_matches_open_clip_forward(tmp_path):
    ref = reference_clip(image_size=(64, 32))
    torch.save(ref.state_dict(), tmp_path / 'ref.pt')
    model = vision(
        pretrained=str(tmp_path / 'ref.pt'),
        img_size=(64, 32),
        quick_gelu=False)
    x = torch.randn(3, 3, 64, 32)
    ref.visual.output_tokens = True
    with torch.no_grad():
        pooled, patches = ref.visual(x)
        out = model(x)
    torch.testing.assert_close(out['global'], pooled)
    # open_clip returns unprojected patch tokens; ours are projected
    torch.testing.assert_close(out['tokens'][:, 1:], patches @ ref.visual.proj)


@pytest.mark.parametrize('custom_text', [False, True])
def test_text_matches_open_clip_encode_text(tmp_path, texts, custom_text):
    ref = reference_clip()
    path = str(tmp_path / 'ref.pt')
    torch.save(ref.state_dict(), path)
    arch = dict(copy.deepcopy(MICRO), custom_text=custom_text)
    model = text_tower(arch=arch, pretrained=path, output_attn=True)
    with torch.no_grad():
        out = model(texts)
        expected = ref.encode_text(texts)
    torch.testing.assert_close(out['global'], expected)
    if custom_text:  # the CustomTextCLIP layout, checked against itself
        other = build_open_clip(arch, pretrained=path).eval()
        assert hasattr(other, 'text')
        with torch.no_grad():
            torch.testing.assert_close(out['global'], other.encode_text(texts))

    b, length = texts.shape
    assert out['tokens'].shape == (b, length, MICRO['embed_dim'])
    eot = texts.argmax(-1)
    torch.testing.assert_close(out['global'], out['tokens'][torch.arange(b),
                                                            eot])
    real = texts != 0
    assert out['mask'].dtype == torch.bool
    assert torch.equal(out['mask'], real)
    assert out['mask'][:, 0].all()
    attn = out['attn']
    assert attn.shape == (b, length)
    torch.testing.assert_close(attn.sum(-1), torch.ones(b))
    after_eot = torch.arange(length)[None] > eot[:, None]
    assert (attn[after_eot] == 0).all() and (attn[~after_eot] > 0).all()


def test_text_causal_mask_is_applied(texts):
    model = text_tower(with_proj=False)
    changed = texts.clone()
    pos = 4
    changed[:, pos] = 320  # another word
    with torch.no_grad():
        a = model(texts)['tokens']
        b = model(changed)['tokens']
    torch.testing.assert_close(a[:, :pos], b[:, :pos], rtol=0, atol=0)
    assert not torch.allclose(a[:, pos:pos + 3], b[:, pos:pos + 3])


def test_text_shorter_and_longer_inputs(texts):
    model = text_tower()
    short = texts[:, :20]
    with torch.no_grad():
        full = model(texts)['tokens']
        part = model(short)['tokens']
    # the first 20 positional embeddings, and (causal) the same features
    torch.testing.assert_close(part, full[:, :20])
    too_long = torch.cat([texts, torch.zeros(2, 1, dtype=texts.dtype)], 1)
    with pytest.raises(ValueError, match='77 positions'):
        model(too_long)


def test_text_context_length_truncates_trained_positions(tmp_path, texts):
    ref = reference_clip()
    path = str(tmp_path / 'ref.pt')
    torch.save(ref.state_dict(), path)
    model = text_tower(pretrained=path, context_length=32)
    assert model.context_length == 32
    torch.testing.assert_close(model.positional_embedding.data,
                               ref.positional_embedding.data[:32])
    assert texts.argmax(-1).max() < 32
    with torch.no_grad():
        # causal: the EOT feature ignores the padding cut off after it
        torch.testing.assert_close(
            model(texts[:, :32])['global'], ref.encode_text(texts))
    with pytest.raises(ValueError, match='32 positions'):
        model(texts)
    with pytest.raises(ValueError, match='exceeds'):
        text_tower(pretrained=path, context_length=80)


# ---------------------------------------------------------- with_proj, frozen


def test_with_proj_false_removes_projections(texts):
    model = vision(with_proj=False, img_size=(64, 32))
    names = dict(model.named_parameters())
    assert 'visual.proj' not in names and model.visual.proj is None
    out = model(torch.randn(1, 3, 64, 32))
    assert model.embed_dim == model.width == 64
    assert out['tokens'].shape == (1, 33, 64)

    text = text_tower(with_proj=False)
    assert 'text_projection' not in dict(text.named_parameters())
    out = text(texts)
    assert text.embed_dim == text.width == 32
    assert out['global'].shape == (2, 32)


@pytest.mark.parametrize('build', [vision, text_tower])
def test_frozen_tower_has_no_grads_and_stays_in_eval(build, texts):
    model = build(frozen=True)
    assert all(not p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training
    assert not any(m.training for m in model.modules())
    inputs = texts if build is text_tower else torch.randn(1, 3, 32, 32)
    assert not model(inputs)['global'].requires_grad

    trainable = build()
    trainable.train()
    assert trainable.training
    assert all(p.requires_grad for p in trainable.parameters())


# ------------------------------------------------------------ weight files


@pytest.mark.parametrize('fmt', ['nested_pt', 'safetensors'])
@pytest.mark.parametrize('interpolation', ['bicubic', 'bilinear'])
def test_load_state_dict_files(tmp_path, fmt, interpolation):
    ref = reference_clip(image_size=32)  # 4x4 grid
    saved = saved_state_dict(ref)
    if fmt == 'nested_pt':  # as saved from a DDP-wrapped training run
        path = tmp_path / 'open_clip_pytorch_model.pt'
        torch.save(
            {'state_dict': {
                'module.' + k: v
                for k, v in saved.items()
            }}, path)
    else:
        path = tmp_path / 'open_clip_model.safetensors'
        save_file(saved, str(path))

    model = vision(
        pretrained=str(path), img_size=(64, 16), interpolation=interpolation)
    assert_weights_equal(
        model.visual.state_dict(),
        saved,
        'visual.',
        skip={'positional_embedding'})
    pos = model.visual.positional_embedding.data
    # 4x4 -> 8x2: taller and narrower, so antialiasing matters
    assert pos.shape == (1 + 8 * 2, 64)
    old = saved['visual.positional_embedding']
    torch.testing.assert_close(pos[0], old[0], rtol=0, atol=0)
    # The references: bicubic with antialiasing is open_clip's
    # resize_pos_embed (which cannot be called here: it compares token
    # counts and would skip 4x4 -> 8x2), plain bilinear is CLIP-ReID's.
    grid = old[1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid,
        size=(8, 2),
        mode=interpolation,
        antialias=interpolation == 'bicubic')
    expected = torch.cat([old[:1], grid.permute(0, 2, 3, 1).reshape(16, -1)])
    torch.testing.assert_close(pos, expected)

    text = text_tower(pretrained=str(path))
    assert_weights_equal(text.state_dict(), saved)


def _openai_archive(model, path):
    """Emulate OpenAI's ViT-B-16.pt: a TorchScript archive, fp16 weights
    and the hyper-parameter buffers of OpenAI's CLIP."""
    model = copy.deepcopy(model).half()
    for name, value in (('input_resolution', 32), ('context_length', 77),
                        ('vocab_size', 49408)):
        if hasattr(model, name):  # open_clip keeps some as plain ints
            delattr(model, name)
        model.register_buffer(name, torch.tensor(value))
    with warnings.catch_warnings():  # torch.jit is deprecated
        warnings.simplefilter('ignore', FutureWarning)
        scripted = torch.jit.script(model)
        torch.jit.save(scripted, str(path))


def test_load_openai_torchscript_archive(tmp_path, texts):
    ref = reference_clip(image_size=32, quick_gelu=True)
    path = tmp_path / 'ViT-B-16.pt'
    _openai_archive(ref, path)
    saved = {k: v.half() for k, v in saved_state_dict(ref).items()}

    model = vision(pretrained=str(path), img_size=(64, 32))
    assert_weights_equal(
        model.visual.state_dict(),
        saved,
        'visual.',
        skip={'positional_embedding'})
    acts = [b.mlp.gelu for b in model.visual.transformer.resblocks]
    assert all(isinstance(a, QuickGELU) for a in acts)
    assert model.visual.positional_embedding.shape == (1 + 8 * 4, 64)
    expected = {
        'visual.positional_embedding':
        saved['visual.positional_embedding'].float()
    }
    open_clip.model.resize_pos_embed(expected, model)
    torch.testing.assert_close(model.visual.positional_embedding.data,
                               expected['visual.positional_embedding'])

    text = text_tower(pretrained=str(path))
    assert_weights_equal(text.state_dict(), saved)
    assert all(
        isinstance(b.mlp.gelu, QuickGELU) for b in text.transformer.resblocks)
    ref16 = reference_clip(image_size=32, quick_gelu=True).half().float()
    ref16.load_state_dict({k: v.float() for k, v in saved.items()})
    with torch.no_grad():
        torch.testing.assert_close(
            text(texts)['global'], ref16.encode_text(texts))

    with pytest.raises(ValueError, match='QuickGELU'):
        vision(pretrained=str(path), quick_gelu=False)


def test_weights_that_do_not_fit_are_reported(tmp_path):
    saved = saved_state_dict(reference_clip())
    saved.pop('visual.ln_post.weight')
    saved['visual.extra_head.weight'] = torch.zeros(3)
    path = tmp_path / 'broken.pt'
    torch.save(saved, path)
    with pytest.raises(RuntimeError) as err:
        vision(pretrained=str(path))
    msg = str(err.value)
    assert 'missing keys (1): visual.ln_post.weight' in msg
    assert 'unexpected keys (1): visual.extra_head.weight' in msg

    # right keys, wrong arch
    torch.save(saved_state_dict(reference_clip()), path)
    with pytest.raises(RuntimeError, match='shape mismatches'):
        vision(arch='clip-tiny', pretrained=str(path))

    # an 8x4 grid (not square) cannot be mapped onto another grid
    torch.save(saved_state_dict(reference_clip(image_size=(64, 32))), path)
    with pytest.raises(RuntimeError, match='32 patch positions'):
        vision(pretrained=str(path), img_size=(32, 32))


def test_each_tower_loads_only_its_own_keys(tmp_path, texts):
    # weights trained at 64x32 (an 8x4 grid, which cannot be resized to
    # the arch's default grid): the whole model refuses them, the text
    # tower takes its keys with the plain arch name and the same outputs
    clip = reference_clip(image_size=(64, 32))
    path = tmp_path / 'clip-64x32.pt'
    torch.save(saved_state_dict(clip), path)
    with pytest.raises(RuntimeError, match='32 patch positions'):
        build_open_clip('clip-micro', str(path))
    tower = text_tower(pretrained=str(path))
    with torch.no_grad():
        want = clip.encode_text(texts)
        got = tower(texts)
    torch.testing.assert_close(got['global'], want, rtol=1e-5, atol=1e-5)
    # text keys of another context length do not matter to the image tower
    saved = saved_state_dict(reference_clip())
    saved['positional_embedding'] = torch.zeros(5, 3)
    torch.save(saved, path)
    vis = vision(pretrained=str(path))
    assert_weights_equal(vis.visual.state_dict(), saved, 'visual.')
    with pytest.raises(ValueError, match='tower must be one of'):
        build_open_clip('clip-micro', tower='audio')


def test_missing_file_names_the_path(tmp_path):
    missing = str(tmp_path / 'nowhere' / 'ViT-B-16.pt')
    with pytest.raises(FileNotFoundError, match='nowhere/ViT-B-16.pt'):
        vision(pretrained=missing)
    with pytest.raises(FileNotFoundError, match='weights.safetensors'):
        text_tower(pretrained='weights.safetensors')


def test_tag_without_network_fails_fast_offline(monkeypatch,
                                                refused_network):
    """Offline, a tag fails before any network access: no probe, no name
    lookup, no download (what made it slow)."""

    def forbidden(*args, **kwargs):
        raise AssertionError('download attempted offline')

    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setattr(open_clip.pretrained, 'download_pretrained', forbidden)
    with pytest.raises(RuntimeError) as err:
        vision(arch='ViT-B-16', pretrained='openai', img_size=(256, 128))
    assert refused_network == []
    msg = str(err.value)
    assert 'HF_HUB_OFFLINE' in msg
    assert "pretrained='checkpoints/clip/ViT-B-16.pt'" in msg


def test_tag_with_unreachable_network_does_not_download(monkeypatch):
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    monkeypatch.delenv('TRANSFORMERS_OFFLINE', raising=False)

    def no_network(*args, **kwargs):
        raise OSError('network is unreachable')

    def forbidden(*args, **kwargs):
        raise AssertionError('download attempted without network')

    monkeypatch.setattr(socket, 'create_connection', no_network)
    monkeypatch.setattr(open_clip.pretrained, 'download_pretrained', forbidden)
    with pytest.raises(RuntimeError, match='no network') as err:
        text_tower(arch='ViT-B-16', pretrained='laion2b_s34b_b88k')
    assert 'checkpoints/clip/ViT-B-16_laion2b_s34b_b88k' in str(err.value)


def test_unknown_tags_are_rejected():
    with pytest.raises(ValueError, match='tags'):
        vision(arch='ViT-B-16', pretrained='no_such_tag')
    with pytest.raises(ValueError, match='open_clip model name'):
        vision(arch='clip-micro', pretrained='openai')


def test_tag_is_downloaded_when_the_network_is_reachable(
        tmp_path, monkeypatch):
    # An open_clip arch from a local-dir config, a fake tag trained with
    # QuickGELU, and a "download" that returns a local file: checks the
    # plumbing from tag to weights without a network.
    (tmp_path / 'open_clip_config.json').write_text(
        json.dumps({'model_cfg': MICRO}))
    ref = reference_clip(quick_gelu=True)
    weights = tmp_path / 'open_clip_pytorch_model.bin'
    torch.save(ref.state_dict(), weights)
    tag_cfg = {'hf_hub': 'someone/micro-clip/', 'quick_gelu': True}
    arch = f'local-dir:{tmp_path}'

    class Connection:

        def close(self):
            pass

    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    monkeypatch.delenv('TRANSFORMERS_OFFLINE', raising=False)
    monkeypatch.setattr(socket, 'create_connection',
                        lambda *args, **kwargs: Connection())
    monkeypatch.setattr(
        open_clip.pretrained, 'get_pretrained_cfg', lambda name, tag: tag_cfg
        if (name, tag) == (arch, 'micro_tag') else {})
    monkeypatch.setattr(open_clip.pretrained, 'download_pretrained',
                        lambda cfg, **kwargs: str(weights))
    model = vision(arch=arch, pretrained='micro_tag')
    assert all(
        isinstance(b.mlp.gelu, QuickGELU)
        for b in model.visual.transformer.resblocks)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x)['global'], ref.visual(x))


def test_custom_text_layout_loads_into_inlined_clip(tmp_path, texts):
    torch.manual_seed(0)
    custom = open_clip.CustomTextCLIP(**MICRO).eval()
    assert 'text.positional_embedding' in custom.state_dict()
    path = tmp_path / 'custom_text.pt'
    torch.save(custom.state_dict(), path)
    model = text_tower(pretrained=str(path))
    with torch.no_grad():
        torch.testing.assert_close(
            model(texts)['global'], custom.encode_text(texts))
