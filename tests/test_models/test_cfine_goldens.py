"""CFine against golden outputs of the official CFine code.

CFine: Yan et al., "CLIP-Driven Fine-grained Text-Image Person
Re-identification", IEEE TIP 2023 (arXiv 2210.10276); official code
https://github.com/shuanglinyan/CFine at commit ``ab330e3`` (MIT).
``tests/data/fidelity/cfine_tiny.npz`` holds what that code computes in
one ``train()`` step and in eval mode on a small random CFine-CLIP model
(a 2-block, 64-wide CLIP ViT on 64x64 images, a 2-layer, 64-wide BERT,
the MGF block at 64 wide), written by
``tools/fidelity/make_cfine_goldens.py`` (provenance in
``tests/data/fidelity/PROVENANCE.md``). The official code is not needed
here.

Our CFine is built from the paper config
(``configs/cfine/cfine_vit-b16-bert_cuhk-pedes.py``) with only the sizes
of the golden's model changed (arch, widths, heads, vocabulary, classes)
and BERT's dropout off, as in the golden; the official weights go through
the project's converter (``tools/model_converters/cfine_to_mmreid.py``)
and load strictly. The two devices of the golden are applied here too:
the golden's ``offset`` is added to S = S_c + S_f before the triplet loss
(so that some anchors have violating negatives), and the official token
ranking ran with a stable ``topk``, which is what the project's stable sort
does with the tied scores of [CLS] and PAD positions.

Tolerances, relative to the largest reference magnitude: 1e-5; 1e-4
after train-mode BN over the batch of 8 (levels and the losses on them)
and for gradients: BN divides by the batch deviation, which amplifies the
~1e-7 differences of the two ViT / BERT implementations (sequence-first
vs batch-first attention, fused vs split projections), and gradients
pass through those BN layers twice. Selected positions are compared
exactly.
"""
import copy
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmpretrain.structures import DataSample

from mmreid_clip.models.retrievers.cfine import CFine
from mmreid_clip.registry import MODELS, TRANSFORMS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402

GOLDEN = osp.join(ROOT, 'tests', 'data', 'fidelity', 'cfine_tiny.npz')
CONFIG = osp.join(ROOT, 'configs', 'cfine', 'cfine_vit-b16-bert_cuhk-pedes.py')
RTOL = 1e-5
RTOL_BN = 1e-4  # after train-mode BN over 8 samples, and for gradients

converter = load_tool('tools/model_converters/cfine_to_mmreid.py')


def rel_err(ours, official) -> float:
    ours = torch.as_tensor(ours).detach().double()
    official = torch.as_tensor(official).double()
    assert ours.shape == official.shape, (ours.shape, official.shape)
    return ((ours - official).abs().max() /
            official.abs().max().clamp_min(1e-12)).item()


def check(what, ours, official, rtol=RTOL):
    err = rel_err(ours, official)
    assert err <= rtol, f'{what}: relative error {err:.2e} > {rtol:.0e}'


@pytest.fixture(scope='module')
def golden():
    return dict(np.load(GOLDEN))


@pytest.fixture(scope='module')
def meta(golden):
    return json.loads(str(golden['meta']))


@pytest.fixture(scope='module')
def vocab_file(golden, tmp_path_factory):
    path = tmp_path_factory.mktemp('cfine') / 'vocab.txt'
    path.write_text('\n'.join(golden['vocab'].tolist()) + '\n')
    return str(path)


@pytest.fixture(scope='module')
def conversion(golden, meta):
    """The official weights through the project's checkpoint converter."""
    ckpt = {
        'network': {k[3:]: torch.from_numpy(v) for k, v in golden.items()
                    if k.startswith('sd.')},
        'W': torch.from_numpy(golden['W']),
    }
    return converter.convert(
        ckpt, 'cfine_tiny.npz',
        bert_heads=meta['bert']['num_attention_heads'],
        mgf_heads=meta['mgf_heads'])


