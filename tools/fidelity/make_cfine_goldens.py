#!/usr/bin/env python
"""Write the golden outputs of the official CFine code for the CFine tests.

    python tools/fidelity/make_cfine_goldens.py --cfine-root /path/to/CFine \\
        [--out tests/data/fidelity] [--official-commit SHA]

CFine: Yan et al., "CLIP-Driven Fine-grained Text-Image Person
Re-identification", IEEE TIP 2023 (arXiv 2210.10276). ``--cfine-root`` is a
checkout of the authors' code, https://github.com/shuanglinyan/CFine
(commit ``ab330e3f712ffa7ab5c6338f220dd9bb4ff43376``, MIT licence); it is
put on ``sys.path`` by this script, at run time, and nowhere else in the
project. The script runs the official ``train.train`` for one step on a
small random CFine-CLIP model and writes ``cfine_tiny.npz``, which
``tests/test_models/test_cfine_goldens.py`` compares this project's CFine
against, without the official code.

What is run, unmodified, on the CPU: ``models/model.py`` (``Model``,
``ViT_CLIP_custom``), ``models/clip.py`` (``VisionTransformer_clip``),
``models/layers.py`` (the MGF block, ``ResidualAttention``),
``models/bert.py`` (``Bert``: ``pre_process`` and the forward) with
``models/pytorch_transformers/`` (BERT, its WordPiece tokenizer),
``utils/metric.py`` (``Loss``: CMPM, CMPC, diversity; ``compute_topk``),
``utils/CRLoss.py`` (the triplet loss) and ``train.py`` (``train``: the
loss composition ``loss + sim_loss * 10`` and the backward), with the
defaults of ``train_config.py``.

How it is run:

* ``.cuda()`` / ``.to('cuda')`` are no-ops. Modules the official code
  imports but this model never uses get stand-ins: OpenAI's ``clip``
  package (its ``clip.load`` serves the small image tower below), the
  dataset (``datasets.pedes``, scipy.misc), ``test.py``, the ImageNet ViT /
  ResNet alternatives, and ``six`` / ``boto3`` / ``botocore`` / ``requests``
  (download helpers of ``pytorch_transformers``) when not installed.
  ``Bert()`` reads ``bert-base-uncased`` from fixed folders: the three files
  it reads (``bert-base-uncased-vocab.txt``, ``bert_config.json``,
  ``pytorch_model.bin``) are written to a temporary folder and served from
  there.
* ``train()`` gets a one-batch loader and an optimizer whose ``step`` does
  nothing, so the gradients of the step stay on the tensors and the weights
  stay the stored ones.

Sizes, and where the official code had to be patched after import (each
patch prints a line):

* Image tower: a CLIP ViT in OpenAI's layout, 64x64 input, 8-pixel
  patches (65 tokens, so K_v = int(65 * 0.1) = 6 > pos_kp = 3), 2 blocks,
  width 64. ``ViT_CLIP_custom`` takes every size from the weights except
  the head count, ``width // 64`` (OpenAI's rule), which would give one
  head: **patched** to 2 heads (head width 32) so that the head average of
  the [CLS] attention, which ranks the patches, is a real average.
* BERT: the official implementation, 2 layers, hidden 64, 4 heads, FFN 128,
  128 positions, a 70-piece WordPiece vocabulary written here (the
  captions' words, three of them split into pieces, one unknown); dropout 0
  (``hidden_dropout_prob`` / ``attention_probs_dropout_prob`` in the
  config file, as bert-base sets them to 0.1): dropout is random, and the
  token selection in training reads the attention after dropout.
* ``Model`` hard-codes the MGF block at ``d_model=768, n_head=12``:
  **patched** to 64 wide, 2 heads. ``--feature_size`` (the BN necks, CMPC's
  ``W``) is 64 and ``--num_classes`` 6; everything else is the
  ``train_config.py`` default (ratios 0.1 / 0.2, scale_cs 0.07, scale_cd
  0.01, pos_kw / pos_kp 3, margin 0.2, lambda_diversity 0.2, CMPM and
  CMPC on); ``--batch_size`` is the batch of 8 (``CRLoss`` keeps one
  margin per batch item).
* Every weight is then redrawn from a seeded generator (norm scales and BN
  running statistics away from 1 / 0, BN biases nonzero), rounded to fp16
  and stored in fp16, as are the images; the official model computes in
  fp32 from exactly those values.

Two devices, applied to the official side here and to the project's side
in the test alike:

* Ties in the token selection. The official code ranks with ``topk``,
  whose order among equal scores is unspecified; the zeroed [CLS] score
  and the PAD positions of short captions all score exactly 0. The
  official model runs with a stable ``topk`` (sort, stable, descending:
  ties in position order, one of the orders the official code may
  produce). The script checks that the unmodified ``topk`` gives the same
  ranks wherever the score is not 0, and that no two nonzero scores of the
  selected ranks, nor FCD's top-k choices, are closer than 1e-6.
* Triplet violations. Random towers rank every caption first for its own
  image (FCD compares each pair with its own prototypes on the diagonal),
  so the triplet loss would only see its dummy triplet on the image side.
  ``OFFSET_ENTRIES`` below is added to S = S_c + S_f before the triplet
  loss: image anchors 1, 4, 6 and 7 get violating negatives (row 4 two,
  the hardest not the first), and (1, 5), a same-identity pair, a value
  above row 1's hardest negative, which the loss must ignore. (The text
  anchors have violating negatives without it: images 3 and 6 score high
  with every caption.) The script checks that no triplet choice hinges on
  less than 1e-3.

What ``cfine_tiny.npz`` holds (official names, B = 8 pairs of 6
identities, ids 2 and 5 twice):

* ``meta``: JSON (sizes, patches, official options, commit, sha256 of the
  official files used); ``captions``, ``vocab``; ``images`` (fp16),
  ``tokens`` (the official ``Bert.pre_process`` ids), ``pids``, ``offset``.
* ``sd.<name>``: the official network's state dict as ``train.py`` saves
  it (``module.`` prefix), fp16; ``W``: CMPC's classifier.
* ``train.*`` (one ``train()`` step, train mode): the image / text global
  tokens and last-layer [CLS] attention (head mean), the selected
  positions (G1 then G2, recovered from what the MGF block received),
  the MGF block outputs e_1, e_2 at query 0, the three BN-necked levels,
  S_c, S_f, every loss term (CMPM and CMPC per level and weighted, the
  diversity term x lambda, the triplet term x 10, the total), the
  gradients of the CMPM / CMPC / diversity terms on the levels and of the
  triplet term on S, the BN running statistics after the step, and the
  gradients of the total on the input images and on the ``GRAD_PARAMS``.
* ``eval.*`` (``network.eval()`` after that step): selected positions,
  levels, the inference features and the score matrix of
  ``utils.metric.compute_topk``.

About 5 CPU-seconds; the file is 1.5 MB.
"""
import argparse
import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import json
import math
import os
import os.path as osp
import subprocess
import sys
import tempfile
import types
import warnings

