"""Golden files for the released-checkpoint converters, from the official code.

    python tools/fidelity/make_converter_goldens.py --official-root DIR
        [--out tests/data/fidelity/converters] [--only NAME]

``DIR`` holds the authors' code, one folder per method (clones of the
repositories, at the commits named in ``tests/data/fidelity/PROVENANCE.md``):

* ``DIR/clipreid``: github.com/Syliz517/CLIP-ReID
* ``DIR/irra``: github.com/anosorae/IRRA
* ``DIR/cfine``: github.com/shuanglinyan/CFine

For each method the script builds the official model, small, with seeded
random weights, writes its checkpoint in the layout the official training
script saves, and writes a few preprocessed inputs with the official
model's inference features. ``tests/test_tools/test_released_converters.py``
converts those checkpoints with ``tools/model_converters/*_to_mmreid.py``,
runs this project's models on the same inputs and compares.

How the official code is run (on the CPU, nothing of it edited):

* ``.cuda()`` / ``.to('cuda')`` are no-ops while it runs; third-party
  modules it imports but these models never use are stand-ins.
* Its CLIP comes from a small OpenAI-format TorchScript archive written
  here (fp16 weights and ``input_resolution`` / ``context_length`` /
  ``vocab_size`` entries, like ``ViT-B-16.pt``), read by the official
  loaders; CFine's ``clip.load`` and its BERT folder paths are redirected
  to small models built with the official classes.
* Sizes are reduced wherever the official code takes them from the
  weights or from its options. Where it hard-codes them, the script
  rebuilds those modules at the small size and prints so: CLIP-ReID's
  classifiers and BNNecks (768/512), prompt contexts (512) and SIE table
  (768); CFine's MGF block (768 wide, 12 heads: the official constructor
  is called with 64 and 2). CLIP-ReID's image encoder indexes
  ``resblocks[:11]``/``resblocks[11]``, so its tower keeps 12 blocks.
* After building, every weight is drawn again from a seeded generator,
  layer/batch norms away from 1/0 and BN statistics away from 0/1, so a
  swapped or dropped tensor changes the features; only CLIP-ReID's
  embedded prompt template stays as the archive's token embedding gives
  it. Weights and inputs are rounded to fp16, and stored in fp16 (half the
  size) except IRRA's checkpoint, which keeps the mixed fp16/fp32 dtypes
  IRRA saves. The official features are computed in fp32 from exactly
  those values (IRRA, which runs in fp16 on GPUs, after ``model.float()``).

Each method runs in its own process: the three repositories use the same
top-level package names (``model``, ``models``, ``utils``, ``config``).
About half a CPU-minute in all; the files take 2.9 MB.
"""
import argparse
import contextlib
import importlib
import importlib.machinery
import json
import math
import os
import os.path as osp
import subprocess
import sys
import tempfile
import types
import warnings
from typing import Callable, Dict, Iterable, Iterator, Optional

import torch
import torch.nn as nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_OUT = osp.join(ROOT, 'tests', 'data', 'fidelity', 'converters')
METHODS = ('clipreid', 'irra', 'cfine')

# ------------------------------------------------------------------- sizes
# CLIP-ReID: 12 image blocks are hard-coded (resblocks[:11] / [11]); 64 is
# the narrowest width with a head (heads = width // 64 in OpenAI's CLIP).
CLIPREID_ARCH = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=64, layers=12, width=64, head_width=64,
                    patch_size=16),
    # the prompt template needs CLIP's whole BPE vocabulary (49408)
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=1,
                  layers=1))
CLIPREID_IMG = (64, 32)  # INPUT.SIZE_TRAIN: a 5x2 grid at stride 12
CLIPREID_CLASSES, CLIPREID_CAMS = 5, 3
# IRRA: any depth; a 256-token vocabulary (IRRA's vocab_size option for
# the MLM head, and the token embedding of the archive).
IRRA_ARCH = dict(
    embed_dim=64,
    vision_cfg=dict(image_size=64, layers=1, width=64, head_width=64,
                    patch_size=16),
    text_cfg=dict(context_length=77, vocab_size=256, width=64, heads=1,
                  layers=2))
