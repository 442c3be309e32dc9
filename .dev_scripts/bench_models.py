"""Model-side benchmark: inference, training step and data pipeline cost.

Usage::

    python .dev_scripts/bench_models.py [--quick] [--json out.json]
        [--sections inference train data pipeline_real] [--repeats N]
        [--clock cpu|wall] [--threads N]

Every figure is a *ratio* of two times measured in the same process, on
the same input, interleaved round by round (so a change of machine load
hits both sides alike), each side the best of ``N`` runs after warm-up
(``ratio``); the median of the per-round ratios (``ratio_paired``) is a
cross-check. Absolute seconds are recorded for context only. Times are
this process's CPU time by default (``--clock cpu``; the wall-clock ratio
is always recorded too): on a shared machine the wall time of one call
swings by 10x with the load, its CPU time by a few percent. Models are
built from the real configs (``mmengine.config.Config.fromfile`` and
``mmreid_clip.registry.MODELS``) with random weights (every ``pretrained``
replaced by None; BERT-base from its architecture), on CPU, with torch's
intra-op thread count as configured (e.g. ``OMP_NUM_THREADS``) unless
``--threads`` says otherwise; the count used is in the report. On a loaded
2-core machine, 2 threads spin-wait for each other and make even
identical computations differ by 2x between calls; ``--threads 1`` gives
ratios stable to a few percent there.

Sections (each a function returning a dict, for
``.dev_scripts/benchmark.py`` too):

* :func:`bench_inference`: feature extraction of each method against the
  bare encoders on the same batch. CFine (``docs/methods/cfine.md`` §9): image
  side
  ``model.extract_feat({'images': x})`` (tower with the last-block attention,
  MGF, BN-necked levels, L2norm of the concatenation) against the plain CLIP
  image tower (the method's image-encoder config without ``output_attn``),
  text side likewise; target <= 1.10. CCAF (``docs/methods/ccaf.md`` §10):
  ``model.extract_img_feat(x)`` against the bare
  :class:`OpenCLIPReIDVisionTransformer` forward, target <= 1.02, and
  against CLIP-ReID (the same path: ~1.00). Sizes: clip-tiny (the
  SynthPedes / SynthCC demo configs) and ViT-B/16 (CUHK-PEDES with
  BERT-base, PRCC; not with ``--quick``). Every model is in ``eval()``
  under ``torch.inference_mode()``; forward pre-hooks on the training-only
  modules (CFR, FCD, losses; text tower, prompts, BNNeck head, IFP, CFM)
  count their calls during the timed runs, which must be 0.
* :func:`bench_train_step`: one ``model.train_step`` (data preprocessor,
  forward, backward, optimizer step(s), with the config's optim wrapper) of
  each method against its baseline, on real batches of the configs' own
  train dataloaders over SynthPedes / SynthCC generated into a temporary
  folder: CFine-tiny vs the tiny CLIP text-image baseline (target <= 1.5),
  CCAF-tiny stage 2 vs CLIP-ReID-tiny stage 2 (no target: CCAF encodes the
  raw and the shielding view and runs the clothes-prompt examiner through
  the text tower every step, so about 2x and more is expected).
* :func:`bench_data_pipeline`: samples/s of the configs' train dataloaders
  (with the configured ``num_workers`` and with 0; the full run also with
  one worker per core) against the samples/s the model's train step
  consumes at the same batch size; the pipeline is not the bottleneck when
  the ratio is > 1.
* ``pipeline_real`` (not in the default run; ``bench_pipeline_real.py``):
  the ViT-B/16 configs' train pipelines at real resolution over JPEGs of
  realistic source sizes, per CPU worker, with the transform breakdown,
  the decoders available offline and the workers needed per GPU rate.
"""
import argparse
import atexit
import contextlib
import copy
import gc
import json
import math
import os
import os.path as osp
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn as nn

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# the sibling bench_common imports as a top-level module, also when a test
# loads this file by path
_HERE = osp.dirname(osp.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from bench_common import machine_info  # noqa: E402

#: The configs benchmarked, by short name (paths relative to the repo root).
CONFIGS: Dict[str, str] = {
    'cfine_tiny': 'configs/cfine/cfine_clip-tiny_synthpedes-tiny.py',
    'baseline_tiny': 'configs/baselines/clip-baseline_synthpedes-tiny.py',
    'ccaf_tiny': 'configs/ccaf/ccaf_clip-tiny_synthcc-tiny.py',
    'clipreid_tiny':
    'configs/ccaf/ccaf_clip-tiny_synthcc-tiny_ablation-baseline.py',
    'cfine_vitb': 'configs/cfine/cfine_vit-b16-bert_cuhk-pedes.py',
    'ccaf_vitb': 'configs/ccaf/ccaf_vit-b16_prcc.py',
    'clipreid_vitb': 'configs/clip_reid/clip-reid_vit-b16_prcc.py',
}
#: Targets of the ratios (method / reference), where the project sets one.
TARGETS: Dict[str, float] = {
    'cfine_inference': 1.10,
    'ccaf_inference': 1.02,
    'ccaf_vs_clipreid_inference': 1.02,
    'cfine_train_step': 1.5,
    'pipeline_over_model': 1.0,
}
#: ``bert-base-uncased``'s vocabulary size: the ViT-B/16 CFine config names
#: a local checkpoint folder; without it the tower is built from
#: ``BERT_ARCHS['bert-base']`` with this vocabulary, the same shapes.
BERT_BASE_UNCASED_VOCAB = 30522
#: BERT WordPiece ids of [CLS] and [SEP] in bert-base-uncased, and the
#: first id of an ordinary word piece (0..999 are [PAD], [unused*], ...).
BERT_CLS, BERT_SEP, BERT_FIRST_WORD = 101, 102, 1000
#: Caption lengths in tokens, special tokens included, drawn uniformly:
#: CUHK-PEDES captions average about 23 words, ~30 word pieces with
#: [CLS]/[SEP], and padding fills the rest.
CAPTION_TOKENS = (20, 45)
#: Training-only children of each model class: forward pre-hooks on their
#: whole subtrees count calls during the inference timings.
TRAINING_ONLY = {
    'CFine': ('cfr', 'fcd', 'losses', 'sim_losses'),
    'CLIPTextImageReID': ('losses', 'id_head'),
    'CLIPReID': ('text_encoder', 'id_prompt', 'head', 'ifp', 'cfm',
                 'stage1_loss', 'id_loss', 'triplet_loss', 'i2t_loss'),
}
TRAINING_ONLY['CCAF'] = TRAINING_ONLY['CLIPReID']

#: Per-mode sizes (key: ``quick``). ``train_batch`` is the batch of the
#: train steps and of the pipelines (None: the config's own);
#: ``*_budget_s`` lets cheap calls run more rounds than ``repeats``.
SETTINGS = {
    True:
    dict(
        repeats=5,
        warmup=1,
        tiny_batch=8,
        vitb_batch=None,
        tiny_budget_s=1.0,
        vitb_budget_s=0.0,
        train_batch=8,
        train_repeats=2,
        train_warmup=1,
        pipeline_batches=3,
        pedes_train_ids=16,
        cc_frames=1),
    False:
    dict(
        repeats=7,
        warmup=2,
        tiny_batch=32,
        vitb_batch=8,
        tiny_budget_s=10.0,
        vitb_budget_s=0.0,
        train_batch=None,
        train_repeats=5,
        train_warmup=2,
        pipeline_batches=8,
        pedes_train_ids=96,
        cc_frames=2),
}

OnModel = Optional[Callable[[str, nn.Module], None]]


# ------------------------------------------------------------- helpers ----
def _ensure_registered() -> None:
    from mmreid_clip.utils import register_all_modules
    register_all_modules(init_scope=True)


_CONFIG_CACHE: Dict[str, Any] = {}


def load_config(name: str):
    """``Config.fromfile`` of :data:`CONFIGS` ``[name]`` (or a path).

    Parsed once per process; every call returns a fresh deep copy.
    """
    from mmengine.config import Config
    path = CONFIGS.get(name, name)
    if not osp.isabs(path):
        path = osp.join(ROOT, path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {path!r} (benchmark entry {name!r})'
                                ' not found')
    if path not in _CONFIG_CACHE:
        _CONFIG_CACHE[path] = Config.fromfile(path)
    return copy.deepcopy(_CONFIG_CACHE[path])


def random_weights(model_cfg: dict) -> dict:
    """A copy of a model config whose encoders start from random weights.

    ``pretrained`` becomes None on every encoder; a BERT tower that names a
    checkpoint folder is built from ``BERT_ARCHS['bert-base']`` with
    bert-base-uncased's vocabulary instead (same shapes, no files needed).
    """
    from mmreid_clip.models.backbones.bert_text import BERT_BASE
    cfg = copy.deepcopy(model_cfg)
    for key in ('image_encoder', 'text_encoder'):
        enc = cfg.get(key)
        if not enc:
            continue
        if enc.get('type') == 'BertTextEncoder':
            if enc.get('pretrained') is not None:
                enc['pretrained'] = None
                enc['vocab_file'] = None
                enc['config'] = dict(
                    BERT_BASE, vocab_size=BERT_BASE_UNCASED_VOCAB)
        elif 'pretrained' in enc:
            enc['pretrained'] = None
    return cfg


def bare_encoder_config(enc_cfg: dict) -> dict:
    """The plain tower of an encoder config: no attention map output."""
    cfg = copy.deepcopy(enc_cfg)
    if 'output_attn' in cfg:
        cfg['output_attn'] = False
    return cfg


def _canonical(cfg: dict) -> str:
    """A config dict as comparable text (tuples = lists, no False
    ``output_attn``)."""
    cfg = json.loads(json.dumps(cfg, default=str))
    if cfg.get('output_attn') is False:
        del cfg['output_attn']
    return json.dumps(cfg, sort_keys=True)


def bare_tower(
    enc_cfg: dict, key: str, donors: Iterable[Tuple[nn.Module,
                                                    dict]] = ()) -> nn.Module:
    """The plain tower of ``enc_cfg`` (:func:`bare_encoder_config`).

    When a donor model (``(model, model_cfg)``) has a tower ``key`` built
    from the same config, that module is used (its forward *is* the bare
    tower's: the CLIP baseline's towers, CLIP-ReID's image tower);
    otherwise one is built. Returned in eval mode.
    """
    want = _canonical(bare_encoder_config(enc_cfg))
    for model, cfg in donors:
        if key in cfg and _canonical(cfg[key]) == want:
            return getattr(model, key).eval()
    return build_model(bare_encoder_config(enc_cfg)).eval()


def build_model(model_cfg: dict, seed: int = 0) -> nn.Module:
    """``MODELS.build`` with a fixed seed (random weights)."""
    from mmreid_clip.registry import MODELS
    torch.manual_seed(seed)
    cfg = model_cfg.to_dict() if hasattr(model_cfg,
                                         'to_dict') else dict(model_cfg)
    return MODELS.build(cfg)


CLOCKS = ('cpu', 'wall')


def _run_section(body: Callable[..., Dict[str, Any]], threads: Optional[int],
                 *args) -> Dict[str, Any]:
    """``body(*args)`` with ``threads`` torch threads (restored after); the
    section dict gains ``torch_threads`` and ``elapsed_s``."""
    t0 = time.perf_counter()
    with torch_threads(threads) as n:
        out = body(*args)
    out['torch_threads'] = n
    out['elapsed_s'] = time.perf_counter() - t0
    return out


@contextlib.contextmanager
def torch_threads(threads: Optional[int] = None):
    """Run with ``threads`` torch intra-op threads (None: unchanged).

    Yields the thread count in effect; the previous one is restored.
    """
    old = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f'threads must be >= 1, got {threads}')
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def time_interleaved(fns: Dict[str, Callable[[], Any]],
                     repeats: int,
                     warmup: int = 1,
                     budget_s: float = 0.0,
                     max_rounds: int = 200,
                     clock: str = 'cpu') -> Dict[str, Dict[str, float]]:
    """Best-of-N time of each callable, interleaved, on two clocks.

    Every round runs each callable once; the order rotates from round to
    round, so none is always first (cache) or last. Warm-up rounds are not
    timed. At least ``repeats`` rounds run, then more while the timed
    rounds have taken less than ``budget_s`` wall seconds (up to
    ``max_rounds``).

    Each call is timed on the wall clock and on this process's CPU time
    (all its threads). On a loaded machine the wall time of a call swings
    by 10x (a 25 ms forward measured 57-900 ms on this project's 2-core
    box at load 5) while its CPU time stays within a few percent, so
    ``clock='cpu'`` is the default for ratios: it compares the compute the
    two sides cost, not the share of the cores they were given.

    Returns:
        dict: per name, ``best`` / ``median`` / ``samples`` (every round,
        in order) on ``clock``, and the same with ``_wall`` and ``_cpu``
        suffixes, and ``rounds``.
    """
    if repeats < 1:
        raise ValueError(f'repeats must be >= 1, got {repeats}')
    if clock not in CLOCKS:
        raise ValueError(f'clock must be one of {CLOCKS}, got {clock!r}')
    keys = list(fns)
    for _ in range(warmup):
        for k in keys:
            fns[k]()
    wall: Dict[str, List[float]] = {k: [] for k in keys}
    cpu: Dict[str, List[float]] = {k: [] for k in keys}
    start = time.perf_counter()
    r = 0
    while r < repeats or (time.perf_counter() - start < budget_s
                          and r < max_rounds):
        shift = r % len(keys)
        for k in keys[shift:] + keys[:shift]:
            w0, c0 = time.perf_counter(), time.process_time()
            fns[k]()
            c1, w1 = time.process_time(), time.perf_counter()
            wall[k].append(w1 - w0)
            cpu[k].append(c1 - c0)
        r += 1
    out = {}
    for k in keys:
        res = dict(
            best_wall=min(wall[k]),
            median_wall=statistics.median(wall[k]),
            best_cpu=min(cpu[k]),
            median_cpu=statistics.median(cpu[k]),
            rounds=len(wall[k]),
            samples_wall=wall[k],
            samples_cpu=cpu[k])
        res['best'] = res[f'best_{clock}']
        res['median'] = res[f'median_{clock}']
        res['samples'] = res[f'samples_{clock}']
        out[k] = res
    return out