os.environ['CUDA_VISIBLE_DEVICES'] = ''  # DataParallel stays a wrapper

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

OFFICIAL_URL = 'https://github.com/shuanglinyan/CFine'
OFFICIAL_COMMIT = 'ab330e3f712ffa7ab5c6338f220dd9bb4ff43376'
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_OUT = osp.join(ROOT, 'tests', 'data', 'fidelity')

# ---------------------------------------------------------------- sizes
IMG_SIZE, PATCH, WIDTH, VIT_LAYERS, VIT_HEADS = 64, 8, 64, 2, 2
BERT_CFG = dict(hidden_size=WIDTH, num_hidden_layers=2,
                num_attention_heads=4, intermediate_size=128,
                max_position_embeddings=128, type_vocab_size=2,
                hidden_act='gelu', hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0, initializer_range=0.02,
                layer_norm_eps=1e-12)
MGF_HEADS = 2
NUM_CLASSES = 6
PIDS = [2, 5, 2, 0, 4, 5, 1, 3]
B = len(PIDS)
# (row = image, column = text): value added to S = S_c + S_f
OFFSET_ENTRIES = {(1, 0): 14., (1, 5): 12., (4, 5): 4., (4, 6): 8.,
                  (6, 7): 10., (7, 6): 10.}
#: parameters whose gradient (of the total loss) is stored, official names
GRAD_PARAMS = (
    'image_model.clip_model.conv1.weight',
    'image_model.clip_model.class_embedding',
    'image_model.clip_model.positional_embedding',
    'image_model.clip_model.transformer.resblocks.0.attn.in_proj_weight',
    'image_model.clip_model.transformer.resblocks.1.mlp.c_proj.bias',
    'image_model.clip_model.ln_post.weight',
    'language_model.textExtractor.embeddings.word_embeddings.weight',
    'language_model.textExtractor.embeddings.position_embeddings.weight',
    'language_model.textExtractor.encoder.layer.0.attention.self.query.'
    'weight',
    'language_model.textExtractor.encoder.layer.1.intermediate.dense.weight',
    'language_model.textExtractor.encoder.layer.1.output.LayerNorm.weight',
    'block.layers.0.ln_0.weight',
    'block.layers.0.self_attn.in_proj_weight',
    'block.layers.0.attn.in_proj_weight',
    'block.layers.0.attn.out_proj.bias',
    'block.layers.0.mlp.c_fc.weight',
    'block.layers.0.ln_2.bias',
    'bottleneck_image.weight',
    'bottleneck_text.weight',
    'W',
)
#: the official files this script runs (their sha256 go into ``meta``)
OFFICIAL_FILES = ('train.py', 'train_config.py', 'models/model.py',
                  'models/clip.py', 'models/layers.py', 'models/bert.py',
                  'models/pytorch_transformers/modeling_bert.py',
                  'models/pytorch_transformers/tokenization_bert.py',
                  'utils/metric.py', 'utils/CRLoss.py')
