#!/usr/bin/env python
"""Write the golden references that pin this project to the official code.

Runs the authors' official CLIP-ReID code (a checkout of
github.com/Syliz517/CLIP-ReID, given with ``--clipreid-root``; it is put on
``sys.path`` here and nowhere else in the project) on a tiny random CLIP in
OpenAI's layout, and torchvision's resize as CFine's official test
transform calls it, then writes what the official code computes to
``tests/data/fidelity/``:

* ``clipreid_tiny.npz``: the tiny CLIP's visual weights (OpenAI names,
  fp16 as OpenAI's archive), two 256x128 input images, the SIE camera table
  and camera ids, and the official outputs: the positional embedding of the
  overlapping-patch model (stride 12: 14x14 resized straight to 21x10), its
  projected CLS feature, the stage-1 cache feature with SIE on (the official
  stage 1 encodes without camera ids) and the inference feature with SIE.
* ``clipreid_train.npz``: one training step of each stage on 64x32 inputs
  (8 images, 4 identities x 2): the text tower's weights (only the token
  embedding rows the prompt template uses), the BNNeck / classifier /
  prompt-token weights, and what the official code computes: stage-1
  image and prompt features, SupCon i2t / t2i losses and the gradient on
  the prompt tokens; stage-2 text features of every identity, classifier
  logits, the ID, triplet and I2T losses (``make_loss``), the gradient on
  the input images and on the backbone and head parameters.
* ``clipreid_stage2_groups.json``: the official stage-2 optimizer's learning
  rate and weight decay of every trainable tensor (``make_optimizer_2stage``
  with the official ``vit_clipreid.yml``).
* ``cfine_resize.jpg`` + ``cfine_resize.npz``: a 330x120 JPEG and its
  224x224 bicubic resize by torchvision on the PIL image (CFine's
  ``train.py`` test transform, before ``ToTensor``).

The tests (``tests/test_models/test_fidelity_goldens.py``) compare the
project against these files without the official code. The tiny CLIP keeps
the 12 vision blocks the official forward indexes (``resblocks[:11]``,
``resblocks[11]``) at width 64; the official model's BNNeck / classifier
widths are hard-coded for ViT-B/16 (768 / 512), so they and the SIE table
are rebuilt at the tiny widths after construction (they are not part of
what is compared, except the SIE table, which is saved).

Usage (the official code's ``config/defaults.py`` needs yacs' ``CfgNode``;
a minimal stand-in is used when yacs is not installed)::

    python tools/fidelity/make_fidelity_goldens.py \\
        --clipreid-root /path/to/CLIP-ReID --out tests/data/fidelity
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
import tempfile
import types

import numpy as np
import torch
import torch.nn as nn

VIS_WIDTH, VIS_LAYERS, PATCH, GRID = 64, 12, 16, 14
TXT_WIDTH, TXT_LAYERS, EMBED, VOCAB, CONTEXT = 64, 1, 32, 49408, 77
NUM_IDS, NUM_CAMS = 4, 3
IMG_HW = (256, 128)


def tiny_openai_state_dict(seed: int = 0) -> dict:
    """A random CLIP ViT in OpenAI's layout (fp16 like ViT-B-16.pt)."""
    g = torch.Generator().manual_seed(seed)

    def normal(*shape, std):
        return torch.randn(*shape, generator=g) * std

    sd = {}

    def tower(prefix, width, layers):
        for i in range(layers):
            b = f'{prefix}transformer.resblocks.{i}.'
            sd[b + 'attn.in_proj_weight'] = normal(3 * width, width,
                                                   std=width**-0.5)
            sd[b + 'attn.in_proj_bias'] = normal(3 * width, std=0.02)
            sd[b + 'attn.out_proj.weight'] = normal(width, width,
                                                    std=width**-0.5 / 4)
            sd[b + 'attn.out_proj.bias'] = normal(width, std=0.02)
            for ln in ('ln_1', 'ln_2'):
                sd[b + ln + '.weight'] = 1 + normal(width, std=0.1)
                sd[b + ln + '.bias'] = normal(width, std=0.05)
            sd[b + 'mlp.c_fc.weight'] = normal(4 * width, width,
                                               std=(2 * width)**-0.5)
            sd[b + 'mlp.c_fc.bias'] = normal(4 * width, std=0.02)
            sd[b + 'mlp.c_proj.weight'] = normal(width, 4 * width,
                                                 std=width**-0.5 / 4)
            sd[b + 'mlp.c_proj.bias'] = normal(width, std=0.02)

    vw = VIS_WIDTH
    sd['visual.class_embedding'] = normal(vw, std=vw**-0.5)
    sd['visual.positional_embedding'] = normal(GRID * GRID + 1, vw,
                                               std=vw**-0.5)
    sd['visual.proj'] = normal(vw, EMBED, std=vw**-0.5)
    sd['visual.conv1.weight'] = normal(vw, 3, PATCH, PATCH,
                                       std=(3 * PATCH * PATCH)**-0.5)
    for ln in ('ln_pre', 'ln_post'):
        sd[f'visual.{ln}.weight'] = 1 + normal(vw, std=0.1)
        sd[f'visual.{ln}.bias'] = normal(vw, std=0.05)
    tower('visual.', vw, VIS_LAYERS)
    tw = TXT_WIDTH
    sd['positional_embedding'] = normal(CONTEXT, tw, std=0.01)
    sd['text_projection'] = normal(tw, EMBED, std=tw**-0.5)
    sd['logit_scale'] = torch.tensor(math.log(1 / 0.07))
    sd['token_embedding.weight'] = normal(VOCAB, tw, std=0.02)
    sd['ln_final.weight'] = 1 + normal(tw, std=0.1)
    sd['ln_final.bias'] = normal(tw, std=0.05)
    tower('', tw, TXT_LAYERS)
    return {k: v.half() for k, v in sd.items()}