class CallCounter:
    """Counts calls of every module under some children of a model.

    Forward pre-hooks cost nothing on modules that are never called, which
    is the point: the timed inference path must not reach them.
    """

    def __init__(self, model: nn.Module, names: Iterable[str]) -> None:
        self.calls: Dict[str, int] = {}
        self._handles = []
        for name in names:
            child = getattr(model, name, None)
            if child is None:
                continue
            self.calls[name] = 0
            for mod in child.modules():
                self._handles.append(
                    mod.register_forward_pre_hook(self._hook(name)))

    def _hook(self, name: str):

        def hook(module, args):
            self.calls[name] += 1

        return hook

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def _release(quick: bool) -> None:
    """Free the models of a finished group before the next is built.

    Only the full run needs it (ViT-B/16 towers); a collection costs ~0.5 s
    with the configs' objects alive, a tenth of a quick section.
    """
    if not quick:
        gc.collect()


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float('nan')


def paired_ratio(a: List[float], b: List[float]) -> float:
    """Median over rounds of ``a[i] / b[i]``.

    The two calls of a round run back to back, so a load change slower
    than a round hits both; the median then discards rounds where it hit
    one only. A cross-check of the best-of-N ratio.
    """
    pairs = [x / y for x, y in zip(a, b) if y > 0]
    return statistics.median(pairs) if pairs else float('nan')