BERT_DIR = '/opt/data/private/Checkpoints/bert-base-uncased/'  # models/bert.py

# ---------------------------------------------------------------- captions
WORDS = dict(
    subj=['man', 'woman', 'person', 'boy', 'girl', 'lady'],
    verb=['walking', 'standing', 'carrying', 'holding', 'wearing'],
    col=['black', 'white', 'blue', 'red', 'grey', 'green', 'yellow', 'pink',
         'brown', 'dark', 'light', 'purple'],
    top=['shirt', 'jacket', 'coat', 'sweater', 'hoodie', 'vest', 'blouse'],
    bottom=['pants', 'jeans', 'shorts', 'skirt', 'trousers'],
    shoe=['shoes', 'sneakers', 'boots', 'sandals'],
    acc=['backpack', 'handbag', 'bag', 'hat', 'umbrella'],
)
# WordPiece: these words are split into pieces, 'umbrella' is unknown
PIECES = {'sweater': ('sweat', '##er'), 'sneakers': ('sneak', '##ers'),
          'backpack': ('back', '##pack')}
UNKNOWN = ('umbrella', )
FUNCTION_WORDS = ('a', 'in', 'on', 'the', 'and', 'with', 'her', 'his',
                  'long', 'hair', 'shoulder', 's', 'style', 'cafe')
# clauses per caption: piece lengths ([CLS] ... [SEP]) from > 100
# (truncated, no PAD) down to 9 (PAD and [CLS] in text group 1)
CLAUSES = (40, 13, 6, 1, 9, 4, 19, 2)


def make_captions() -> list:
    rng = np.random.default_rng(0)

    def w(kind):
        return WORDS[kind][rng.integers(len(WORDS[kind]))]

    caps = []
    for n in CLAUSES:
        parts = [f'A {w("subj")} {w("verb")} in a {w("col")} {w("top")}']
        for i in range(n):
            parts.append([
                f'{w("col")} {w("bottom")}', f'{w("col")} {w("shoe")}',
                f'a {w("col")} {w("acc")} on the shoulder',
                f'long {w("col")} hair'
            ][i % 4])
        caps.append(', '.join(parts) + '.')
    # case, an accent, an apostrophe, an exclamation mark
    caps[2] = caps[2][:-1] + " and the woman's Café-style SHOES!"
    return caps


def make_vocab() -> list:
    words = set(FUNCTION_WORDS)
    for kind in WORDS.values():
        words.update(kind)
    words -= set(PIECES) | set(UNKNOWN)
    for pieces in PIECES.values():
        words.update(pieces)
    return (['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] +
            [',', '.', '-', "'", '!'] + sorted(words))


# ------------------------------------------------------- running official
def log(msg: str) -> None:
    print(msg, flush=True)


def _cpu(dev):
    if isinstance(dev, str) and dev.startswith('cuda'):
        return 'cpu'
    if isinstance(dev, torch.device) and dev.type == 'cuda':
        return torch.device('cpu')
    return dev


def _stable_topk(self, k, dim=-1, largest=True, sorted=True):
    """``topk`` with ties in position order (a stable sort)."""
    values, indices = torch.sort(self, dim=dim, descending=largest,
                                 stable=True)
    return values.narrow(dim, 0, int(k)), indices.narrow(dim, 0, int(k))


@contextlib.contextmanager
def official_run(stable_topk: bool = True):
    """CUDA moves are no-ops (and ``topk`` is stable) while it runs."""
    saved = (torch.Tensor.cuda, nn.Module.cuda, torch.Tensor.to,
             nn.Module.to, torch.Tensor.topk)
    t_to, m_to = torch.Tensor.to, nn.Module.to
    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.to = lambda self, *a, **k: t_to(
        self, *[_cpu(x) for x in a], **{n: _cpu(v) for n, v in k.items()})
    nn.Module.to = lambda self, *a, **k: m_to(
        self, *[_cpu(x) for x in a], **{n: _cpu(v) for n, v in k.items()})
    if stable_topk:
        torch.Tensor.topk = _stable_topk
    try:
        yield
    finally:
        (torch.Tensor.cuda, nn.Module.cuda, torch.Tensor.to, nn.Module.to,
         torch.Tensor.topk) = saved


def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def _package(name: str, folder: str) -> types.ModuleType:
    """``folder`` as package ``name``, ahead of anything installed under
    that name, without running an ``__init__.py``."""
    mod = _module(name)
    mod.__path__ = [folder]
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None,
                                                  is_package=True)
    mod.__spec__.submodule_search_locations = mod.__path__
    return mod