class _CfgNode(dict):
    """Just enough of yacs' ``CfgNode`` for the official config files."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def clone(self):
        import copy
        return copy.deepcopy(self)

    def defrost(self):
        pass

    def freeze(self):
        pass

    def merge_from_other_cfg(self, other):
        for key, value in other.items():
            if key not in self:
                raise KeyError(f'unknown config key {key}')
            if isinstance(self[key], dict):
                if value is not None:
                    self[key].merge_from_other_cfg(value)
            else:
                self[key] = type(self[key])(value) if isinstance(
                    self[key], (tuple, list)) else value


def _yacs_stand_in() -> None:
    try:
        import yacs.config  # noqa: F401
        return
    except ImportError:
        pass
    mod = types.ModuleType('yacs.config')
    mod.CfgNode = _CfgNode
    sys.modules['yacs'] = types.SimpleNamespace(config=mod)
    sys.modules['yacs.config'] = mod


def import_official(root: str) -> types.SimpleNamespace:
    """Import the official modules on the CPU (their CUDA calls no-ops)."""
    if not osp.isfile(osp.join(root, 'model', 'make_model_clipreid.py')):
        sys.exit(f'{root} is not a CLIP-ReID checkout (model/'
                 'make_model_clipreid.py missing)')
    sys.path.insert(0, root)
    _yacs_stand_in()
    # the official code moves tensors and modules to 'cuda' unconditionally
    tensor_to, module_to = torch.Tensor.to, nn.Module.to

    def cpu(arg):
        if isinstance(arg, str) and arg.startswith('cuda'):
            return 'cpu'
        if isinstance(arg, torch.device) and arg.type == 'cuda':
            return torch.device('cpu')
        return arg

    torch.Tensor.to = lambda self, *a, **k: tensor_to(
        self, *[cpu(x) for x in a], **{n: cpu(v) for n, v in k.items()})
    nn.Module.to = lambda self, *a, **k: module_to(
        self, *[cpu(x) for x in a], **{n: cpu(v) for n, v in k.items()})
    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self
    if 'turtle' not in sys.modules:
        # loss/triplet_loss.py imports turtle.pd, unused; no Tk here
        sys.modules['turtle'] = types.SimpleNamespace(pd=None)
    import importlib
    names = ('config', 'model.make_model_clipreid', 'model.clip.clip',
             'solver.make_optimizer_prompt')
    return types.SimpleNamespace(
        **{n.split('.')[-1]: importlib.import_module(n)
           for n in names})


def official_cfg(off, root: str, stride: int, sie: bool, hw=IMG_HW):
    import yaml
    CfgNode = type(off.config.cfg)
    cfg = off.config.cfg.clone()
    cfg.defrost()
    with open(osp.join(root, 'configs', 'person', 'vit_clipreid.yml')) as f:
        recipe = yaml.safe_load(f)
    # the yml leaves DATASETS with every entry commented out (None), which
    # yacs refuses to merge; nothing of it is used here
    recipe = {k: v for k, v in recipe.items() if v is not None}

    def node(value):
        if isinstance(value, dict):
            return CfgNode({k: node(v) for k, v in value.items()})
        return value

    cfg.merge_from_other_cfg(node(recipe))
    cfg.MODEL.STRIDE_SIZE = [stride, stride]
    cfg.MODEL.SIE_CAMERA = sie
    cfg.MODEL.SIE_COE = 1.0  # as the README's SIE commands pass
    cfg.INPUT.SIZE_TRAIN = list(hw)
    cfg.INPUT.SIZE_TEST = list(hw)
    return cfg


def build_official(off, cfg, archive: str) -> nn.Module:
    off.clip._download = lambda url, root=None: archive
    model = off.make_model_clipreid.make_model(
        cfg, num_class=NUM_IDS, camera_num=NUM_CAMS, view_num=1)
    # widths hard-coded for ViT-B/16 (768 / 512): rebuild at the tiny ones
    g = torch.Generator().manual_seed(7)
    model.in_planes, model.in_planes_proj = VIS_WIDTH, EMBED
    model.bottleneck = nn.BatchNorm1d(VIS_WIDTH)
    model.bottleneck.bias.requires_grad_(False)
    model.bottleneck_proj = nn.BatchNorm1d(EMBED)
    model.bottleneck_proj.bias.requires_grad_(False)
    model.classifier = nn.Linear(VIS_WIDTH, NUM_IDS, bias=False)
    model.classifier_proj = nn.Linear(EMBED, NUM_IDS, bias=False)
    if cfg.MODEL.SIE_CAMERA:
        model.cv_embed = nn.Parameter(
            0.02 * torch.randn(NUM_CAMS, VIS_WIDTH, generator=g))
    # the prompt tokens are hard-coded at 512 (ViT-B/16's text width)
    model.prompt_learner.cls_ctx = nn.Parameter(
        0.02 * torch.randn(NUM_IDS, 4, TXT_WIDTH, generator=g))
    with torch.no_grad():
        # non-trivial BNNeck and classifiers, so every term has gradients
        for bn in (model.bottleneck, model.bottleneck_proj):
            bn.weight.copy_(1 + 0.2 * torch.randn(bn.weight.shape,
                                                  generator=g))
            bn.running_mean.copy_(0.1 * torch.randn(bn.running_mean.shape,
                                                    generator=g))
            bn.running_var.copy_(1 + torch.rand(bn.running_var.shape,
                                                generator=g))
        for fc in (model.classifier, model.classifier_proj):
            fc.weight.normal_(0, 0.05, generator=g)
    return model.float().eval()


#: parameters whose stage-2 gradient is stored (official names)
GRAD_PARAMS = ('image_encoder.conv1.weight', 'image_encoder.class_embedding',
               'image_encoder.transformer.resblocks.0.attn.in_proj_weight',
               'image_encoder.transformer.resblocks.10.ln_1.bias',
               'image_encoder.transformer.resblocks.11.mlp.c_fc.weight',
               'image_encoder.ln_post.weight', 'image_encoder.proj',
               'bottleneck.weight', 'bottleneck_proj.weight',
               'classifier.weight', 'classifier_proj.weight')


def training_goldens(off, root: str, archive: str, sd: dict) -> dict:
    """One official step of each stage on 8 images of 64x32."""
    import importlib
    supcon = importlib.import_module('loss.supcontrast').SupConLoss('cpu')
    make_loss = importlib.import_module('loss.make_loss').make_loss
    cfg = official_cfg(off, root, 16, False, hw=(64, 32))
    model = build_official(off, cfg, archive)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, 3, 64, 32, generator=g).half().float()
    pids = torch.arange(NUM_IDS).repeat_interleave(2)
    out = {'images': x.half().numpy(), 'pids': pids.numpy()}
    # stage 1: frozen image features (as the cache), prompts learn
    with torch.no_grad():
        feats = model(x, pids, get_image=True)
    ctx = model.prompt_learner.cls_ctx
    text = model(label=pids, get_text=True)
    i2t = supcon(feats, text, pids, pids)
    t2i = supcon(text, feats, pids, pids)
    (i2t + t2i).backward()
    out.update({
        's1.image_feats': feats.numpy(), 's1.text_feats':
        text.detach().numpy(), 's1.loss_i2t': i2t.detach().numpy(),
        's1.loss_t2i': t2i.detach().numpy(), 's1.ctx_grad':
        ctx.grad.numpy()
    })
    ctx.grad = None
    # stage 2: every identity's text feature, then one train-mode step
    with torch.no_grad():
        t_id = model(label=torch.arange(NUM_IDS), get_text=True)
    model.train()
    xg = x.clone().requires_grad_(True)
    score, feat, img_proj = model(x=xg, label=pids)
    logits = img_proj @ t_id.t()
    loss_fn, _ = make_loss(cfg, num_classes=NUM_IDS)
    xent = importlib.import_module(
        'loss.softmax_loss').CrossEntropyLabelSmooth(num_classes=NUM_IDS)
    tri = importlib.import_module('loss.triplet_loss').TripletLoss(
        cfg.SOLVER.MARGIN)
    loss = loss_fn(score, feat, pids, None, logits)
    loss.backward()
    params = dict(model.named_parameters())
    out.update({
        's2.t_id': t_id.numpy(),
        's2.logits_f12': score[0].detach().numpy(),
        's2.logits_fp': score[1].detach().numpy(),
        's2.loss_id': (cfg.MODEL.ID_LOSS_WEIGHT *
                       sum(xent(s, pids) for s in score)).detach().numpy(),
        's2.loss_tri': sum(tri(f, pids)[0] for f in feat).detach().numpy(),
        's2.loss_i2t': (cfg.MODEL.I2T_LOSS_WEIGHT *
                        xent(logits, pids)).detach().numpy(),
        's2.loss_total': loss.detach().numpy(),
        's2.images_grad': xg.grad.numpy(),
        **{f's2.grad.{n}': params[n].grad.numpy()
           for n in GRAD_PARAMS},
    })
    model.zero_grad(set_to_none=True)
    # the weights the project needs besides the visual tower
    ids = torch.unique(model.prompt_learner.tokenized_prompts)
    out['text.token_ids'] = ids.numpy()
    out['text.token_rows'] = sd['token_embedding.weight'][ids].numpy()
    for k, v in sd.items():
        if not k.startswith('visual.') and k != 'token_embedding.weight':
            out[f'text.sd.{k}'] = v.numpy()
    heads = ('bottleneck.', 'bottleneck_proj.', 'classifier.',
             'classifier_proj.')
    # parameters were trained one step only in the grads, not updated
    for k, v in model.state_dict().items():
        if k.startswith(heads) or k == 'prompt_learner.cls_ctx':
            out[f'init.{k}'] = v.numpy()
    return out


def clipreid_goldens(root: str, out: str) -> None:
    off = import_official(root)
    sd = tiny_openai_state_dict()
    with tempfile.TemporaryDirectory() as tmp:
        archive = osp.join(tmp, 'ViT-B-16.pt')
        torch.save({k: v.clone() for k, v in sd.items()}, archive)
        olp = build_official(off, official_cfg(off, root, 12, False),
                             archive)
        sie = build_official(off, official_cfg(off, root, 16, True),
                             archive)
        train = training_goldens(off, root, archive, sd)
    np.savez_compressed(osp.join(out, 'clipreid_train.npz'), **train)
    g = torch.Generator().manual_seed(3)
    # fp16-representable inputs, stored as fp16 without loss
    x = torch.randn(2, 3, *IMG_HW, generator=g).half().float()
    camids = torch.tensor([2, 0])
    with torch.no_grad():
        olp_fp = olp.image_encoder(x)[2][:, 0]
        cache_fp = sie(x, torch.zeros(2, dtype=torch.long), get_image=True)
        sie.neck_feat = 'before'
        eval_feat = sie(x, cam_label=camids)
    visual = {k: v.numpy() for k, v in sd.items() if k.startswith('visual.')}
    np.savez_compressed(
        osp.join(out, 'clipreid_tiny.npz'),
        images=x.half().numpy(),
        camids=camids.numpy(),
        sie_embed=sie.cv_embed.detach().numpy(),
        olp_pos_embed=olp.image_encoder.positional_embedding.detach().float()
        .numpy(),
        olp_fp=olp_fp.float().numpy(),
        sie_cache_fp=cache_fp.float().numpy(),
        sie_eval_feat=eval_feat.float().numpy(),
        **{f'sd.{k}': v
           for k, v in visual.items()})
    # the official stage-2 optimizer over the SIE model (cv_embed included)
    cfg = official_cfg(off, root, 16, True)
    center = nn.Linear(1, 1)  # CenterLoss's parameters (unused in CLIP-ReID)
    opt, _ = off.make_optimizer_prompt.make_optimizer_2stage(cfg, sie, center)
    names = {id(p): n for n, p in sie.named_parameters()}
    groups = {
        names[id(p)]: [g['lr'], g['weight_decay']]
        for g in opt.param_groups for p in g['params']
    }
    with open(osp.join(out, 'clipreid_stage2_groups.json'), 'w') as f:
        json.dump(dict(optimizer=type(opt).__name__, groups=groups), f,
                  indent=1, sort_keys=True)
    print(f'CLIP-ReID: {len(groups)} stage-2 tensors, OLP grid '
          f'{tuple(olp.image_encoder.positional_embedding.shape)}')


def cfine_resize_golden(out: str) -> None:
    """CFine's test transform resizes the PIL image with torchvision."""
    from PIL import Image
    from torchvision import transforms
    rng = np.random.default_rng(0)
    coarse = (rng.random((8, 4, 3)) * 255).astype(np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((120, 330),
                                                    Image.BICUBIC))
    img = np.clip(img + rng.normal(0, 25, img.shape), 0, 255).astype(np.uint8)
    path = osp.join(out, 'cfine_resize.jpg')
    Image.fromarray(img).save(path, quality=90)
    # train.py: transforms.Resize((224, 224), interpolation=3) on PIL
    resized = transforms.Resize((224, 224), interpolation=3)(
        Image.open(path).convert('RGB'))
    np.savez_compressed(osp.join(out, 'cfine_resize.npz'),
                        resized_rgb=np.asarray(resized))
    print('CFine: 330x120 JPEG -> 224x224 (torchvision bicubic on PIL)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--clipreid-root', required=True,
                        help='a checkout of github.com/Syliz517/CLIP-ReID')
    parser.add_argument('--out', default='tests/data/fidelity')
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    cfine_resize_golden(args.out)
    clipreid_goldens(osp.abspath(args.clipreid_root), args.out)


if __name__ == '__main__':
    main()