def _row(name: str,
         size: str,
         side: str,
         method: str,
         reference: str,
         t_method: Dict[str, float],
         t_ref: Dict[str, float],
         target: Optional[float] = None,
         **extra) -> Dict[str, Any]:
    ratio = _ratio(t_method['best'], t_ref['best'])
    row = dict(
        name=name,
        size=size,
        side=side,
        method=method,
        reference=reference,
        ratio=ratio,
        ratio_median=_ratio(t_method['median'], t_ref['median']),
        ratio_paired=paired_ratio(t_method['samples'], t_ref['samples']),
        ratio_cpu=_ratio(t_method['best_cpu'], t_ref['best_cpu']),
        ratio_wall=_ratio(t_method['best_wall'], t_ref['best_wall']),
        method_s=t_method['best'],
        reference_s=t_ref['best'],
        rounds=min(t_method.get('rounds', 0), t_ref.get('rounds', 0)),
        target=target,
        meets_target=None if target is None else bool(ratio <= target))
    row.update(extra)
    return row


def _sum_times(*ts: Dict[str, float]) -> Dict[str, float]:
    out = {
        k: sum(t[k] for t in ts)
        for k in ('best', 'median', 'best_wall', 'median_wall', 'best_cpu',
                  'median_cpu')
    }
    for k in ('samples', 'samples_wall', 'samples_cpu'):
        out[k] = [sum(v) for v in zip(*(t[k] for t in ts))]
    out['rounds'] = min(t['rounds'] for t in ts)
    return out