def paper_config(meta, conversion, vocab_file):
    """The paper config at the golden's size."""
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(conversion.options)
    img = meta['image']
    cfg.model.image_encoder.update(
        pretrained=None, quick_gelu=True,  # OpenAI's CLIP: QuickGELU
        arch=dict(embed_dim=img['width'],
                  vision_cfg=dict(image_size=img['size'],
                                  layers=img['layers'], width=img['width'],
                                  head_width=img['width'] // img['heads'],
                                  patch_size=img['patch']),
                  text_cfg=dict(context_length=2, vocab_size=2, width=64,
                                heads=1, layers=1)))
    bert = conversion.no_archive_options['model.text_encoder.config']
    # dropout is random: off on both sides (the golden's BERT has 0)
    cfg.model.text_encoder.update(
        pretrained=None, vocab_file=vocab_file,
        config=dict(bert, hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0))
    return cfg


def build(meta, conversion, vocab_file):
    cfg = paper_config(meta, conversion, vocab_file)
    model = MODELS.build(cfg.model)
    model.load_state_dict(conversion.state_dict, strict=True)
    return model


def official_param(conversion, name):
    """Project name of an official parameter name."""
    if name == 'W':
        return next(k for k in conversion.state_dict
                    if k.endswith('.cmpc_W'))
    return converter.rename(name)


@pytest.fixture(scope='module')
def step(golden, meta, conversion, vocab_file):
    """One training step of our CFine on the golden batch, recorded."""
    model = build(meta, conversion, vocab_file).train()
    rec = {}
    offset = torch.from_numpy(golden['offset'])
    enc_i, enc_t = model.encode_image, model.encode_text

    def encode_image(images):
        rec['img'] = enc_i(images)
        return rec['img']

    def encode_text(texts):
        rec['txt'] = enc_t(texts)
        return rec['txt']

    def similarity(img, txt):  # the golden's violation device
        rec['S'] = CFine.similarity(model, img, txt) + offset
        return rec['S']

    model.encode_image, model.encode_text = encode_image, encode_text
    model.similarity = similarity
    hooks = [
        model.image_encoder.register_forward_hook(
            lambda m, i, o: rec.update(enc_img=o)),
        model.text_encoder.register_forward_hook(
            lambda m, i, o: rec.update(enc_txt=o)),
        model.cfr.register_forward_hook(lambda m, i, o: rec.update(S_c=o)),
        model.fcd.register_forward_hook(lambda m, i, o: rec.update(S_f=o)),
    ]
    images = torch.from_numpy(golden['images']).float().requires_grad_(True)
    texts = torch.from_numpy(golden['tokens']).long()
    samples = [DataSample().set_gt_label(int(p)) for p in golden['pids']]
    losses = model.loss(dict(images=images, texts=texts), samples)
    total, _ = model.parse_losses(losses)
    total.backward()
    for h in hooks:
        h.remove()
    params = dict(model.named_parameters())
    return dict(rec, model=model, losses=losses, total=total.detach(),
                images_grad=images.grad, params=params)


# ---------------------------------------------------------------- options
def test_official_options_are_the_paper_config(meta):
    """The official defaults the golden ran with (train_config.py) are the
    paper config's values."""
    opts = meta['options']
    model = Config.fromfile(CONFIG).model
    losses = {c['type']: c for c in model.losses + model.sim_losses}
    assert model.neck.img_ratio == opts['img_k_ratio']
    assert model.neck.text_ratio == opts['text_k_ratio']
    assert model.cfr.temperature == opts['scale_cs']
    assert model.fcd.temperature == opts['scale_cd']
    assert (model.fcd.k_w, model.fcd.k_p) == (opts['pos_kw'], opts['pos_kp'])
    assert losses['TripletRankingLoss']['margin'] == opts['margin']
    assert losses['TripletRankingLoss'].get(
        'loss_weight', 10.0) == meta['triplet_weight']
    assert losses['DiversityLoss'].get(
        'loss_weight', 0.2) == opts['lambda_diversity']
    assert losses['CMPMLoss'].get('eps', 1e-8) == opts['epsilon']
    assert opts['CMPM'] and opts['CMPC']