def visual_placeholder() -> dict:
    """What ``clip.load('ViT-B/16').visual.state_dict()`` gives, at the small
    size (OpenAI's names; values are redrawn after construction)."""
    g = torch.Generator().manual_seed(0)
    grid = IMG_SIZE // PATCH
    sd = {'conv1.weight': torch.randn(WIDTH, 3, PATCH, PATCH, generator=g),
          'class_embedding': torch.randn(WIDTH, generator=g),
          'positional_embedding': torch.randn(grid * grid + 1, WIDTH,
                                              generator=g),
          'proj': torch.randn(WIDTH, 32, generator=g)}
    for ln in ('ln_pre', 'ln_post'):
        sd[f'{ln}.weight'], sd[f'{ln}.bias'] = torch.ones(WIDTH), torch.zeros(
            WIDTH)
    for i in range(VIT_LAYERS):
        p = f'transformer.resblocks.{i}.'
        shapes = {'attn.in_proj_weight': (3 * WIDTH, WIDTH),
                  'attn.in_proj_bias': (3 * WIDTH, ),
                  'attn.out_proj.weight': (WIDTH, WIDTH),
                  'attn.out_proj.bias': (WIDTH, ),
                  'ln_1.weight': (WIDTH, ), 'ln_1.bias': (WIDTH, ),
                  'mlp.c_fc.weight': (4 * WIDTH, WIDTH),
                  'mlp.c_fc.bias': (4 * WIDTH, ),
                  'mlp.c_proj.weight': (WIDTH, 4 * WIDTH),
                  'mlp.c_proj.bias': (WIDTH, ),
                  'ln_2.weight': (WIDTH, ), 'ln_2.bias': (WIDTH, )}
        for k, shape in shapes.items():
            sd[p + k] = torch.randn(*shape, generator=g) * 0.02
    return sd


def import_official(root: str, tmp: str) -> types.SimpleNamespace:
    """Import the official modules; returns them and the batch inputs."""
    if not osp.isfile(osp.join(root, 'models', 'model.py')):
        sys.exit(f'{root} is not a CFine checkout (models/model.py missing)')
    visual = visual_placeholder()

    def clip_load(name, device=None, jit=False):
        # OpenAI's clip.load on the CPU returns fp32 weights
        assert name == 'ViT-B/16', name
        holder = types.SimpleNamespace(
            state_dict=lambda: {k: v.clone() for k, v in visual.items()})
        return types.SimpleNamespace(visual=holder), None

    _module('clip', load=clip_load)
    missing = {n for n in ('six', 'boto3', 'botocore', 'requests')
               if importlib.util.find_spec(n) is None}
    for name, attrs in (('six', dict(PY2=False, PY3=True)),
                        ('boto3', dict(resource=None)), ('botocore', {}),
                        ('botocore.config', dict(Config=dict)),
                        ('botocore.exceptions', dict(ClientError=Exception)),
                        ('requests', dict(get=None, head=None))):
        if name.split('.')[0] in missing:
            _module(name, **attrs)
    _module('datasets')
    _module('datasets.pedes', CuhkPedes=None)
    _module('test', test=None)  # test.py: evaluation (matplotlib, cv2)
    sys.path.insert(0, root)
    _package('models', osp.join(root, 'models'))
    _package('utils', osp.join(root, 'utils'))
    _module('models.modeling', VisionTransformer=None, CONFIGS={})
    _module('models.resnet', resnet50=None)
    # its __init__.py imports every model family of pytorch_transformers
    pt = _package('models.pytorch_transformers',
                  osp.join(root, 'models', 'pytorch_transformers'))
    mb = importlib.import_module('models.pytorch_transformers.modeling_bert')
    tb = importlib.import_module(
        'models.pytorch_transformers.tokenization_bert')
    pt.BertModel, pt.BertConfig = mb.BertModel, mb.BertConfig
    pt.BertTokenizer = tb.BertTokenizer
    off = types.SimpleNamespace(
        clip=importlib.import_module('models.clip'),
        layers=importlib.import_module('models.layers'),
        bert=importlib.import_module('models.bert'),
        model=importlib.import_module('models.model'),
        metric=importlib.import_module('utils.metric'),
        crloss=importlib.import_module('utils.CRLoss'),
        train_config=importlib.import_module('train_config'),
        train=importlib.import_module('train'),
        bert_modeling=mb)
    for mod in vars(off).values():
        assert osp.abspath(mod.__file__).startswith(osp.abspath(root)), mod

    # Bert() reads bert-base-uncased from fixed folders: serve small files
    vocab = make_vocab()
    folder = osp.join(tmp, 'bert-base-uncased')
    os.makedirs(folder)
    with open(osp.join(folder, 'bert-base-uncased-vocab.txt'), 'w') as f:
        f.write('\n'.join(vocab) + '\n')
    with open(osp.join(folder, 'bert_config.json'), 'w') as f:
        json.dump(dict(BERT_CFG, vocab_size=len(vocab)), f)
    torch.manual_seed(1)
    torch.save(mb.BertModel(mb.BertConfig.from_pretrained(
        osp.join(folder, 'bert_config.json'))).state_dict(),
        osp.join(folder, 'pytorch_model.bin'))
    for cls in (off.bert.BertTokenizer, off.bert.BertConfig,
                off.bert.BertModel):
        _serve_from(cls, folder)

    # sizes the official code hard-codes
    vit = off.model.VisionTransformer_clip

    def small_heads_vit(**kw):
        log(f'  patched: ViT heads width // 64 = {kw["heads"]} -> '
            f'{VIT_HEADS} (head width {WIDTH // VIT_HEADS})')
        return vit(**dict(kw, heads=VIT_HEADS))

    block = off.model.ResidualAttention

    def small_block(num_layers, d_model, n_head, att_type='cross', **kw):
        log(f'  patched: MGF block d_model {d_model} -> {WIDTH}, n_head '
            f'{n_head} -> {MGF_HEADS}')
        return block(num_layers, WIDTH, MGF_HEADS, att_type, **kw)

    off.model.VisionTransformer_clip = small_heads_vit
    off.model.ResidualAttention = small_block
    off.vocab = vocab
    return off