# ------------------------------------------------------------- inputs ----
def make_images(batch: int,
                img_size: Tuple[int, int],
                seed: int = 0) -> torch.Tensor:
    """Normalised-looking float images ``B x 3 x H x W``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, *img_size, generator=gen)


def make_texts(batch: int,
               context_length: int,
               vocab_size: int,
               bert: bool,
               seed: int = 0) -> torch.Tensor:
    """Token ids shaped like tokenised captions, ``B x context_length``.

    CLIP: ``SOT words EOT 0...`` with SOT/EOT the last two ids of the
    vocabulary (the EOT is the argmax, as CLIP's global token needs). BERT:
    ``[CLS] pieces [SEP] 0...``. Lengths are drawn from
    :data:`CAPTION_TOKENS`, so the padding (and with it CFine's token
    selection over real tokens) looks like real captions.
    """
    gen = torch.Generator().manual_seed(seed)
    lo, hi = CAPTION_TOKENS
    hi = min(hi, context_length)
    lo = min(lo, hi)
    lengths = torch.randint(lo, hi + 1, (batch, ), generator=gen)
    out = torch.zeros(batch, context_length, dtype=torch.long)
    if bert:
        first, last, word_lo, word_hi = (BERT_CLS, BERT_SEP, BERT_FIRST_WORD,
                                         vocab_size)
    else:
        first, last, word_lo, word_hi = (vocab_size - 2, vocab_size - 1, 1,
                                         vocab_size - 2)
    for i, n in enumerate(lengths.tolist()):
        out[i, 0] = first
        out[i, 1:n - 1] = torch.randint(
            word_lo, word_hi, (n - 2, ), generator=gen)
        out[i, n - 1] = last
    return out


def _text_context_length(cfg, text_encoder: nn.Module) -> int:
    """The tokenizer's context length of a config (else the tower's)."""
    for key in ('text_pipeline', ):
        pipeline = cfg.get(key)
        for t in pipeline or []:
            tok = t.get('tokenizer') if isinstance(t, dict) else None
            if tok and tok.get('context_length'):
                return int(tok['context_length'])
    return int(text_encoder.context_length)


# ---------------------------------------------------------- inference ----
def _inference_cfine(name: str,
                     cfg,
                     batch: int,
                     repeats: int,
                     warmup: int,
                     budget_s: float,
                     size: str,
                     on_model: OnModel,
                     baseline_name: Optional[str] = None,
                     clock: str = 'cpu') -> Tuple[List[dict], Dict[str, int]]:
    """CFine (and optionally the CLIP baseline) vs the bare towers."""
    from mmreid_clip.models.utils import text_vocab_size
    mcfg = random_weights(cfg.model)
    model = build_model(mcfg).eval()
    if on_model is not None:
        on_model(name, model)
    models = {name: model}
    baseline, donors = None, []
    if baseline_name is not None:
        bcfg = random_weights(load_config(baseline_name).model)
        baseline = build_model(bcfg).eval()
        if on_model is not None:
            on_model(baseline_name, baseline)
        models[baseline_name] = baseline
        donors.append((baseline, bcfg))
    bare_img = bare_tower(mcfg['image_encoder'], 'image_encoder', donors)
    bare_txt = bare_tower(mcfg['text_encoder'], 'text_encoder', donors)

    bert = mcfg['text_encoder']['type'] == 'BertTextEncoder'
    images = make_images(batch, tuple(bare_img.img_size))
    texts = make_texts(batch, _text_context_length(cfg, bare_txt),
                       text_vocab_size(bare_txt), bert)
    counters = {
        k: CallCounter(m, TRAINING_ONLY[type(m).__name__])
        for k, m in models.items()
    }
    img_fns = {
        'method': lambda: model.extract_feat({'images': images}),
        'tower': lambda: model.image_encoder(images),
        'bare': lambda: bare_img(images),
    }
    txt_fns = {
        'method': lambda: model.extract_feat({'texts': texts}),
        'tower': lambda: model.text_encoder(texts),
        'bare': lambda: bare_txt(texts),
    }
    if baseline is not None:
        img_fns['baseline'] = lambda: baseline.extract_feat({'images': images})
        txt_fns['baseline'] = lambda: baseline.extract_feat({'texts': texts})
    with torch.inference_mode():
        ti = time_interleaved(img_fns, repeats, warmup, budget_s, clock=clock)
        tt = time_interleaved(txt_fns, repeats, warmup, budget_s, clock=clock)
    calls = {k: c.total for k, c in counters.items()}
    for c in counters.values():
        c.remove()

    target = TARGETS['cfine_inference']
    img_ref = 'bare image tower'
    txt_ref = f'bare text tower ({"BERT" if bert else "CLIP"})'
    rows = [
        _row(
            f'{name}/image',
            size,
            'image',
            'CFine extract_feat',
            img_ref,
            ti['method'],
            ti['bare'],
            target,
            batch=batch),
        _row(
            f'{name}/text',
            size,
            'text',
            'CFine extract_feat',
            txt_ref,
            tt['method'],
            tt['bare'],
            target,
            batch=batch),
        _row(
            f'{name}/both',
            size,
            'image+text',
            'CFine extract_feat',
            'bare towers',
            _sum_times(ti['method'], tt['method']),
            _sum_times(ti['bare'], tt['bare']),
            target,
            batch=batch),
        # where the cost comes from: the attention output of the towers
        # vs MGF + BN (method / tower-with-attention)
        _row(
            f'{name}/image_tower_attn',
            size,
            'image',
            'CFine image tower (output_attn)',
            img_ref,
            ti['tower'],
            ti['bare'],
            batch=batch),
        _row(
            f'{name}/text_tower_attn',
            size,
            'text',
            'CFine text tower (output_attn)',
            txt_ref,
            tt['tower'],
            tt['bare'],
            batch=batch),
    ]
    if baseline is not None:
        rows += [
            _row(
                f'{baseline_name}/image',
                size,
                'image',
                'CLIP baseline extract_feat',
                img_ref,
                ti['baseline'],
                ti['bare'],
                batch=batch,
                same_path=True),
            _row(
                f'{baseline_name}/text',
                size,
                'text',
                'CLIP baseline extract_feat',
                txt_ref,
                tt['baseline'],
                tt['bare'],
                batch=batch,
                same_path=True),
        ]
    return rows, calls


def _inference_ccaf(name: str,
                    ref_name: str,
                    batch: int,
                    repeats: int,
                    warmup: int,
                    budget_s: float,
                    size: str,
                    on_model: OnModel,
                    clock: str = 'cpu') -> Tuple[List[dict], Dict[str, int]]:
    """CCAF and CLIP-ReID ``extract_img_feat`` vs the bare ReID tower."""
    cfg = load_config(name)
    mcfg = random_weights(cfg.model)
    model = build_model(mcfg).eval()
    ref_cfg = random_weights(load_config(ref_name).model)
    ref = build_model(ref_cfg).eval()
    bare = bare_tower(mcfg['image_encoder'], 'image_encoder', [(ref, ref_cfg)])
    for key, m in ((name, model), (ref_name, ref)):
        if on_model is not None:
            on_model(key, m)
    counters = {
        name: CallCounter(model, TRAINING_ONLY[type(model).__name__]),
        ref_name: CallCounter(ref, TRAINING_ONLY[type(ref).__name__]),
    }
    images = make_images(batch, tuple(bare.img_size))
    fns = {
        'ccaf': lambda: model.extract_img_feat(images),
        'clipreid': lambda: ref.extract_img_feat(images),
        'bare': lambda: bare(images),
    }
    with torch.inference_mode():
        t = time_interleaved(fns, repeats, warmup, budget_s, clock=clock)
        # Both towers are built first from the same config and seed, so
        # equal weights; equal features show the two retrievers run the
        # same path at inference, not merely equally long ones.
        identical = torch.equal(fns['ccaf'](), fns['clipreid']())
    calls = {k: c.total for k, c in counters.items()}
    for c in counters.values():
        c.remove()
    ref_label = 'bare OpenCLIPReIDVisionTransformer'
    rows = [
        _row(
            f'{name}/image',
            size,
            'image',
            'CCAF extract_img_feat',
            ref_label,
            t['ccaf'],
            t['bare'],
            TARGETS['ccaf_inference'],
            batch=batch),
        _row(
            f'{ref_name}/image',
            size,
            'image',
            'CLIP-ReID extract_img_feat',
            ref_label,
            t['clipreid'],
            t['bare'],
            batch=batch,
            same_path=True),
        _row(
            f'{name}_vs_{ref_name}/image',
            size,
            'image',
            'CCAF extract_img_feat',
            'CLIP-ReID extract_img_feat',
            t['ccaf'],
            t['clipreid'],
            TARGETS['ccaf_vs_clipreid_inference'],
            batch=batch,
            identical_features=identical),
    ]
    return rows, calls


def _bench_inference(quick: bool = False,
                     repeats: Optional[int] = None,
                     on_model: OnModel = None,
                     clock: str = 'cpu') -> Dict[str, Any]:
    """Body of :func:`bench_inference`."""
    _ensure_registered()
    s = SETTINGS[bool(quick)]
    repeats = repeats or s['repeats']
    rows: List[dict] = []
    calls: Dict[str, int] = {}
    plan = [('clip-tiny', s['tiny_batch'], s['tiny_budget_s'], 'cfine_tiny',
             'baseline_tiny', 'ccaf_tiny', 'clipreid_tiny')]
    if not quick:
        plan.append(('ViT-B/16', s['vitb_batch'], s['vitb_budget_s'],
                     'cfine_vitb', None, 'ccaf_vitb', 'clipreid_vitb'))
    for size, batch, budget, cfine, base, ccaf, clipreid in plan:
        r, c = _inference_cfine(cfine, load_config(cfine), batch, repeats,
                                s['warmup'], budget, size, on_model, base,
                                clock)
        rows += r
        calls.update(c)
        _release(quick)
        r, c = _inference_ccaf(ccaf, clipreid, batch, repeats, s['warmup'],
                               budget, size, on_model, clock)
        rows += r
        calls.update(c)
        _release(quick)
    # Rows whose two sides run the same computation (a retriever's wrapper
    # around the very tower) measure the timing noise of their size.
    noise = {
        size:
        max(
            abs(r['ratio'] - 1) for r in rows
            if r['size'] == size and r.get('same_path'))
        for size, *_ in plan
    }
    for r in rows:
        if r['target'] is not None:
            r['within_noise'] = bool(r['ratio'] <= r['target'] +
                                     noise[r['size']])
    return dict(
        section='inference',
        quick=bool(quick),
        repeats=repeats,
        clock=clock,
        batch={p[0]: p[1]
               for p in plan},
        rows=rows,
        ratios={r['name']: r['ratio']
                for r in rows},
        noise=noise,
        training_only_calls=calls)


def bench_inference(quick: bool = False,
                    repeats: Optional[int] = None,
                    on_model: OnModel = None,
                    clock: str = 'cpu',
                    threads: Optional[int] = None) -> Dict[str, Any]:
    """Feature-extraction cost of CFine and CCAF vs the bare encoders.

    Args:
        quick (bool): clip-tiny only, batch 8, at least 5 rounds (more
            within 1 s per group); otherwise also ViT-B/16 (CFine with
            BERT-base, CCAF / CLIP-ReID on PRCC shapes), tiny batch 32 (at
            least 7 rounds, more within 10 s per group), ViT-B/16 batch 8
            (7 rounds).
        repeats (int, optional): Timed rounds (best of); overrides the mode's.
        on_model (callable, optional): Called as ``on_model(name, model)``
            on every method model after ``eval()`` and before timing (tests
            use it to make training-only modules raise).
        clock (str): ``'cpu'`` (process CPU time, default) or ``'wall'``
            for ``ratio``; both are in ``ratio_cpu`` / ``ratio_wall``.
        threads (int, optional): torch intra-op threads for the section
            (restored after); None keeps the configured number.

    Returns:
        dict: ``rows`` (one per comparison: ``name``, ``size``, ``side``,
        ``method``, ``reference``, ``ratio`` (best / best on ``clock``),
        ``ratio_median``, ``ratio_paired``, ``ratio_cpu``, ``ratio_wall``,
        ``method_s``, ``reference_s`` (best seconds, for context),
        ``rounds``, ``target``, ``meets_target``, ``identical_features``
        (CCAF vs CLIP-ReID rows: the two give bit-identical features),
        ``within_noise`` (rows
        with a target: ``ratio <= target + noise``), ``same_path`` (rows
        whose two sides run the same computation), ``batch``), ``ratios``
        (row name -> ratio), ``noise`` (size -> the largest ``|ratio - 1|``
        of its same-path rows: the resolution of this run),
        ``training_only_calls`` (model name -> calls of its training-only
        modules during the timed runs; 0 expected),
        ``quick``, ``repeats``, ``clock``, ``batch`` (size -> batch),
        ``torch_threads``, ``elapsed_s``.
    """
    return _run_section(_bench_inference, threads, quick, repeats, on_model,
                        clock)


# ---------------------------------------------------------------- data ----
_DATA_DIRS: Dict[Tuple, str] = {}
_TMP_ROOT: List[str] = []


def _tmp_root() -> str:
    if not _TMP_ROOT:
        path = tempfile.mkdtemp(prefix='bench_models_')
        _TMP_ROOT.append(path)
        atexit.register(shutil.rmtree, path, True)
    return _TMP_ROOT[0]


def synth_pedes_root(train_ids: int) -> str:
    """A small SynthPedes (CUHK-PEDES layout) in a temporary folder.

    Generated once per process and size; removed at exit.
    """
    key = ('pedes', train_ids)
    if key not in _DATA_DIRS:
        from mmreid_synth import generate_synth_pedes
        root = osp.join(_tmp_root(), f'synth-pedes-{train_ids}')
        generate_synth_pedes(
            root,
            seed=0,
            train_ids=train_ids,
            val_ids=1,
            test_ids=1,
            images_per_id=dict(train=4, val=1, test=1))
        _DATA_DIRS[key] = root
    return _DATA_DIRS[key]


def synth_cc_root(frames_per_camera: int) -> str:
    """A small SynthCC (LTCC layout with masks) in a temporary folder.

    Keeps the tiny preset's 36 identities x 3 outfits, so the training set
    has the 36 identities and 108 clothes labels the tiny CCAF config is
    sized for (the clothes examiner encodes one prompt per clothes label
    every step: fewer labels would understate CCAF's step); fewer cameras
    and frames keep it quick to render. Returns the ``LTCC_ReID`` folder.
    """
    key = ('cc', frames_per_camera)
    if key not in _DATA_DIRS:
        from mmreid_synth import generate_synth_cc
        root = osp.join(_tmp_root(), f'synth-cc-{frames_per_camera}')
        generate_synth_cc(
            root,
            seed=0,
            size='tiny',
            test_ids=1,
            cameras_per_outfit=2,
            frames_per_camera=frames_per_camera)
        _DATA_DIRS[key] = osp.join(root, 'LTCC_ReID')
    return _DATA_DIRS[key]


#: Train-set class of a config -> the synthetic set written in its layout.
SYNTH_SETS = {'CUHKPEDES': 'SynthPedes', 'LTCC': 'SynthCC'}


def synth_set(cfg) -> str:
    """``'SynthPedes'`` or ``'SynthCC'``: what stands in for a config's
    training set."""
    kind = cfg.train_dataloader['dataset']['type']
    if kind not in SYNTH_SETS:
        raise ValueError(f'train_dataloader.dataset.type={kind!r} has no '
                         f'synthetic stand-in; known: {sorted(SYNTH_SETS)}')
    return SYNTH_SETS[kind]


def _data_root(name: str, quick: bool) -> str:
    s = SETTINGS[bool(quick)]
    if synth_set(load_config(name)) == 'SynthCC':
        return synth_cc_root(s['cc_frames'])
    return synth_pedes_root(s['pedes_train_ids'])


def build_train_loader(cfg,
                       data_root: str,
                       batch_size: Optional[int] = None,
                       num_workers: Optional[int] = None,
                       seed: int = 0):
    """The config's ``train_dataloader`` over ``data_root``.

    Args:
        cfg: The config.
        data_root (str): Replaces ``train_dataloader.dataset.data_root``.
        batch_size (int, optional): Replaces the batch size (and the
            sampler's, for identity-balanced samplers).
        num_workers (int, optional): Replaces ``num_workers``.
        seed (int): Sampler / worker seed.
    """
    from mmengine.runner import Runner

    from mmreid_clip.utils import fit_loader_options
    dl = copy.deepcopy(cfg.train_dataloader)
    dl = dl.to_dict() if hasattr(dl, 'to_dict') else dict(dl)
    dl['dataset']['data_root'] = data_root
    if batch_size is not None:
        dl['batch_size'] = batch_size
        if 'batch_size' in dl.get('sampler', {}):
            dl['sampler']['batch_size'] = batch_size
    if num_workers is not None:
        dl['num_workers'] = num_workers
    fit_loader_options(dl)  # as setup_runtime does
    return Runner.build_dataloader(dl, seed=seed)


_LOADERS: Dict[Tuple[str, str, int, int], Any] = {}


def _train_loader(name: str, quick: bool, batch_size: int, num_workers: int):
    """:func:`build_train_loader` of a benchmark config, built once per
    process and dataloader config (dataset indexing is not what is
    measured; the tiny CLIP baseline and CFine share theirs)."""
    cfg = load_config(name)
    key = (json.dumps(
        cfg.train_dataloader.to_dict(), sort_keys=True,
        default=str), _data_root(name, quick), batch_size, num_workers)
    if key not in _LOADERS:
        _LOADERS[key] = build_train_loader(
            load_config(name), _data_root(name, quick), batch_size,
            num_workers)
    return _LOADERS[key]


def _batch_size(cfg, quick: bool) -> int:
    b = SETTINGS[bool(quick)]['train_batch']
    return int(b if b is not None else cfg.train_dataloader['batch_size'])


def _num_samples(batch: dict) -> int:
    return len(batch['data_samples'])


# ---------------------------------------------------------- train step ----
def _prepare_train(name: str, quick: bool):
    """(model in train mode, optim wrapper, first batch, batch size)."""
    from mmengine.optim import build_optim_wrapper
    cfg = load_config(name)
    bs = _batch_size(cfg, quick)
    loader = _train_loader(name, quick, bs, 0)
    batch = next(iter(loader))
    model = build_model(random_weights(cfg.model))
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper.to_dict())
    if hasattr(model, 'set_train_metainfo'):
        model.set_train_metainfo(loader.dataset.metainfo)
        model.begin_stage2(0)
    return model, optim, batch, bs


def _time_steps(pair: Dict[str, Tuple], repeats: int, warmup: int,
                clock: str) -> Dict[str, Dict[str, float]]:

    def step(model, optim, batch):
        return lambda: model.train_step(batch, optim)

    fns = {k: step(*v[:3]) for k, v in pair.items()}
    return time_interleaved(fns, repeats, warmup, clock=clock)


def _bench_train_step(quick: bool = False,
                      repeats: Optional[int] = None,
                      clock: str = 'cpu') -> Dict[str, Any]:
    """Body of :func:`bench_train_step`."""
    _ensure_registered()
    s = SETTINGS[bool(quick)]
    repeats = repeats or s['train_repeats']
    rows, step_s, batch_sizes = [], {}, {}
    pairs = [
        ('cfine_tiny', 'baseline_tiny', 'CFine', 'CLIP baseline',
         TARGETS['cfine_train_step'], None),
        ('ccaf_tiny', 'clipreid_tiny', 'CCAF stage 2', 'CLIP-ReID stage 2',
         None, 'expected ~2x or more: two views through the image tower, '
         'plus the clothes examiner through the text tower')
    ]
    for method, ref, label, ref_label, target, note in pairs:
        prepared = {k: _prepare_train(k, quick) for k in (method, ref)}
        t = _time_steps(prepared, repeats, s['train_warmup'], clock)
        for k in (method, ref):
            step_s[k] = dict(cpu=t[k]['best_cpu'], wall=t[k]['best_wall'])
            batch_sizes[k] = prepared[k][3]
        bs = prepared[method][3]
        rows.append(
            _row(
                f'{method}_vs_{ref}/train_step',
                'clip-tiny',
                'train',
                label,
                ref_label,
                t[method],
                t[ref],
                target,
                batch=bs,
                samples_per_s=dict({
                    method:
                    prepared[method][3] / t[method]['best'],
                    ref:
                    prepared[ref][3] / t[ref]['best']
                }),
                note=note))
        del prepared
        _release(quick)
    return dict(
        section='train',
        quick=bool(quick),
        repeats=repeats,
        clock=clock,
        rows=rows,
        ratios={r['name']: r['ratio']
                for r in rows},
        step_s=step_s,
        batch_size=batch_sizes)


def bench_train_step(quick: bool = False,
                     repeats: Optional[int] = None,
                     clock: str = 'cpu',
                     threads: Optional[int] = None) -> Dict[str, Any]:
    """Training-step time of CFine / CCAF vs their baselines (clip-tiny).

    Each model gets a real batch of its own config's train dataloader
    (same batch size and sampler seed), and ``model.train_step`` runs with
    the config's optim wrapper (CCAF / CLIP-ReID: the
    ``OptimWrapperDict``, after ``set_train_metainfo`` and
    ``begin_stage2(0)``, i.e. a stage-2 step).

    Args:
        quick (bool): Batch 8, 1 warm-up step and 2 rounds; otherwise the
            configs' batch sizes (64 pairs, 32 images), 2 warm-up steps
            and 5 rounds.
        repeats (int, optional): Overrides the rounds.
        clock (str): ``'cpu'`` (default) or ``'wall'``, see
            :func:`time_interleaved`.
        threads (int, optional): torch intra-op threads for the section
            (restored after); None keeps the configured number.

    Returns:
        dict: ``rows`` (as :func:`bench_inference`'s, plus
        ``samples_per_s`` of both on ``clock`` and a ``note``),
        ``ratios``, ``step_s`` (config name -> ``{'cpu': s, 'wall': s}``,
        best step times) and ``batch_size`` (config name -> batch),
        ``quick``, ``repeats``, ``clock``, ``torch_threads``,
        ``elapsed_s``.
    """
    return _run_section(_bench_train_step, threads, quick, repeats, clock)


# ------------------------------------------------------- data pipeline ----
def pipeline_throughput(loader, num_batches: int) -> Dict[str, float]:
    """Samples/s of a dataloader after its first batch.

    The first batch (worker start-up, file-system cache) is not timed;
    when the epoch ends before ``num_batches`` batches, a new epoch starts
    and its start-up counts (what training pays without persistent
    workers).

    Returns:
        dict: ``wall`` (samples per wall second), ``cpu`` (samples per CPU
        second of this process; meaningful with 0 workers only, the
        workers' CPU time is not counted) and ``samples``.
    """
    it = iter(loader)
    next(it)
    n = 0
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(num_batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        n += _num_samples(batch)
    c1, w1 = time.process_time(), time.perf_counter()
    del it
    return dict(wall=n / (w1 - w0), cpu=n / max(c1 - c0, 1e-9), samples=n)


def _bench_data_pipeline(quick: bool = False,
                         train_result: Optional[Dict[str, Any]] = None,
                         repeats: Optional[int] = None,
                         clock: str = 'cpu') -> Dict[str, Any]:
    """Body of :func:`bench_data_pipeline`."""
    if clock not in CLOCKS:
        raise ValueError(f'clock must be one of {CLOCKS}, got {clock!r}')
    _ensure_registered()
    s = SETTINGS[bool(quick)]
    names = ['baseline_tiny', 'cfine_tiny', 'ccaf_tiny', 'clipreid_tiny']
    if train_result is not None and bool(
            train_result.get('quick')) != bool(quick):
        raise ValueError('train_result comes from a run with quick='
                         f'{train_result.get("quick")}, this one has '
                         f'quick={quick}: batch sizes differ')
    step_s = dict((train_result or {}).get('step_s', {}))
    sizes = dict((train_result or {}).get('batch_size', {}))
    missing = [n for n in names if n not in step_s]
    if missing:
        repeats = repeats or s['train_repeats']
        prepared = {k: _prepare_train(k, quick) for k in missing}
        t = _time_steps(prepared, repeats, s['train_warmup'], clock)
        for k in missing:
            step_s[k] = dict(cpu=t[k]['best_cpu'], wall=t[k]['best_wall'])
            sizes[k] = prepared[k][3]
        del prepared
        _release(quick)
    cores = os.cpu_count() or 1
    rows = []
    measured: Dict[Tuple[str, int, int], Dict[str, float]] = {}
    for name in names:
        cfg = load_config(name)
        bs = sizes[name]
        configured = int(cfg.train_dataloader.get('num_workers', 0))
        workers = sorted({configured, 0} | (set() if quick else {cores}))
        # the baseline and CFine share one pipeline (the same config
        # lines): measure it once
        pipe_key = json.dumps(
            cfg.train_dataloader.to_dict(), sort_keys=True, default=str)
        pipeline = {}
        for w in workers:
            key = (pipe_key, bs, w)
            if key not in measured:
                measured[key] = pipeline_throughput(
                    _train_loader(name, quick, bs, w), s['pipeline_batches'])
            pipeline[w] = measured[key]
        model = {c: bs / step_s[name][c] for c in CLOCKS}
        ratio_wall = {w: pipeline[w]['wall'] / model['wall'] for w in workers}
        ratio_cpu0 = pipeline[0]['cpu'] / model['cpu']
        ratio0 = ratio_cpu0 if clock == 'cpu' else ratio_wall[0]
        ratio_conf = ratio0 if configured == 0 else ratio_wall[configured]
        t_data0 = bs / pipeline[0][clock]
        t_step = step_s[name][clock]
        rows.append(
            dict(
                config=name,
                dataset=synth_set(cfg),
                batch=bs,
                configured_workers=configured,
                pipeline_wall={
                    str(w): p['wall']
                    for w, p in pipeline.items()
                },
                pipeline_cpu_0_workers=pipeline[0]['cpu'],
                model_wall=model['wall'],
                model_cpu=model['cpu'],
                ratio_wall={
                    str(w): v
                    for w, v in ratio_wall.items()
                },
                ratio_cpu_0_workers=ratio_cpu0,
                ratio_configured=ratio_conf,
                ratio_0_workers=ratio0,
                data_share_0_workers=t_data0 / (t_data0 + t_step),
                target=TARGETS['pipeline_over_model'],
                meets_target=bool(
                    min(ratio_conf, ratio0) > TARGETS['pipeline_over_model'])))
    return dict(
        section='data',
        quick=bool(quick),
        clock=clock,
        rows=rows,
        ratios=dict([(f'{r["config"]}/configured', r['ratio_configured'])
                     for r in rows] +
                    [(f'{r["config"]}/0_workers', r['ratio_0_workers'])
                     for r in rows]),
        step_times_reused=not missing)


def bench_data_pipeline(quick: bool = False,
                        train_result: Optional[Dict[str, Any]] = None,
                        repeats: Optional[int] = None,
                        clock: str = 'cpu',
                        threads: Optional[int] = None) -> Dict[str, Any]:
    """Data-pipeline throughput vs the model's consumption (clip-tiny).

    For each tiny config (SynthPedes: CLIP baseline, CFine; SynthCC with
    masks: CCAF; SynthCC without: CLIP-ReID), the samples/s of its train
    dataloader with the configured ``num_workers``, with 0 and (full run)
    with one worker per core, against ``batch / step time`` of its
    ``train_step`` at the same batch size.

    With 0 workers loading runs in this process, so both rates can be
    taken per CPU second (``clock='cpu'``, robust to the machine's load)
    or per wall second; with workers only wall rates exist (their CPU time
    is in other processes).

    Args:
        quick (bool): Batch 8, 3 timed batches; otherwise the configs'
            batch sizes and 8 batches.
        train_result (dict, optional): The result of
            :func:`bench_train_step` with the same ``quick`` from this run;
            its step times are reused instead of measured again.
        repeats (int, optional): Rounds of step timing when measured here.
        clock (str): ``'cpu'`` (default) or ``'wall'``: the clock of
            ``ratio_0_workers`` (and of ``ratio_configured`` when the
            configured ``num_workers`` is 0).
        threads (int, optional): torch intra-op threads for the section
            (restored after); None keeps the configured number.

    Returns:
        dict: ``rows`` (``config``, ``dataset``, ``batch``,
        ``configured_workers``, ``pipeline_wall`` (workers -> samples/s),
        ``pipeline_cpu_0_workers``, ``model_wall``, ``model_cpu``
        (samples/s of the train step), ``ratio_wall`` (workers ->
        pipeline / model), ``ratio_cpu_0_workers``, ``ratio_configured``,
        ``ratio_0_workers``, ``data_share_0_workers`` (the loading share
        of an iteration when loading and the step alternate in one
        process), ``target``, ``meets_target``), ``ratios``
        (``<config>/configured`` and ``<config>/0_workers`` -> ratio),
        ``quick``, ``clock``, ``step_times_reused``.
    """
    return _run_section(_bench_data_pipeline, threads, quick, train_result,
                        repeats, clock)


# ---------------------------------------------------------------- main ----
def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return '-'
    if isinstance(v, bool):
        return 'yes' if v else 'NO'
    if isinstance(v, float):
        return 'nan' if math.isnan(v) else f'{v:.{nd}f}'
    return str(v)


def format_report(report: Dict[str, Any]) -> str:
    """Markdown tables of the sections of a :func:`run` report."""
    m = report['machine']
    clock = report.get('clock', 'cpu')
    lines = [
        f'machine: {m["cpu"]}, {m["cores"]} cores, torch threads '
        f'{m["torch_threads"]}, load average {m["load_avg"]} (start) -> '
        f'{report.get("load_avg_end")} (end), torch {m["torch"]}, '
        f'{m["date"]}, quick={report["quick"]}, ratio clock={clock}, '
        f'threads used {report.get("torch_threads")}', ''
    ]
    sec = report['sections']
    if 'inference' in sec:
        r = sec['inference']
        lines += [
            f'### Inference (best of >= {r["repeats"]} rounds, batch '
            f'{r["batch"]})', '',
            '| size | row | method | reference | ratio | ratio (paired) | '
            'ratio (wall) | rounds | target | meets | within noise |',
            '|---|---|---|---|---|---|---|---|---|---|---|'
        ]
        for row in r['rows']:
            lines.append(
                f'| {row["size"]} | {row["name"]} | {row["method"]} | '
                f'{row["reference"]} | {_fmt(row["ratio"], 3)} | '
                f'{_fmt(row["ratio_paired"], 3)} | '
                f'{_fmt(row["ratio_wall"], 3)} | {row["rounds"]} | '
                f'{_fmt(row["target"])} | {_fmt(row["meets_target"])} | '
                f'{_fmt(row.get("within_noise"))} |')
        lines += [
            '', 'noise (largest |ratio - 1| of same-path rows): ' +
            ', '.join(f'{k}: {_fmt(v, 3)}' for k, v in r['noise'].items()), '',
            'training-only module calls during inference: ' +
            ', '.join(f'{k}={v}'
                      for k, v in r['training_only_calls'].items()), ''
        ]
    if 'train' in sec:
        r = sec['train']
        lines += [
            f'### Training step (best of {r["repeats"]} rounds)', '',
            '| row | batch | method | reference | ratio | ratio (paired) | '
            'ratio (wall) | target | meets |',
            '|---|---|---|---|---|---|---|---|---|'
        ]
        for row in r['rows']:
            lines.append(
                f'| {row["name"]} | {row["batch"]} | {row["method"]} | '
                f'{row["reference"]} | {_fmt(row["ratio"])} | '
                f'{_fmt(row["ratio_paired"])} | {_fmt(row["ratio_wall"])} | '
                f'{_fmt(row["target"])} | {_fmt(row["meets_target"])} |')
        lines.append('')
    if 'data' in sec:
        r = sec['data']
        lines += [
            '### Data pipeline vs model consumption (samples/s ratio)', '',
            '| config | dataset | batch | configured workers | '
            'pipeline / model, 0 workers | same, wall clock by workers | '
            'loading share at 0 workers | meets |',
            '|---|---|---|---|---|---|---|---|'
        ]
        for row in r['rows']:
            walls = ', '.join(f'{w}: {_fmt(v)}'
                              for w, v in row['ratio_wall'].items())
            lines.append(
                f'| {row["config"]} | {row["dataset"]} | {row["batch"]} | '
                f'{row["configured_workers"]} | '
                f'{_fmt(row["ratio_0_workers"])} | {walls} | '
                f'{_fmt(100 * row["data_share_0_workers"], 0)}% | '
                f'{_fmt(row["meets_target"])} |')
        lines.append('')
    if 'pipeline_real' in sec:
        import bench_pipeline_real
        lines.append(bench_pipeline_real.format_section(sec['pipeline_real']))
    return '\n'.join(lines)


#: ``pipeline_real`` (the ViT-B/16 pipelines at real resolution) lives in
#: ``bench_pipeline_real.py``; not in the default run (it renders its data)
SECTIONS = ('inference', 'train', 'data', 'pipeline_real')
DEFAULT_SECTIONS = ('inference', 'train', 'data')


def run(quick: bool = False,
        sections: Iterable[str] = DEFAULT_SECTIONS,
        repeats: Optional[int] = None,
        clock: str = 'cpu',
        threads: Optional[int] = None) -> Dict[str, Any]:
    """Run the chosen sections; the data section reuses the train steps.

    Returns:
        dict: ``machine`` (:func:`machine_info` at the start),
        ``load_avg_end``, ``quick``, ``clock``, ``wall_s`` and
        ``sections`` (name -> the section's dict).
    """
    sections = list(sections)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f'unknown sections {sorted(unknown)}; choose from '
                         f'{SECTIONS}')
    report = dict(
        machine=machine_info(),
        quick=bool(quick),
        clock=clock,
        torch_threads=threads or torch.get_num_threads(),
        sections={})
    t0 = time.perf_counter()
    if 'inference' in sections:
        report['sections']['inference'] = bench_inference(
            quick, repeats, clock=clock, threads=threads)
    if 'train' in sections:
        report['sections']['train'] = bench_train_step(
            quick, repeats, clock=clock, threads=threads)
    if 'data' in sections:
        report['sections']['data'] = bench_data_pipeline(
            quick,
            report['sections'].get('train'),
            repeats,
            clock=clock,
            threads=threads)
    if 'pipeline_real' in sections:
        import bench_pipeline_real
        report['sections']['pipeline_real'] = _run_section(
            bench_pipeline_real.bench_pipelines, threads, quick)
    report['wall_s'] = time.perf_counter() - t0
    report['load_avg_end'] = machine_info()['load_avg']
    return report


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def write_report(path: Optional[str], report: Dict[str, Any]) -> None:
    """Write ``report`` as JSON to ``path`` (folders made; None: no-op)."""
    if path:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(_jsonable(report), f, indent=2)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--quick',
        action='store_true',
        help='clip-tiny only, small batches, few rounds')
    parser.add_argument('--json', help='write the report here')
    parser.add_argument(
        '--sections',
        nargs='+',
        default=list(DEFAULT_SECTIONS),
        choices=SECTIONS,
        help='pipeline_real: the ViT-B/16 pipelines at real resolution '
        '(bench_pipeline_real.py)')
    parser.add_argument(
        '--repeats',
        type=int,
        default=None,
        help='timed rounds per measurement (best of)')
    parser.add_argument(
        '--clock',
        default='cpu',
        choices=CLOCKS,
        help='clock of the ratios: process CPU time (robust to machine '
        'load) or wall time; both are in the JSON')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch intra-op threads (default: as configured, e.g. by '
        'OMP_NUM_THREADS); 1 gives stable ratios on a loaded machine')
    args = parser.parse_args(argv)
    from mmengine.logging import MMLogger
    # the "random initialisation" notice of every tower build drowns the
    # table
    MMLogger.get_instance('mmengine').setLevel('WARNING')
    report = run(args.quick, args.sections, args.repeats, args.clock,
                 args.threads)
    print(format_report(report))
    write_report(args.json, report)
    return 0


if __name__ == '__main__':
    sys.path.insert(0, ROOT)
    sys.exit(main())