# ---------------------------------------------------------- training step
def test_encoders(golden, step):
    """Global tokens and the last layer's [CLS] attention (head mean) of
    the CLIP ViT and of BERT."""
    check('image global', step['enc_img']['global'],
          golden['train.img_global'])
    check('image [CLS] attention', step['enc_img']['attn'],
          golden['train.img_attn'])
    check('text global', step['enc_txt']['global'],
          golden['train.txt_global'])
    check('text [CLS] attention', step['enc_txt']['attn'],
          golden['train.txt_attn'])


def test_token_selection(golden, meta, step):
    """Positions of G1 then G2 for every image and caption (ties at score
    0, i.e. [CLS] and PAD of the short captions, in position order)."""
    for key, k in (('img', meta['k_v']), ('txt', meta['k_t'])):
        sel = step[key]['selection']
        assert sel.k == k
        official = torch.from_numpy(golden[f'train.{key}_idx'])
        assert torch.equal(sel.indices, official), key


def test_mgf_outputs(golden, step):
    """The MGF block's outputs e_1, e_2 and the three BN-necked levels."""
    for key in ('img', 'txt'):
        check(f'{key} e_1, e_2', step[key]['enhanced'],
              golden[f'train.{key}_enhanced'])
        check(f'{key} levels (train-mode BN)', step[key]['levels'],
              golden[f'train.{key}_levels'], RTOL_BN)


def test_similarities(golden, step):
    check('S_c (CFR)', step['S_c'], golden['train.S_c'])
    check('S_f (FCD)', step['S_f'], golden['train.S_f'])


def test_losses(golden, step):
    """Every term as the official train() weighs it, end to end."""
    losses, g = step['losses'], golden
    model = step['model']
    by_name = {m.loss_name: m for m in model.losses}
    img, txt = step['img']['levels'], step['txt']['levels']
    pids = torch.from_numpy(g['pids']).long()
    for name, key in (('loss_cmpm', 'cmpm'), ('loss_cmpc', 'cmpc')):
        per_level = by_name[name].per_level(img, txt, pids)
        for level in range(3):
            check(f'{key} level {level}', per_level[level],
                  g[f'train.loss.{key}_level{level}'], RTOL_BN)
        check(key, losses[name], g[f'train.loss.{key}'], RTOL_BN)
    check('diversity', losses['loss_div'], g['train.loss.div'], RTOL_BN)
    check('triplet', losses['loss_triplet'], g['train.loss.triplet'],
          RTOL_BN)
    check('total', step['total'], g['train.loss.total'], RTOL_BN)


def test_losses_on_the_official_inputs(golden, step):
    """The loss modules alone, fed the official levels and S: values and
    gradients (d term / d levels, d triplet / d S)."""
    g = golden
    model = step['model']
    by_name = {m.loss_name: m
               for m in (*model.losses, *model.sim_losses)}
    img = torch.from_numpy(g['train.img_levels']).requires_grad_(True)
    txt = torch.from_numpy(g['train.txt_levels']).requires_grad_(True)
    pids = torch.from_numpy(g['pids']).long()
    for name, key in (('loss_cmpm', 'cmpm'), ('loss_cmpc', 'cmpc'),
                      ('loss_div', 'div')):
        loss = by_name[name](img, txt, pids)
        check(key, loss, g[f'train.loss.{key}'])
        d_img, d_txt = torch.autograd.grad(loss, [img, txt])
        check(f'd {key} / d image levels', d_img,
              g[f'train.dlevels.{key}.img'])
        check(f'd {key} / d text levels', d_txt,
              g[f'train.dlevels.{key}.txt'])
    sim = torch.from_numpy(g['train.S_c'] + g['train.S_f'] +
                           g['offset']).requires_grad_(True)
    loss = by_name['loss_triplet'](sim, pids)
    check('triplet', loss, g['train.loss.triplet'])
    check('d triplet / d S', torch.autograd.grad(loss, sim)[0],
          g['train.dS.triplet'])