def _serve_from(cls, folder: str) -> None:
    orig = cls.from_pretrained.__func__

    def from_pretrained(klass, path, *a, **k):
        if isinstance(path, str) and path.startswith(BERT_DIR):
            path = osp.join(folder, path[len(BERT_DIR):])
        return orig(klass, path, *a, **k)

    cls.from_pretrained = classmethod(from_pretrained)


def official_args(off) -> argparse.Namespace:
    argv, sys.argv = sys.argv, ['train.py']
    try:
        args = off.train_config.parse_args()
    finally:
        sys.argv = argv
    args.feature_size = WIDTH
    args.num_classes = NUM_CLASSES
    args.batch_size = B
    args.resume = False
    return args


# -------------------------------------------------------------- weights
def _draw(name: str, value: torch.Tensor, g: torch.Generator):
    shape = value.shape
    if name.endswith('running_var'):
        return 0.5 + torch.rand(shape, generator=g)
    if name.endswith('running_mean'):
        return 0.1 * torch.randn(shape, generator=g)
    if value.dim() <= 1:
        if name.endswith('weight'):  # layer / batch norm scales
            return 1 + 0.2 * torch.randn(shape, generator=g)
        return 0.1 * torch.randn(shape, generator=g)
    return torch.randn(shape, generator=g) / math.sqrt(value[0].numel())


def randomize_(module: nn.Module, seed: int) -> None:
    """Redraw every floating tensor of ``module``, fp16-representable."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in module.state_dict(keep_vars=True).items():
            if value.is_floating_point():
                value.copy_(_draw(name, value, g).half().float())


# -------------------------------------------------------------- recording
class Recorder:
    """Forward hooks on the official network's parts."""

    def __init__(self, net: nn.Module):
        self.data = dict(block_in=[], block_out=[])
        self.handles = [
            net.image_model.register_forward_hook(self._image),
            net.language_model.register_forward_hook(self._text),
            net.block.register_forward_hook(self._block),
            net.register_forward_hook(
                lambda m, i, o: self.data.update(out=o)),
        ]

    def _image(self, mod, args, out):
        self.data.update(V=out[0], Av=out[1][-1][:, 0])

    def _text(self, mod, args, out):
        self.data.update(T=out[0], At=out[1][-1][:, 0])

    def _block(self, mod, args, out):
        self.data['block_in'].append(args)
        self.data['block_out'].append(out)

    def remove(self):
        for h in self.handles:
            h.remove()

    def indices(self):
        """Selected positions (G1 then G2) of images and texts, recovered
        from the query rows the MGF block received (exact copies of rows
        of the full sequence)."""
        found = []
        for args in self.data['block_in']:
            x, y = args[0], args[1]
            eq = (x[:, 1:, None, :] == y[:, None, :, :]).all(-1)
            if not bool((eq.sum(-1) == 1).all()):
                raise RuntimeError('selected rows are not unique copies')
            found.append(eq.float().argmax(-1))
        img_g1, img_g2, txt_g1, txt_g2 = found  # the order of the calls
        return torch.cat([img_g1, img_g2], 1), torch.cat([txt_g1, txt_g2], 1)