IRRA_IMG = (64, 32)
IRRA_CLASSES = 7
# CFine: square input (its ViT takes the CLIP grid), 8-pixel patches so
# that 10% of the 36 patches is 3 tokens per group.
CFINE_ARCH = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=48, layers=2, width=64, head_width=64,
                    patch_size=8),
    text_cfg=dict(context_length=77, vocab_size=64, width=64, heads=1,
                  layers=1))
CFINE_BERT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=128, max_position_embeddings=128,
                  type_vocab_size=2)
CFINE_VOCAB = 500
CFINE_MGF_HEADS = 2
CFINE_CLASSES = 6
CFINE_TEXT_LENGTHS = (60, 45, 100, 73)  # [CLS] ... [SEP], then padding
BATCH = 4


# --------------------------------------------------------------- helpers
def log(msg: str) -> None:
    print(msg, flush=True)


class _Holder(nn.Module):
    """A scriptable module that only holds parameters and buffers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def write_openai_archive(path: str, arch: dict, seed: int) -> None:
    """A random CLIP in OpenAI's TorchScript layout (like ``ViT-B-16.pt``).

    The state dict of an open_clip ``CLIP`` of ``arch`` (OpenAI's names) in
    fp16, with OpenAI's three hyper-parameter entries, scripted into a
    module tree.
    """
    import open_clip
    torch.manual_seed(seed)
    model = open_clip.CLIP(**arch, quick_gelu=True)
    state = {
        k: v.detach().clone().half()
        for k, v in model.state_dict().items() if v.is_floating_point()
    }
    vision, text = arch['vision_cfg'], arch['text_cfg']
    state['input_resolution'] = torch.tensor(vision['image_size'])
    state['context_length'] = torch.tensor(text['context_length'])
    state['vocab_size'] = torch.tensor(text['vocab_size'])
    root = _Holder()
    for key, value in state.items():
        *parents, leaf = key.split('.')
        node = root
        for name in parents:
            if name not in node._modules:
                node.add_module(name, _Holder())
            node = node._modules[name]
        if value.is_floating_point():
            node.register_parameter(leaf, nn.Parameter(value, False))
        else:
            node.register_buffer(leaf, value)
    torch.jit.save(torch.jit.script(root), path)


def _draw(name: str, value: torch.Tensor,
          g: torch.Generator) -> torch.Tensor:
    """Random values of the right kind for one tensor."""
    shape = value.shape
    if name.endswith('running_var'):
        return 0.5 + torch.rand(shape, generator=g)
    if value.dim() <= 1:
        if name.endswith('weight'):  # layer / batch norm scales
            return 1 + 0.2 * torch.randn(shape, generator=g)
        return 0.1 * torch.randn(shape, generator=g)
    if name.endswith(('proj', 'text_projection')) and value.dim() == 2:
        fan_in = shape[0]  # used as x @ proj
    else:
        fan_in = value[0].numel()
    return torch.randn(shape, generator=g) / math.sqrt(fan_in)


def randomize_(module: nn.Module, seed: int,
               keep: Callable[[str], bool] = lambda name: False) -> None:
    """Draw every floating parameter and buffer of ``module`` again,
    rounded to fp16 precision, except those ``keep`` names."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in module.state_dict(keep_vars=True).items():
            if not value.is_floating_point() or keep(name):
                continue
            new = _draw(name, value, g).half().float()
            value.data.copy_(new.to(value.dtype))


def fp16_values(x: torch.Tensor) -> torch.Tensor:
    return x.half().float()


def half_floats(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Floating tensors in fp16 for storage (values are fp16 already)."""
    out = {}
    for key, value in state.items():
        value = value.detach().clone()
        if value.is_floating_point():
            assert torch.equal(value.half().float(), value.float()), key
            value = value.half()
        out[key] = value
    return out


@contextlib.contextmanager
def cpu_only() -> Iterator[None]:
    """``.cuda()`` and ``.to('cuda')`` stay on the CPU while it runs."""

    def cpu(dev):
        if isinstance(dev, str) and dev.startswith('cuda'):
            return 'cpu'
        if isinstance(dev, torch.device) and dev.type == 'cuda':
            return torch.device('cpu')
        return dev

    saved = (torch.Tensor.cuda, nn.Module.cuda, torch.Tensor.to,
             nn.Module.to)
    t_to, m_to = torch.Tensor.to, nn.Module.to

    def tensor_to(self, *args, **kwargs):
        if 'device' in kwargs:
            kwargs['device'] = cpu(kwargs['device'])
        return t_to(self, *[cpu(a) for a in args], **kwargs)

    def module_to(self, *args, **kwargs):
        if 'device' in kwargs:
            kwargs['device'] = cpu(kwargs['device'])
        return m_to(self, *[cpu(a) for a in args], **kwargs)

    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.to = tensor_to
    nn.Module.to = module_to
    try:
        yield
    finally:
        (torch.Tensor.cuda, nn.Module.cuda, torch.Tensor.to,
         nn.Module.to) = saved


def official_package(name: str, folder: str) -> types.ModuleType:
    """Register ``folder`` as package ``name`` without running an
    ``__init__.py``, ahead of anything installed under that name."""
    mod = types.ModuleType(name)
    mod.__path__ = [folder]
    mod.__spec__ = importlib.machinery.ModuleSpec(
        name, None, is_package=True)
    mod.__spec__.submodule_search_locations = mod.__path__
    sys.modules[name] = mod
    return mod


def stand_in(name: str, **attrs) -> types.ModuleType:
    """A module the official code imports but these models never use."""
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def save(path: str, obj) -> int:
    torch.save(obj, path)
    size = os.path.getsize(path)
    log(f'  wrote {osp.relpath(path, ROOT)} ({size / 1024:.0f} KiB)')
    return size


def images(seed: int, size) -> torch.Tensor:
    """Preprocessed images (normalised pixels), fp16 values."""
    g = torch.Generator().manual_seed(seed)
    return fp16_values(torch.randn(BATCH, 3, *size, generator=g))


# --------------------------------------------------------------- CLIP-ReID
def _clipreid_cfg(stride: int, sie: bool) -> types.SimpleNamespace:
    """The options of configs/person/vit_clipreid.yml that the model reads,
    with the README's SIE+OLP flags (SIE_CAMERA True, SIE_COE 1.0,
    STRIDE_SIZE [12, 12]) for the SIE+OLP variant."""
    ns = types.SimpleNamespace
    return ns(
        MODEL=ns(NAME='ViT-B-16', COS_LAYER=False, NECK='bnneck',
                 SIE_COE=1.0, SIE_CAMERA=sie, SIE_VIEW=False,
                 STRIDE_SIZE=[stride, stride]),
        INPUT=ns(SIZE_TRAIN=list(CLIPREID_IMG), SIZE_TEST=list(CLIPREID_IMG)),
        TEST=ns(NECK_FEAT='before'),
        DATASETS=ns(NAMES='market1501'))


def _clipreid_shrink_heads(model: nn.Module, cams: int) -> None:
    """build_transformer hard-codes in_planes 768 / in_planes_proj 512 and
    a 512-wide prompt: rebuild those modules at the small widths."""
    width = model.image_encoder.conv1.out_channels
    embed = model.image_encoder.proj.shape[1]
    text_width = model.prompt_learner.token_prefix.shape[-1]
    n = model.num_classes
    model.in_planes, model.in_planes_proj = width, embed
    model.classifier = nn.Linear(width, n, bias=False)
    model.classifier_proj = nn.Linear(embed, n, bias=False)
    model.bottleneck = nn.BatchNorm1d(width)
    model.bottleneck_proj = nn.BatchNorm1d(embed)
    model.bottleneck.bias.requires_grad_(False)
    model.bottleneck_proj.bias.requires_grad_(False)
    model.prompt_learner.cls_ctx = nn.Parameter(
        torch.empty(n, model.prompt_learner.n_cls_ctx, text_width))
    if hasattr(model, 'cv_embed'):
        model.cv_embed = nn.Parameter(torch.empty(cams, width))
    log(f'  patched: classifier/bottleneck widths 768/512 -> {width}/'
        f'{embed}, prompt width 512 -> {text_width}'
        + (f', cv_embed 768 -> {width}' if hasattr(model, 'cv_embed') else
           ''))


def _clipreid_outputs(model: nn.Module, x: torch.Tensor,
                      camids: Optional[torch.Tensor],
                      labels: torch.Tensor) -> Dict[str, torch.Tensor]:
    captured = {}
    hook = model.image_encoder.register_forward_hook(
        lambda m, i, o: captured.update(enc=o))
    out = {}
    with torch.no_grad():
        for neck in ('before', 'after'):
            model.neck_feat = neck
            out[f'feat_{neck}'] = model(x, cam_label=camids)
        hook.remove()
        x11, x12, xp = captured['enc']
        out.update(f11=x11[:, 0], f12=x12[:, 0], fp=xp[:, 0])
        out['text_feat'] = model(label=labels, get_text=True)
    model.neck_feat = 'before'
    return {k: v.detach().float().clone() for k, v in out.items()}


def make_clipreid(official: str, out: str, tmp: str) -> None:
    code = osp.join(official, 'clipreid')
    sys.path.insert(0, code)
    official_package('model', osp.join(code, 'model'))
    with warnings.catch_warnings(), cpu_only():
        warnings.simplefilter('ignore')
        mm = importlib.import_module('model.make_model_clipreid')
    archive = osp.join(tmp, 'clip-tiny.pt')
    write_openai_archive(archive, CLIPREID_ARCH, seed=0)
    # load_clip_to_cpu downloads OpenAI's archive: serve the small one
    mm.clip._download = lambda url, root=None: archive

    def build(stride, sie, seed):
        torch.manual_seed(seed)
        with cpu_only(), contextlib.redirect_stdout(sys.stderr):
            model = mm.make_model(
                _clipreid_cfg(stride, sie), num_class=CLIPREID_CLASSES,
                camera_num=CLIPREID_CAMS, view_num=1)
        _clipreid_shrink_heads(model, CLIPREID_CAMS)
        # the prompt buffers are the archive's embedded template: keep them
        randomize_(model, seed,
                   keep=lambda k: k.startswith('prompt_learner.token_'))
        return model.eval()

    x = images(1, CLIPREID_IMG)
    camids = torch.tensor([0, 2, 1, 2])
    labels = torch.tensor([4, 0, 2])

    log('CLIP-ReID ViT + SIE + OLP (stride 12, 3 cameras, SIE_COE 1.0)')
    sie_olp = build(12, True, seed=1)
    with cpu_only():
        io = _clipreid_outputs(sie_olp, x, camids, labels)
    state = sie_olp.state_dict()
    save(osp.join(out, 'clipreid_sie-olp_official.pt'), half_floats(state))
    save(osp.join(out, 'clipreid_sie-olp_io.pt'), dict(
        images=x.half(), camids=camids, labels=labels, **io))

    log('CLIP-ReID ViT (stride 16, no SIE)')
    plain = build(16, False, seed=2)
    # the same weights but the positional embedding, which has another
    # grid: stored as that one tensor next to the SIE+OLP checkpoint
    pos_key = 'image_encoder.positional_embedding'
    with torch.no_grad():
        plain_sd = plain.state_dict()
        for key, value in state.items():
            if key != pos_key and key in plain_sd:
                plain_sd[key].copy_(value)
    rebuilt = {k: v for k, v in state.items() if k != 'cv_embed'}
    rebuilt[pos_key] = plain.state_dict()[pos_key]
    assert set(rebuilt) == set(plain.state_dict())
    assert all(torch.equal(rebuilt[k], v)
               for k, v in plain.state_dict().items())
    with cpu_only():
        io = _clipreid_outputs(plain, x, None, labels)
    save(osp.join(out, 'clipreid_plain_io.pt'), dict(
        positional_embedding=rebuilt[pos_key].half(), images=x.half(),
        labels=labels, **io))


# -------------------------------------------------------------------- IRRA
def make_irra(official: str, out: str, tmp: str) -> None:
    code = osp.join(official, 'irra')
    sys.path.insert(0, code)
    official_package('model', osp.join(code, 'model'))
    build = importlib.import_module('model.build')
    archive = osp.join(tmp, 'clip-tiny.pt')
    write_openai_archive(archive, IRRA_ARCH, seed=10)
    vocab = IRRA_ARCH['text_cfg']['vocab_size']
    # IRRA's train.py options that build_model reads (README command:
    # --loss_names 'sdm+mlm+id', --MLM); cmt_depth and the MLM vocabulary
    # are options, reduced here
    args = types.SimpleNamespace(
        pretrain_choice=archive, img_size=IRRA_IMG, stride_size=16,
        temperature=0.02, loss_names='sdm+mlm+id', cmt_depth=1,
        vocab_size=vocab, id_loss_weight=1.0, mlm_loss_weight=1.0)
    log('IRRA (sdm+mlm+id)')
    torch.manual_seed(11)
    with contextlib.redirect_stdout(sys.stderr):
        model = build.build_model(args, num_classes=IRRA_CLASSES)
    # build_model converts the model to fp16 (convert_weights) as IRRA
    # trains and saves it: the random values keep each tensor's dtype
    randomize_(model, seed=12)
    model.eval()
    state = model.state_dict()
    dtypes = sorted({str(v.dtype) for v in state.values()})
    log(f'  state dict dtypes as IRRA saves them: {dtypes}')
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=1e-5)
    # what IRRA's Checkpointer.save('best', **arguments) writes: the model,
    # the optimizer and LRSchedulerWithWarmup states (here without Adam
    # moments, to stay small) and the training counters
    scheduler = dict(
        milestones=(20, 50), mode='cosine', gamma=0.1, warmup_factor=0.1,
        warmup_epochs=5, warmup_method='linear', total_epochs=60,
        target_lr=0, power=0.9, base_lrs=[1e-5], last_epoch=37,
        _step_count=38, verbose=False, _get_lr_called_within_step=False,
        _last_lr=[3.1e-6])
    save(osp.join(out, 'irra_official.pt'), dict(
        model=state, optimizer=optimizer.state_dict(), scheduler=scheduler,
        num_epoch=60, iteration=0, epoch=37))

    g = torch.Generator().manual_seed(13)
    x = images(14, IRRA_IMG)
    lengths = (9, 30, 77, 2)
    text = torch.zeros(BATCH, 77, dtype=torch.long)
    for row, n in enumerate(lengths):
        # <start_of_text> words <end_of_text>: EOT is the largest id
        text[row, :n] = torch.randint(1, vocab - 2, (n, ), generator=g)
        text[row, 0], text[row, n - 1] = vocab - 2, vocab - 1
    # IRRA runs in fp16 on the GPU; the golden features are the same
    # weights run in fp32, the precision of this project's model
    model.float()
    with torch.no_grad():
        img_feat = model.encode_image(x)
        text_feat = model.encode_text(text)
    save(osp.join(out, 'irra_io.pt'), dict(
        images=x.half(), texts=text, img_feat=img_feat.clone(),
        text_feat=text_feat.clone()))


# ------------------------------------------------------------------- CFine
def make_cfine(official: str, out: str, tmp: str) -> None:
    code = osp.join(official, 'cfine')
    sys.path.insert(0, code)
    # OpenAI's clip package (clip.load serves the small visual tower),
    # the dataset (scipy.misc) and the ImageNet-ViT/ResNet alternatives,
    # which CFine-CLIP does not use, and file_utils' download clients
    archive = osp.join(tmp, 'clip-tiny.pt')
    write_openai_archive(archive, CFINE_ARCH, seed=20)

    def clip_load(name, device=None, jit=False):
        # OpenAI's clip.load on the CPU returns an fp32 model
        state = torch.jit.load(archive, map_location='cpu').state_dict()
        visual = {k[len('visual.'):]: v.float()
                  for k, v in state.items() if k.startswith('visual.')}
        tower = types.SimpleNamespace(state_dict=lambda: dict(visual))
        return types.SimpleNamespace(visual=tower), None

    stand_in('clip', load=clip_load)
    stand_in('six', PY2=False, PY3=True)
    stand_in('boto3', resource=None)
    stand_in('botocore')
    stand_in('botocore.config', Config=dict)
    stand_in('botocore.exceptions', ClientError=Exception)
    stand_in('requests', get=None, head=None)
    stand_in('datasets')
    stand_in('datasets.pedes', CuhkPedes=None)
    official_package('models', osp.join(code, 'models'))
    official_package('utils', osp.join(code, 'utils'))
    stand_in('models.modeling', VisionTransformer=None, CONFIGS={})
    stand_in('models.resnet', resnet50=None)
    # models/pytorch_transformers/__init__.py imports every model family
    pt = official_package('models.pytorch_transformers',
                          osp.join(code, 'models', 'pytorch_transformers'))
    mb = importlib.import_module('models.pytorch_transformers.modeling_bert')
    tb = importlib.import_module(
        'models.pytorch_transformers.tokenization_bert')
    pt.BertModel, pt.BertConfig = mb.BertModel, mb.BertConfig
    pt.BertTokenizer = tb.BertTokenizer
    layers = importlib.import_module('models.layers')
    bert = importlib.import_module('models.bert')
    off = importlib.import_module('models.model')
    metric = importlib.import_module('utils.metric')
    argv, sys.argv = sys.argv, ['train.py']
    try:
        args = importlib.import_module('train_config').parse_args()
    finally:
        sys.argv = argv

    # models/bert.py reads bert-base-uncased from fixed folders: the same
    # official classes, at the small size
    vocab_file = osp.join(tmp, 'vocab.txt')
    with open(vocab_file, 'w') as f:
        words = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
        words += [f'w{i}' for i in range(CFINE_VOCAB - len(words))]
        f.write('\n'.join(words) + '\n')
    bert_cfg = mb.BertConfig(
        vocab_size_or_config_json_file=CFINE_VOCAB, **CFINE_BERT)
    bert.BertTokenizer = types.SimpleNamespace(
        from_pretrained=lambda path: tb.BertTokenizer(vocab_file))
    bert.BertConfig = types.SimpleNamespace(
        from_pretrained=lambda path: bert_cfg)
    bert.BertModel = types.SimpleNamespace(
        from_pretrained=lambda path, config: mb.BertModel(config))
    # Model hard-codes the MGF block at 768 wide with 12 heads
    width = CFINE_BERT['hidden_size']
    official_block = layers.ResidualAttention

    def small_block(num_layers, d_model, n_head, att_type='cross', **kw):
        log(f'  patched: MGF block d_model {d_model} -> {width}, n_head '
            f'{n_head} -> {CFINE_MGF_HEADS}')
        return official_block(num_layers, width, CFINE_MGF_HEADS, att_type,
                              **kw)

    off.ResidualAttention = small_block
    args.feature_size = width
    args.num_classes = CFINE_CLASSES

    log('CFine (CLIP ViT + BERT)')
    torch.manual_seed(21)
    with cpu_only(), contextlib.redirect_stdout(sys.stderr):
        # train.py: Loss(args) holds W; config.network_config wraps the
        # model in DataParallel (hence the module. prefix of the save)
        compute_loss = metric.Loss(args)
        network = nn.DataParallel(off.Model(args))
    randomize_(network, seed=22)
    randomize_(compute_loss, seed=23)
    network.eval()
    optimizer = torch.optim.Adam(network.parameters(), lr=args.lr)
    # train.py's save_checkpoint(state) (here without Adam moments)
    state = dict(network=half_floats(network.state_dict()),
                 optimizer=optimizer.state_dict(),
                 W=nn.Parameter(compute_loss.W.detach().half(),
                                requires_grad=True),
                 epoch=40)
    save(osp.join(out, 'cfine_official.pt'), state)

    g = torch.Generator().manual_seed(24)
    x = images(25, (CFINE_ARCH['vision_cfg']['image_size'], ) * 2)
    tokens = torch.zeros(BATCH, 100, dtype=torch.long)
    for row, n in enumerate(CFINE_TEXT_LENGTHS):
        tokens[row, :n] = torch.randint(5, CFINE_VOCAB, (n, ), generator=g)
        tokens[row, 0] = 2  # [CLS]
        if n < 100:
            tokens[row, n - 1] = 3  # [SEP] (cut off at 100 tokens)
    segments = torch.zeros_like(tokens)
    masks = (tokens != 0).long()
    captured = {}
    net = network.module
    hooks = [
        net.image_model.register_forward_hook(
            lambda m, i, o: captured.update(img_att=o[1][-1])),
        net.language_model.register_forward_hook(
            lambda m, i, o: captured.update(txt_att=o[1][-1])),
    ]
    with torch.no_grad(), cpu_only():
        img_out, text_out = network(x, tokens, segments, masks)
    for h in hooks:
        h.remove()
    _check_no_ties(captured['img_att'][:, 0], net.img_k_ratio, 'image')
    _check_no_ties(captured['txt_att'][:, 0], net.text_k_ratio, 'text')
    img_levels = torch.stack(img_out, dim=1)
    text_levels = torch.stack(text_out, dim=1)
    save(osp.join(out, 'cfine_io.pt'), dict(
        images=x.half(), texts=tokens, img_levels=img_levels.clone(),
        text_levels=text_levels.clone()))


def _check_no_ties(scores: torch.Tensor, ratio: float, what: str) -> None:
    """Token selection takes ``topk`` of these ``B x L`` [CLS]-row
    attention scores ([CLS] zeroed); with ties at a group boundary the
    official order would be arbitrary."""
    scores = scores.clone()
    scores[:, 0] = 0
    k = int(scores.shape[1] * ratio)
    ranked = scores.sort(dim=1, descending=True).values
    for b in range(scores.shape[0]):
        for cut in (k, 2 * k):
            if not ranked[b, cut - 1] > ranked[b, cut]:
                raise RuntimeError(f'{what} {b}: tied selection scores at '
                                   f'rank {cut}; pick other inputs')


MAKERS = dict(clipreid=make_clipreid, irra=make_irra, cfine=make_cfine)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--official-root',
        required=True,
        help='folder with the official code: clipreid/, irra/, cfine/')
    parser.add_argument(
        '--out', default=DEFAULT_OUT, help='where to write the files')
    parser.add_argument(
        '--only', choices=METHODS, help='one method, in this process')
    return parser.parse_args(argv)


def main(argv: Optional[Iterable[str]] = None) -> None:
    args = parse_args(argv)
    # torch.jit's deprecation notices, timm's moved-module notice
    warnings.filterwarnings('ignore', category=FutureWarning)
    official = osp.abspath(args.official_root)
    missing = [m for m in (args.only, ) if m] or list(METHODS)
    missing = [m for m in missing if not osp.isdir(osp.join(official, m))]
    if missing:
        sys.exit(f'{official} lacks {missing}: pass the folder holding the '
                 'official repositories as clipreid/, irra/, cfine/')
    os.makedirs(args.out, exist_ok=True)
    if args.only:
        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as tmp:
            MAKERS[args.only](official, args.out, tmp)
        return
    for method in METHODS:
        subprocess.run([
            sys.executable, osp.abspath(__file__), '--official-root',
            official, '--out', args.out, '--only', method
        ], check=True)
    sizes = {
        f: os.path.getsize(osp.join(args.out, f))
        for f in sorted(os.listdir(args.out)) if f.endswith('.pt')
    }
    log(json.dumps(sizes, indent=1))
    log(f'total {sum(sizes.values()) / 1024:.0f} KiB')


if __name__ == '__main__':
    main()