def test_gradients(golden, conversion, step):
    """d total / d input images and d total / d a few tensors of every
    module (image tower, BERT, MGF block, BN necks, CMPC's W)."""
    check('d total / d images', step['images_grad'],
          golden['train.grad.images'], RTOL_BN)
    names = [k[len('train.grad.'):] for k in golden
             if k.startswith('train.grad.') and k != 'train.grad.images']
    assert len(names) == 20
    for name in names:
        param = step['params'][official_param(conversion, name)]
        check(f'd total / d {name}', param.grad,
              golden[f'train.grad.{name}'], RTOL_BN)


def test_bn_running_statistics(golden, step):
    """One train forward updates the BN necks three times per modality
    (one call per level)."""
    neck = step['model'].neck
    for bn, ours in (('bottleneck_image', neck.bn_img),
                     ('bottleneck_text', neck.bn_txt)):
        assert int(ours.num_batches_tracked) == int(
            golden[f'train.{bn}.num_batches_tracked'])
        check(f'{bn} running mean', ours.running_mean,
              golden[f'train.{bn}.running_mean'])
        check(f'{bn} running var', ours.running_var,
              golden[f'train.{bn}.running_var'])


# -------------------------------------------------------------- inference
def test_inference(golden, meta, conversion, vocab_file):
    """Eval mode with the BN running statistics after the official step:
    selection, levels, the retrieval features (L2norm of the concatenated
    levels) and the score matrix of the official compute_topk."""
    model = build(meta, conversion, vocab_file)
    with torch.no_grad():
        for bn, ours in (('bottleneck_image', model.neck.bn_img),
                         ('bottleneck_text', model.neck.bn_txt)):
            for stat in ('running_mean', 'running_var'):
                getattr(ours, stat).copy_(
                    torch.from_numpy(golden[f'train.{bn}.{stat}']))
    model.eval()
    images = torch.from_numpy(golden['images']).float()
    texts = torch.from_numpy(golden['tokens']).long()
    with torch.no_grad():
        img = model.encode_image(images)
        txt = model.encode_text(texts)
        feats = model.extract_feat(dict(images=images, texts=texts))
    for key, out in (('img', img), ('txt', txt)):
        assert torch.equal(out['selection'].indices,
                           torch.from_numpy(golden[f'eval.{key}_idx'])), key
        check(f'{key} levels (eval)', out['levels'],
              golden[f'eval.{key}_levels'])
    check('image feature', feats['img_feats'], golden['eval.img_feat'])
    check('text feature', feats['text_feats'], golden['eval.txt_feat'])
    check('scores', feats['img_feats'] @ feats['text_feats'].t(),
          golden['eval.scores'])


def test_caption_tokenisation(golden, vocab_file):
    """The paper config's text pipeline gives the official ids, also for an
    over-long caption (``truncation='drop_eot'``: the first 100 ids of
    [CLS] pieces [SEP], so [SEP] is cut off as in the official code)."""
    cfg = Config.fromfile(CONFIG)
    pipeline = copy.deepcopy(cfg.train_dataloader.dataset.text_pipeline)
    for t in pipeline:
        t['tokenizer']['vocab_file'] = vocab_file
    tokenize = Compose([TRANSFORMS.build(t) for t in pipeline])
    sep = golden['vocab'].tolist().index('[SEP]')
    truncated = 0
    for caption, official in zip(golden['captions'], golden['tokens']):
        ours = np.asarray(tokenize(dict(caption=str(caption)))['text'])
        assert ours.shape == official.shape
        truncated += int(official[-1] != 0 and official[-1] != sep)
        assert (ours == official).all(), caption
    assert truncated == 1