class NoStep:
    """``train()`` ends with ``zero_grad(); backward(); step()``: no step,
    so the gradients stay and the weights stay the stored ones."""

    param_groups = [dict(lr=0.0)]

    def zero_grad(self):
        pass

    def step(self):
        pass


# ------------------------------------------------------------------ checks
def check_selection(scores: torch.Tensor, k: int, what: str) -> None:
    """No near-ties among the selected ranks (exact zeros are the tie the
    stable topk settles); the unmodified topk agrees off the zeros."""
    s = scores.detach().clone()
    s[:, 0] = 0
    ranked = torch.sort(s, dim=1, descending=True, stable=True)
    top = ranked.values[:, :2 * k + 1]
    gaps = top[:, :-1] - top[:, 1:]
    both_zero = (top[:, :-1] == 0) & (top[:, 1:] == 0)
    gap = gaps[~both_zero].min().item()
    if gap < 1e-6:
        raise RuntimeError(f'{what}: selection scores {gap:.1e} apart')
    plain = torch.stack([
        s[b].topk(s.shape[1], largest=True, sorted=True)[1][:2 * k]
        for b in range(s.shape[0])])  # the unpatched topk
    nonzero = s.gather(1, plain) != 0
    same = bool((plain[nonzero] == ranked.indices[:, :2 * k][nonzero]).all())
    if not same:
        raise RuntimeError(f'{what}: unmodified topk differs off the ties')
    zeros = int((top[:, :2 * k] == 0).sum())
    log(f'  {what} selection: K={k}, smallest gap {gap:.1e}, {zeros} '
        'selected slots at score 0 ([CLS]/PAD ties)')


def check_fcd(img_g1: torch.Tensor, txt_g1: torch.Tensor, kw: int,
              kp: int) -> None:
    """FCD's top-k picks on R = softmax_words(cos) are clear-cut."""
    p = img_g1 / img_g1.norm(dim=-1, keepdim=True)
    w = txt_g1 / txt_g1.norm(dim=-1, keepdim=True)
    r = torch.bmm(p, w.transpose(1, 2)).softmax(2)
    gaps = []
    for dim, k in ((2, kw), (1, kp)):
        v = r.sort(dim, descending=True).values
        gaps.append((v.narrow(dim, k - 1, 1) - v.narrow(dim, k, 1)).min())
    gap = min(g.item() for g in gaps)
    if gap < 1e-6:
        raise RuntimeError(f'FCD top-k choices {gap:.1e} apart')
    log(f'  FCD top-{kw}/{kp} picks: smallest gap {gap:.1e}')


def check_triplets(s: torch.Tensor, pids: torch.Tensor) -> None:
    """Both sides have >= 2 violating anchors; no choice is marginal."""
    neg = pids[:, None] != pids[None]
    counts, gap = [], float('inf')
    for m in (s, s.t()):
        pos = m.diagonal()[:, None]
        d = (m - pos)[neg]
        gap = min(gap, d.abs().min().item())
        violating = ((m > pos) & neg).any(1)
        counts.append(int(violating.sum()))
        masked = m.masked_fill(~neg, float('-inf'))
        top2 = masked.topk(2, dim=1).values
        gap = min(gap, (top2[:, 0] - top2[:, 1]).min().item())
    if min(counts) < 2 or gap < 1e-3:
        raise RuntimeError(f'triplet: violating anchors {counts}, smallest '
                           f'gap {gap:.1e}: change OFFSET_ENTRIES')
    same = ~neg & ~torch.eye(len(pids), dtype=torch.bool)
    outranks = int(((s - s.diagonal()[:, None]) > 0)[same].sum())
    log(f'  triplet: violating image / text anchors {counts}, smallest gap '
        f'{gap:.2g}; same-identity columns above the positive: {outranks}')


