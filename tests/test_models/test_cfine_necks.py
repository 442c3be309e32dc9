"""CFine necks: MGF (docs/methods/cfine.md §4), CFR (§5) and FCD
(§6)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmreid_clip.models.necks import CFR, FCD, MGF, MGFBlock
from mmreid_clip.models.utils import select_tokens
from mmreid_clip.registry import MODELS

W, HEADS = 32, 4


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _attn(b, n, seed):
    return _rand(b, n, seed=seed).softmax(-1)


def _mgf(**kwargs):
    torch.manual_seed(0)
    cfg = dict(type='MGF', embed_dims=W, num_heads=HEADS)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _text_batch(b=4, n=100, lengths=(60, 45, 70, 50), seed=1):
    tokens = _rand(b, n, W, seed=seed)
    mask = torch.arange(n).unsqueeze(0) < torch.tensor(lengths).view(-1, 1)
    # BERT-like: PAD keys get ~0 attention (exact zero after underflow)
    attn = _attn(b, n, seed + 1) * mask
    return tokens, attn, mask


# ---------------------------------------------------------------- MGF block
def _mha_reference(mha, q, k, v, key_padding_mask=None):
    """Multi-head attention written out from the module's weights."""
    d, h = q.shape[-1], mha.num_heads
    wq, wk, wv = mha.in_proj_weight.split(d)
    bq, bk, bv = mha.in_proj_bias.split(d)

    def heads(x):
        return x.view(x.shape[0], x.shape[1], h, d // h).transpose(1, 2)

    qh, kh, vh = heads(q @ wq.T + bq), heads(k @ wk.T + bk), heads(v @ wv.T +
                                                                   bv)
    logits = qh @ kh.transpose(-1, -2) / math.sqrt(d // h)
    if key_padding_mask is not None:
        logits = logits.masked_fill(key_padding_mask[:, None, None, :],
                                    float('-inf'))
    out = (logits.softmax(-1) @ vh).transpose(1, 2).reshape(q.shape)
    return mha.out_proj(out)


def _block_reference(block, x, y, y_pad=None, x_pad=None):
    """cfine.md §4 block, line by line: no LN on the cross-attention K/V."""

    def ln(mod, t):
        return F.layer_norm(t, (W, ), mod.weight, mod.bias, mod.eps)

    h = ln(block.ln_0, x)
    x = x + _mha_reference(block.self_attn, h, h, h, x_pad)
    x = x + _mha_reference(block.cross_attn, ln(block.ln_1, x), y, y, y_pad)
    fc1, fc2 = block.mlp[0], block.mlp[2]
    z = fc1(ln(block.ln_2, x))
    return x + fc2(z * torch.sigmoid(1.702 * z))  # QuickGELU


def test_block_matches_the_spec_equations():
    torch.manual_seed(0)
    block = MGFBlock(W, HEADS)
    with torch.no_grad():  # visible LN affine, so a misplaced LN shows
        for name, p in block.named_parameters():
            if name.startswith('ln_'):
                p.normal_(1 if name.endswith('weight') else 0, 0.3)
    x, y = _rand(3, 21, W, seed=1), _rand(3, 100, W, seed=2) * 3
    pad = torch.arange(100).unsqueeze(0) >= torch.tensor([[30], [99], [60]])
    x_pad = torch.zeros(3, 21, dtype=torch.bool)
    x_pad[0, 12:] = True  # invalid selection slots (exclude_padding mode)
    for mode in ('train', 'eval'):
        getattr(block, mode)()
        torch.testing.assert_close(
            block(x, y, context_padding_mask=pad),
            _block_reference(block, x, y, pad),
            atol=1e-5,
            rtol=1e-5)
    with torch.no_grad():  # eval + no_grad: PyTorch's MHA fast path
        torch.testing.assert_close(
            block(x, y, pad, x_pad),
            _block_reference(block, x, y, pad, x_pad),
            atol=1e-5,
            rtol=1e-5)


def test_block_is_residual():
    block = MGFBlock(W, HEADS)
    with torch.no_grad():
        for mod in (block.self_attn.out_proj, block.cross_attn.out_proj,
                    block.mlp[2]):
            mod.weight.zero_()
            mod.bias.zero_()
    x = _rand(2, 5, W)
    torch.testing.assert_close(block(x, _rand(2, 9, W, seed=1)), x)


def test_block_size_and_inference_feature_at_cfine_width():
    mgf = MGF(embed_dims=768, num_heads=12)
    n_block = sum(p.numel() for p in mgf.mgf_block.parameters())
    assert n_block == 9_451_776  # the official MGF block, ~9.45M
    mgf.eval()
    with torch.no_grad():
        out = mgf.forward_image(_rand(2, 197, 768), _attn(2, 197, 1))
    feat = MGF.inference_feature(out['levels'])
    assert feat.shape == (2, 2304)
    torch.testing.assert_close(feat.norm(dim=1), torch.ones(2))


# ---------------------------------------------------------------- MGF neck
def test_mgf_output_shapes_and_contents():
    mgf = _mgf()
    img, img_attn = _rand(4, 197, W), _attn(4, 197, 3)
    txt, txt_attn, mask = _text_batch()
    out = mgf(img, img_attn, txt, txt_attn, mask)
    for key, n, k in (('img', 197, 19), ('text', 100, 20)):
        o = out[key]
        assert o['levels'].shape == (4, 3, W)
        assert o['enhanced'].shape == (4, 2, W)
        assert o['selection'].k == k
        assert o['selection'].union.shape == (4, 2 * k, W)
    torch.testing.assert_close(out['img']['global'], img[:, 0])
    torch.testing.assert_close(out['text']['global'], txt[:, 0])
    assert not (out['img']['selection'].union_indices == 0).any()
    assert mgf.num_levels == 3


def test_mgf_wiring_matches_a_per_sample_loop():
    mgf = _mgf().eval()
    img, img_attn = _rand(3, 197, W), _attn(3, 197, 3)
    txt, txt_attn, mask = _text_batch(3, lengths=(60, 45, 70))
    with torch.no_grad():
        out = mgf(img, img_attn, txt, txt_attn, mask)
        bn_scale = 1 / math.sqrt(1 + mgf.bn_img.eps)  # fresh running stats
        for b in range(3):
            for tokens, attn, pad, key, k in ((img, img_attn, None, 'img', 19),
                                              (txt, txt_attn, ~mask[b:b + 1],
                                               'text', 20)):
                s = attn[b].clone()
                s[0] = 0
                order = torch.argsort(s, descending=True, stable=True)
                for j in range(2):
                    idx = order[j * k:(j + 1) * k]
                    query = torch.cat([tokens[b, :1], tokens[b, idx]])[None]
                    ref = mgf.mgf_block(query, tokens[b:b + 1], pad)[0, 0]
                    torch.testing.assert_close(
                        out[key]['enhanced'][b, j], ref, atol=1e-5, rtol=1e-5)
                    torch.testing.assert_close(
                        out[key]['levels'][b, j + 1],
                        ref * bn_scale,
                        atol=1e-5,
                        rtol=1e-5)
                torch.testing.assert_close(out[key]['levels'][b, 0],
                                           tokens[b, 0] * bn_scale)


def test_mgf_block_is_one_instance_projecting_each_context_once():
    mgf = _mgf()
    blocks = [m for m in mgf.modules() if isinstance(m, MGFBlock)]
    assert len(blocks) == 1
    calls = []
    # 2 groups x 2 modalities go through the one block, but the keys and
    # values of each modality's tokens are projected once (one
    # cross-attention call per modality, all groups' queries in it)
    mgf.mgf_block.cross_attn.register_forward_hook(
        lambda m, args, out: calls.append(tuple(args[0].shape)))
    txt, txt_attn, mask = _text_batch()
    mgf(_rand(4, 197, W), _attn(4, 197, 3), txt, txt_attn, mask)
    assert calls == [(4, 2 * (1 + 19), W), (4, 2 * (1 + 20), W)]


def test_grouped_block_pass_equals_one_call_per_group():
    torch.manual_seed(0)
    block = MGFBlock(W, HEADS).eval()
    queries = _rand(3, 2, 5, W)
    context = _rand(3, 30, W)
    ctx_pad = torch.zeros(3, 30, dtype=torch.bool)
    ctx_pad[0, 20:] = True
    q_pad = torch.zeros(3, 2, 5, dtype=torch.bool)
    q_pad[1, 0, 3:] = True
    q_pad[2, 1, 1:] = True
    with torch.no_grad():
        out = block.forward_groups(queries, context, ctx_pad, q_pad)
        for j in range(2):
            ref = block(queries[:, j], context, ctx_pad, q_pad[:, j])
            torch.testing.assert_close(out[:, j], ref, atol=1e-5, rtol=1e-5)


def test_every_trainable_mgf_parameter_gets_a_gradient_bn_bias_frozen():
    mgf = _mgf()
    assert not mgf.bn_img.bias.requires_grad
    assert not mgf.bn_txt.bias.requires_grad
    assert (mgf.bn_img.bias == 0).all() and (mgf.bn_img.weight == 1).all()
    txt, txt_attn, mask = _text_batch()
    out = mgf(_rand(4, 197, W), _attn(4, 197, 3), txt, txt_attn, mask)
    target = _rand(4, 3, W, seed=9)
    loss = sum(
        ((o['levels'] - target)**2).sum() for o in (out['img'], out['text']))
    loss.backward()
    trainable = [(n, p) for n, p in mgf.named_parameters() if p.requires_grad]
    assert len(trainable) == len(list(mgf.parameters())) - 2
    for name, p in trainable:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    torch.optim.SGD([p for _, p in trainable], lr=0.1).step()
    assert (mgf.bn_img.bias == 0).all() and (mgf.bn_txt.bias == 0).all()
    assert not torch.allclose(mgf.bn_img.weight, torch.ones(W))


def test_bn_normalises_each_level_with_its_own_batch_statistics():
    mgf = _mgf().train()
    img = _rand(8, 197, W) * 2 + 1
    levels = mgf.forward_image(img, _attn(8, 197, 3))['levels']
    for level in range(3):
        torch.testing.assert_close(
            levels[:, level].mean(0), torch.zeros(W), atol=1e-5, rtol=0)
        torch.testing.assert_close(
            levels[:, level].var(0, unbiased=False),
            torch.ones(W),
            atol=1e-3,
            rtol=0)
    # running stats were updated once per level
    assert int(mgf.bn_img.num_batches_tracked) == 3
    assert int(mgf.bn_txt.num_batches_tracked) == 0


def test_text_padding_is_masked_in_the_cross_attention():
    mgf = _mgf().eval()
    txt, txt_attn, mask = _text_batch()  # >= 45 real tokens: no PAD picked
    noisy = txt.clone()
    noisy[~mask] = _rand(int((~mask).sum()), W, seed=7) * 5
    with torch.no_grad():
        ref = mgf.forward_text(txt, txt_attn, mask)['levels']
        torch.testing.assert_close(
            mgf.forward_text(noisy, txt_attn, mask)['levels'], ref)
        # without the mask PAD keys are attended and the output moves
        assert not torch.allclose(
            mgf.forward_text(noisy, txt_attn)['levels'], ref)


def test_short_captions_faithful_quirk_vs_exclude_padding():
    # 2K + 1 = 41 tokens fill both groups without PAD; with 30, group 1
    # (ranks 1-20) is clean but group 2 (ranks 21-40) reaches PAD
    lengths = (12, 30, 8, 50)
    txt, txt_attn, mask = _text_batch(lengths=lengths)
    noisy = txt.clone()
    noisy[~mask] = _rand(int((~mask).sum()), W, seed=7) * 5
    with torch.no_grad():
        faithful = _mgf().eval()
        a = faithful.forward_text(txt, txt_attn, mask)['enhanced']
        b = faithful.forward_text(noisy, txt_attn, mask)['enhanced']
        # PAD tokens sit in the query groups of the short captions only
        assert not torch.allclose(a[0], b[0])
        assert not torch.allclose(a[2], b[2])
        torch.testing.assert_close(a[1, 0], b[1, 0])
        assert not torch.allclose(a[1, 1], b[1, 1])
        torch.testing.assert_close(a[3], b[3])
        clean = _mgf(exclude_padding=True).eval()
        out = clean.forward_text(txt, txt_attn, mask)
        torch.testing.assert_close(
            clean.forward_text(noisy, txt_attn, mask)['enhanced'],
            out['enhanced'])
        assert out['selection'].valid[0].sum() == lengths[0] - 1
        assert torch.isfinite(out['levels']).all()


def test_text_global_index_selects_the_global_token():
    mgf = _mgf().eval()
    txt, txt_attn, mask = _text_batch()
    eot = torch.tensor([59, 44, 69, 49])
    with torch.no_grad():
        out = mgf.forward_text(txt, txt_attn, mask, global_index=eot)
    torch.testing.assert_close(out['global'], txt[torch.arange(4), eot])
    assert not (out['selection'].union_indices == eot.view(-1, 1)).any()


def test_inference_feature_is_normalised_concat():
    levels = _rand(5, 3, W)
    feat = MGF.inference_feature(levels)
    assert feat.shape == (5, 3 * W)
    torch.testing.assert_close(
        feat, F.normalize(torch.cat([levels[:, i] for i in range(3)], 1)))
    # one normalisation over 3W, not one per level
    assert not torch.allclose(
        feat, F.normalize(F.normalize(levels, dim=-1).flatten(1)))


def test_wrong_width_raises():
    with pytest.raises(ValueError):
        _mgf().forward_image(_rand(2, 197, W + 1), _attn(2, 197, 1))


# ---------------------------------------------------------------------- CFR
def _cfr_loop(v, p, t, w, tau, p_valid=None, w_valid=None):
    """S_c of cfine.md §5, pair by pair, on index lists."""
    bi, bt = v.shape[0], t.shape[0]
    s = torch.zeros(bi, bt)
    for i in range(bi):
        for j in range(bt):
            words = w[j] if w_valid is None else w[j][w_valid[j]]
            patches = p[i] if p_valid is None else p[i][p_valid[i]]
            a = F.cosine_similarity(v[i][None], words, dim=-1) / tau
            b = F.cosine_similarity(patches, t[j][None], dim=-1) / tau
            s[i, j] = ((a.softmax(0) * a).sum() + (b.softmax(0) * b).sum()) / 2
    return s


def test_cfr_matches_the_pairwise_definition():
    v, p = _rand(4, W, seed=1), _rand(4, 38, W, seed=2)
    t, w = _rand(5, W, seed=3), _rand(5, 40, W, seed=4)
    cfr = MODELS.build(dict(type='CFR'))
    assert isinstance(cfr, CFR) and cfr.temperature == 0.07
    assert len(list(cfr.parameters())) == 0
    s = cfr(v, p, t, w)
    assert s.shape == (4, 5)  # rows: images
    torch.testing.assert_close(s, _cfr_loop(v, p, t, w, 0.07))
    assert s.abs().max() <= 1 / 0.07 + 1e-4


def test_cfr_rows_are_images_and_swapping_roles_transposes():
    v, p = _rand(4, W, seed=1), _rand(4, 38, W, seed=2)
    t, w = _rand(4, W, seed=3), _rand(4, 40, W, seed=4)
    cfr = CFR()
    s = cfr(v, p, t, w)
    assert not torch.allclose(s, s.T, atol=1e-3)
    torch.testing.assert_close(cfr(t, w, v, p), s.T)
    # image i's row reacts to image i's features only
    p2 = p.clone()
    p2[1] = _rand(38, W, seed=8)
    s2 = cfr(v, p2, t, w)
    changed = (s2 - s).abs().sum(1) > 1e-6
    assert changed.tolist() == [False, True, False, False]


def test_cfr_valid_masks_drop_slots():
    v, p = _rand(3, W, seed=1), _rand(3, 6, W, seed=2)
    t, w = _rand(3, W, seed=3), _rand(3, 8, W, seed=4)
    p_valid = torch.ones(3, 6, dtype=torch.bool)
    p_valid[2, 3:] = False
    w_valid = torch.ones(3, 8, dtype=torch.bool)
    w_valid[0, 2:] = False
    w_valid[1, 7] = False
    s = CFR(temperature=0.1)(v, p, t, w, p_valid, w_valid)
    torch.testing.assert_close(s, _cfr_loop(v, p, t, w, 0.1, p_valid, w_valid))
    # masked tokens do not matter
    w2 = w.clone()
    w2[0, 2:] = 100.
    torch.testing.assert_close(
        CFR(temperature=0.1)(v, p, t, w2, p_valid, w_valid), s)


# ---------------------------------------------------------------------- FCD
def _fcd_loop(p, w, tau, kw, kp, p_valid=None, w_valid=None):
    """S_f of cfine.md §6 with explicit per-pair top-k and slot loops."""
    b, kv, kt = p.shape[0], p.shape[1], w.shape[1]
    pv = torch.ones(b, kv, dtype=torch.bool) if p_valid is None else p_valid
    wv = torch.ones(b, kt, dtype=torch.bool) if w_valid is None else w_valid
    pos_word = torch.zeros(b, kv, p.shape[2])
    pos_patch = torch.zeros(b, kt, p.shape[2])
    for n in range(b):
        pi, wi = pv[n].nonzero()[:, 0], wv[n].nonzero()[:, 0]
        c = F.normalize(p[n, pi], dim=-1) @ F.normalize(w[n, wi], dim=-1).T
        r = c.softmax(dim=1)  # over words
        for a, slot in enumerate(pi.tolist()):
            top = r[a].topk(min(kw, len(wi))).indices
            pos_word[n, slot] = F.normalize(w[n, wi[top]].mean(0), dim=0)
        for a, slot in enumerate(wi.tolist()):
            top = r[:, a].topk(min(kp, len(pi))).indices
            pos_patch[n, slot] = F.normalize(p[n, pi[top]].mean(0), dim=0)
    s = torch.zeros(b, b)
    for i in range(b):
        for j in range(b):
            pw = [
                F.cosine_similarity(p[i, s_], pos_word[j, s_], dim=0)
                for s_ in range(kv) if pv[i, s_] and pv[j, s_]
            ]
            wp = [
                F.cosine_similarity(pos_patch[i, s_], w[j, s_], dim=0)
                for s_ in range(kt) if wv[i, s_] and wv[j, s_]
            ]
            s[i, j] = (sum(pw) / len(pw) + sum(wp) / len(wp)) / (2 * tau)
    return s


def test_fcd_matches_the_per_pair_definition():
    p, w = _rand(4, 19, W, seed=1), _rand(4, 20, W, seed=2)
    fcd = MODELS.build(dict(type='FCD'))
    assert isinstance(fcd, FCD)
    assert (fcd.temperature, fcd.k_w, fcd.k_p) == (0.01, 3, 3)
    assert len(list(fcd.parameters())) == 0
    s = fcd(p, w)
    assert s.shape == (4, 4)
    torch.testing.assert_close(
        s, _fcd_loop(p, w, 0.01, 3, 3), atol=1e-4, rtol=1e-5)
    assert s.abs().max() <= 100 + 1e-3
    s2 = FCD(temperature=0.05, k_w=1, k_p=5)(p, w)
    torch.testing.assert_close(
        s2, _fcd_loop(p, w, 0.05, 1, 5), atol=1e-4, rtol=1e-5)


def test_fcd_is_not_symmetric_in_the_modalities():
    p, w = _rand(4, 19, W, seed=1), _rand(4, 20, W, seed=2)
    fcd = FCD()
    s = fcd(p, w)
    assert not torch.allclose(fcd(w, p), s.T, atol=1e-3)
    assert not torch.allclose(s, s.T, atol=1e-3)


def test_fcd_diagonal_wins_when_pairs_share_their_tokens():
    base = _rand(5, 19, W, seed=3)
    words = base[:, torch.randperm(19)] + 0.1 * _rand(5, 19, W, seed=4)
    s = FCD()(base, words)
    off = s.masked_fill(torch.eye(5, dtype=torch.bool), float('-inf'))
    assert (s.diagonal() > off.max(1).values).all()
    assert (s.diagonal() > off.max(0).values).all()


def test_fcd_valid_masks_and_gradients():
    p, w = _rand(3, 7, W, seed=1), _rand(3, 9, W, seed=2)
    p_valid = torch.ones(3, 7, dtype=torch.bool)
    p_valid[1, 5:] = False
    w_valid = torch.ones(3, 9, dtype=torch.bool)
    w_valid[0, 2:] = False  # 2 valid words < k_w = 3
    w_valid[2, 6:] = False
    p.requires_grad_(True)
    w.requires_grad_(True)
    s = FCD()(p, w, p_valid, w_valid)
    torch.testing.assert_close(
        s,
        _fcd_loop(p.detach(), w.detach(), 0.01, 3, 3, p_valid, w_valid),
        atol=1e-4,
        rtol=1e-5)
    s.sum().backward()
    assert p.grad.abs().sum() > 0 and w.grad.abs().sum() > 0
    assert torch.isfinite(p.grad).all() and torch.isfinite(w.grad).all()
    # padded word slots get no gradient: they never enter the similarity
    assert w.grad[0, 2:].abs().max() == 0


def test_fcd_rejects_bad_k_and_unpaired_batches():
    with pytest.raises(ValueError):
        FCD(k_w=0)
    with pytest.raises(ValueError):
        FCD(k_p=8)(_rand(2, 7, W), _rand(2, 9, W))
    with pytest.raises(ValueError):
        FCD()(_rand(2, 7, W), _rand(3, 9, W))


def test_necks_compose_on_a_selection():
    """What the retriever does: MGF -> selections -> CFR / FCD."""
    mgf = _mgf()
    img, img_attn = _rand(4, 197, W), _attn(4, 197, 3)
    txt, txt_attn, mask = _text_batch()
    out = mgf(img, img_attn, txt, txt_attn, mask)
    vi, ti = out['img'], out['text']
    s_c = CFR()(vi['global'], vi['selection'].union, ti['global'],
                ti['selection'].union)
    s_f = FCD()(vi['selection'].group1, ti['selection'].group1)
    ref = select_tokens(img, img_attn, 0.1)
    torch.testing.assert_close(vi['selection'].group1, ref.group1)
    assert s_c.shape == s_f.shape == (4, 4)