# --------------------------------------------------------------- the golden
def sha256(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def git_commit(root: str):
    try:
        return subprocess.run(['git', '-C', root, 'rev-parse', 'HEAD'],
                              capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def make_golden(root: str, commit: str) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter('ignore')
        off = import_official(root, tmp)
        args = official_args(off)
        torch.manual_seed(2)
        with official_run(), contextlib.redirect_stdout(sys.stderr):
            compute_loss = off.metric.Loss(args)  # holds W (train.py)
            cr_loss_fun = off.crloss.CRLoss(args)
            # config.network_config: DataParallel(Model(args))
            network = nn.DataParallel(off.model.Model(args))
        randomize_(network, seed=303)
        randomize_(compute_loss, seed=304)
        net = network.module
        out.update({f'sd.{k}': v.detach().clone().half().numpy()
                    if v.is_floating_point() else v.clone().numpy()
                    for k, v in network.state_dict().items()})
        out['W'] = compute_loss.W.detach().half().numpy()

        captions = make_captions()
        g = torch.Generator().manual_seed(5)
        images = torch.randn(B, 3, IMG_SIZE, IMG_SIZE,
                             generator=g).half().float()
        pids = torch.tensor(PIDS)
        tokens, segments, masks, _ = net.language_model.pre_process(captions)
        lengths = (tokens != 0).sum(1).tolist()
        log(f'  captions: {lengths} word pieces ([CLS]/[SEP] included; 100 '
            'is truncated)')
        offset = torch.zeros(B, B)
        for (i, j), v in OFFSET_ENTRIES.items():
            offset[i, j] = v

        # ---- one official train() step
        rec = Recorder(net)
        store = {}

        def loss_fn(img_output, text_output, img_f, text_f, labels, lam):
            res = compute_loss(img_output, text_output, img_f, text_f,
                               labels, lam)
            store['in'], store['out'] = (img_output, text_output, img_f,
                                         text_f, labels, lam), res
            return res

        def triplet_fn(sim, labels, semi):
            s = sim + offset  # the violation device
            loss = cr_loss_fun(s, labels, semi=semi)
            store['S'], store['terms'] = s, terms(s, loss)
            return loss

        def terms(s, sim_loss):
            img_out, txt_out, img_f, txt_f, labels, lam = store['in']
            cmpm, cmpc, loss = store['out'][:3]
            t = {}
            for i in range(len(img_out)):
                t[f'cmpm_level{i}'] = compute_loss.compute_cmpm_loss(
                    img_out[i], txt_out[i], labels)[0]
                t[f'cmpc_level{i}'] = compute_loss.compute_cmpc_loss(
                    img_out[i], txt_out[i], labels)[0]
            t.update(cmpm=cmpm, cmpc=cmpc, div=lam * (
                compute_loss.diversity_loss(img_f[:, 1:]) +
                compute_loss.diversity_loss(txt_f[:, 1:])),
                triplet=sim_loss * 10, total=loss + sim_loss * 10)
            assert abs((cmpm + cmpc + t['div'] - loss).item()) < 1e-4
            levels = [*img_out, *txt_out]
            grads = {}
            for name in ('cmpm', 'cmpc', 'div'):
                gr = torch.autograd.grad(t[name], levels, retain_graph=True,
                                         allow_unused=True)
                gr = [torch.zeros_like(l) if x is None else x
                      for x, l in zip(gr, levels)]
                grads[f'dlevels.{name}.img'] = torch.stack(gr[:3], 1)
                grads[f'dlevels.{name}.txt'] = torch.stack(gr[3:], 1)
            grads['dS.triplet'] = torch.autograd.grad(
                t['triplet'], s, retain_graph=True)[0]
            return {k: v.detach().clone() for k, v in {**t, **grads}.items()}

        image_leaf = images.clone().requires_grad_(True)
        loader = [(image_leaf, list(captions), pids)]
        with official_run(), contextlib.redirect_stdout(sys.stderr):
            avg_loss, _, _ = off.train.train(1, loader, network, NoStep(),
                                             loss_fn, triplet_fn, args)
        rec.remove()
        d = rec.data
        img_out, txt_out, _, _, sim_cs, sim_cd = d['out']
        assert abs(avg_loss - store['terms']['total'].item()) < 1e-4
        img_idx, txt_idx = rec.indices()
        k_v = int(d['V'].shape[1] * args.img_k_ratio)
        k_t = int(d['T'].shape[1] * args.text_k_ratio)
        check_selection(d['Av'], k_v, 'image')
        check_selection(d['At'], k_t, 'text')
        check_fcd(d['block_in'][0][0][:, 1:].detach(),
                  d['block_in'][2][0][:, 1:].detach(), args.pos_kw,
                  args.pos_kp)
        check_triplets(store['S'].detach(), pids)

        def f32(x):
            return x.detach().float().clone().numpy()

        out.update({
            'train.img_global': f32(d['V'][:, 0]),
            'train.txt_global': f32(d['T'][:, 0]),
            'train.img_attn': f32(d['Av']),
            'train.txt_attn': f32(d['At']),
            'train.img_idx': img_idx.numpy(),
            'train.txt_idx': txt_idx.numpy(),
            'train.img_enhanced': f32(torch.stack(
                [o[:, 0] for o in d['block_out'][:2]], 1)),
            'train.txt_enhanced': f32(torch.stack(
                [o[:, 0] for o in d['block_out'][2:]], 1)),
            'train.img_levels': f32(torch.stack(img_out, 1)),
            'train.txt_levels': f32(torch.stack(txt_out, 1)),
            'train.S_c': f32(sim_cs),
            'train.S_f': f32(sim_cd),
            'train.grad.images': f32(image_leaf.grad),
        })
        for k, v in store['terms'].items():
            key = k if k.startswith(('dlevels.', 'dS.')) else f'loss.{k}'
            out[f'train.{key}'] = f32(v)
        params = dict(net.named_parameters(), W=compute_loss.W)
        for name in GRAD_PARAMS:
            out[f'train.grad.{name}'] = f32(params[name].grad)
        for bn in ('bottleneck_image', 'bottleneck_text'):
            for stat in ('running_mean', 'running_var',
                         'num_batches_tracked'):
                value = getattr(getattr(net, bn), stat)
                out[f'train.{bn}.{stat}'] = (value.numpy().copy()
                                             if stat.startswith('num') else
                                             f32(value))

        # ---- eval mode, after the step (BN running statistics updated)
        network.eval()
        rec = Recorder(net)
        with torch.no_grad(), official_run():
            o_img, o_txt = network(images, tokens, segments, masks)
        rec.remove()
        e_img_idx, e_txt_idx = rec.indices()
        q = torch.stack(o_img, 0)
        gl = torch.stack(o_txt, 0)
        _, score = off.metric.compute_topk(q, gl, pids.float(), pids.float(),
                                           [1], True)
        # compute_topk's features: concatenated levels, L2-normalised
        qf = q.permute(1, 0, 2).reshape(B, -1)
        gf = gl.permute(1, 0, 2).reshape(B, -1)
        out.update({
            'eval.img_idx': e_img_idx.numpy(),
            'eval.txt_idx': e_txt_idx.numpy(),
            'eval.img_levels': f32(torch.stack(o_img, 1)),
            'eval.txt_levels': f32(torch.stack(o_txt, 1)),
            'eval.img_feat': f32(qf / qf.norm(dim=1, keepdim=True)),
            'eval.txt_feat': f32(gf / gf.norm(dim=1, keepdim=True)),
            'eval.scores': f32(score),
        })

        meta = dict(
            paper='Yan et al., CLIP-Driven Fine-grained Text-Image Person '
            'Re-identification, IEEE TIP 2023, arXiv 2210.10276',
            official_code=OFFICIAL_URL, official_commit=commit,
            official_sha256={f: sha256(osp.join(root, f))
                             for f in OFFICIAL_FILES},
            torch=torch.__version__,
            image=dict(size=IMG_SIZE, patch=PATCH, width=WIDTH,
                       layers=VIT_LAYERS, heads=VIT_HEADS),
            bert=dict(BERT_CFG, vocab_size=len(off.vocab)),
            mgf_heads=MGF_HEADS, num_classes=NUM_CLASSES, k_v=k_v, k_t=k_t,
            options={k: getattr(args, k) for k in (
                'img_k_ratio', 'text_k_ratio', 'scale_cs', 'scale_cd',
                'pos_kw', 'pos_kp', 'margin', 'lambda_diversity',
                'epsilon', 'CMPM', 'CMPC', 'feature_size', 'num_classes')},
            triplet_weight=10, caption_lengths=lengths,
            patches=['ViT heads width // 64 -> 2',
                     'MGF block 768 wide, 12 heads -> 64 wide, 2 heads'],
            devices=['stable topk (official side)',
                     'offset added to S before the triplet loss'])
        out.update(
            meta=np.array(json.dumps(meta, sort_keys=True)),
            captions=np.array(captions), vocab=np.array(off.vocab),
            images=images.half().numpy(), tokens=tokens.numpy(),
            pids=pids.numpy(), offset=offset.numpy())
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cfine-root', required=True,
                        help=f'a checkout of {OFFICIAL_URL}')
    parser.add_argument('--out', default=DEFAULT_OUT,
                        help='folder to write cfine_tiny.npz to')
    parser.add_argument(
        '--official-commit',
        help='commit of the checkout when it is not a git clone (default: '
        f'git rev-parse HEAD; the goldens were made at {OFFICIAL_COMMIT})')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    root = osp.abspath(args.cfine_root)
    commit = args.official_commit or git_commit(root) or 'unknown'
    if commit != OFFICIAL_COMMIT:
        log(f'note: official commit {commit}, the goldens were made at '
            f'{OFFICIAL_COMMIT}')
    log(f'CFine ({OFFICIAL_URL} @ {commit[:7]}) from {root}')
    golden = make_golden(root, commit)
    os.makedirs(args.out, exist_ok=True)
    path = osp.join(args.out, 'cfine_tiny.npz')
    np.savez_compressed(path, **golden)
    log(f'wrote {path} ({os.path.getsize(path) / 1024:.0f} KiB, '
        f'{len(golden)} arrays)')


if __name__ == '__main__':
    main()
