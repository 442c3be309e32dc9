"""CFine's BERT text encoder (Hugging Face ``BertModel``), every token out.

arXiv 2210.10276 and ``docs/methods/cfine.md`` §2: the paper's text tower is
``bert-base-uncased``, not CLIP's text transformer. Its output follows the
text-backbone contract of ``docs/design.md``: the global feature is the
``[CLS]`` token (BERT attends both ways, unlike CLIP's causal tower, whose
global token is the EOT), and the attention map used by CFine's token
selection is the ``[CLS]`` query row of the last layer.

Weights only come from a local folder at run time:
a hub name is read from the Hugging Face cache, or downloaded when the hub
is reachable, and otherwise fails at once with instructions.
"""
import os
import os.path as osp
import re
from typing import Dict, Optional, Union
from urllib.parse import urlparse

import torch
from mmengine.model import BaseModule

from mmreid_clip.registry import MODELS
from mmreid_clip.models.utils.freeze import freeze
from mmreid_clip.models.utils.value_checks import ValueCheck
from .hub_probe import host_reachable, hub_offline

__all__ = ['BertTextEncoder', 'BERT_ARCHS', 'BERT_TINY', 'BERT_BASE']

# BertWordPieceTokenizer pads with [PAD], which must be id 0.
PAD_ID = 0
# Where the configs and the README expect a local BERT checkpoint folder.
CHECKPOINT_DIR = 'checkpoints'
# Files transformers can load BERT weights from (safetensors or torch,
# single file or sharded).
WEIGHT_FILES = ('model.safetensors', 'model.safetensors.index.json',
                'pytorch_model.bin', 'pytorch_model.bin.index.json')
# A Hugging Face repo id: "name" or "namespace/name".
_REPO_ID = re.compile(r'^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$')

#: ``bert-base-uncased`` minus its ``vocab_size`` (it comes from the
#: vocabulary): 12 layers, 768 wide, 12 heads, 512 positions; dropout 0.1
#: on hidden states and on attention probabilities (BertConfig defaults).
BERT_BASE: Dict[str, int] = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=512)
#: A CPU-sized BERT for tests and the SynthPedes demo (~0.4M parameters
#: besides the ``vocab_size x 128`` token embedding); 128 positions fit
#: CFine's 100-token captions.
BERT_TINY: Dict[str, int] = dict(
    hidden_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=512,
    max_position_embeddings=128)
#: Named ``config`` values of :class:`BertTextEncoder`.
BERT_ARCHS: Dict[str, Dict[str, int]] = {
    'bert-base': BERT_BASE,
    'bert-tiny': BERT_TINY
}


def _import_transformers():
    # transformers is the optional `bert` extra and takes seconds to import:
    # only pay for it when a BERT tower is built.
    try:
        import transformers
    except ImportError as e:
        raise ImportError('BertTextEncoder needs transformers: pip install '
                          '-e ".[bert]" (and keep pycocotools out of the '
                          'environment: with transformers>=4.50 both '
                          'together break `import mmpretrain.models`)') from e
    return transformers


def _vocab_size_of(vocab_file: str) -> int:
    """Largest id + 1 of a WordPiece vocabulary (its tokenizer's
    ``vocab_size``)."""
    # Imported here: the dataset package pulls in every dataset and
    # transform, which building a model does not otherwise need.
    from mmreid_clip.datasets.tokenizers import load_wordpiece_vocab
    return max(load_wordpiece_vocab(vocab_file).values()) + 1


def _placement_hint(folder: str, hub_name: str = 'bert-base-uncased') -> str:
    """How to fill ``folder`` with a BERT checkpoint, for error messages."""
    return (
        f'put config.json, the weights (model.safetensors or '
        f'pytorch_model.bin) and vocab.txt in {folder}: on a machine '
        f'with network run `BertModel.from_pretrained({hub_name!r})'
        f'.save_pretrained({folder!r})` and `BertTokenizer.from_pretrained('
        f'{hub_name!r}).save_pretrained({folder!r})`, copy the folder '
        f'here and set pretrained={folder!r} (and the tokenizer\'s '
        f'vocab_file={folder!r})')


def _check_loading_info(model, info: dict, source: str) -> None:
    """Refuse a checkpoint that leaves encoder weights random."""
    # Unexpected keys are expected: the pooler and the pre-training heads
    # (cls.*) of bert-base-uncased are not part of this encoder.
    problems = []
    if info.get('missing_keys'):
        problems.append(f'missing {sorted(info["missing_keys"])[:8]}')
    if info.get('mismatched_keys'):
        problems.append(
            f'shape-mismatched {sorted(map(str, info["mismatched_keys"]))[:8]}'
        )
    if problems:
        raise RuntimeError(
            f'the BERT checkpoint {source!r} does not fit '
            f'{type(model).__name__} ({"; ".join(problems)}); refusing to '
            'train with randomly initialised weights in their place')


def _from_folder(transformers, path: str, **kwargs):
    """``BertModel.from_pretrained`` of a local folder, whose pickled
    weights (``pytorch_model.bin``) are read weights-only, as every
    checkpoint of the project (:mod:`mmreid_clip.safe_load`).

    Raises:
        UnsafeCheckpointError: a weights file holds pickled objects other
            than tensors; the message names the file and the objects.
    """
    from mmreid_clip.safe_load import checkpoints_trusted, safe_torch_load
    try:
        return transformers.BertModel.from_pretrained(
            path,
            local_files_only=True,
            weights_only=not checkpoints_trusted(),
            **kwargs)
    except Exception as err:  # transformers re-raises torch's refusal
        if 'weights_only' not in str(err) and 'GLOBAL' not in str(err):
            raise
        for name in sorted(os.listdir(path)):
            if name.startswith('pytorch_model') and name.endswith('.bin'):
                # raises UnsafeCheckpointError naming the file and globals
                safe_torch_load(osp.join(path, name), map_location='meta')
        raise


def _from_pretrained(pretrained: str, **kwargs):
    """Load ``BertModel`` weights from a folder or a hub name, offline first.

    Args:
        pretrained: A local folder (``config.json`` + weights), or a Hugging
            Face hub name such as ``'bert-base-uncased'``.
        **kwargs: Passed to ``BertModel.from_pretrained``.

    Returns:
        transformers.BertModel: The loaded model.

    Raises:
        FileNotFoundError: The folder is missing or incomplete, or the hub
            name is neither cached nor downloadable (offline, unreachable
            hub, failed download); the message says where to put the files.
        ValueError: ``pretrained`` is a file.
        RuntimeError: The checkpoint lacks encoder weights or has weights
            of other shapes.
    """
    transformers = _import_transformers()
    kwargs.update(output_loading_info=True)
    path = osp.expanduser(pretrained)
    if osp.isdir(path):
        missing = [] if osp.isfile(osp.join(
            path, 'config.json')) else ['config.json']
        if not any(osp.isfile(osp.join(path, f)) for f in WEIGHT_FILES):
            missing.append(' or '.join(WEIGHT_FILES))
        if missing:
            raise FileNotFoundError(
                f'BERT checkpoint folder {path!r} lacks {missing}; '
                f'{_placement_hint(pretrained)}')
        model, info = _from_folder(transformers, path, **kwargs)
        _check_loading_info(model, info, path)
        return model
    if osp.exists(path):
        raise ValueError(
            f'pretrained={pretrained!r} is a file; BertTextEncoder needs the '
            'folder holding config.json and the weights (e.g. '
            f'{osp.dirname(pretrained) or "."!r} if this file is in it)')
    # Paths that cannot be hub names, and the folder the configs use.
    if (not _REPO_ID.match(pretrained) or '..' in pretrained
            or pretrained.startswith(CHECKPOINT_DIR + '/')):
        raise FileNotFoundError(
            f'BERT checkpoint folder {osp.abspath(path)!r} '
            f'(pretrained={pretrained!r}) not found; '
            f'{_placement_hint(pretrained)}')

    # A hub name (or a relative folder that does not exist: the error below
    # names both readings). The cache first, without any network access.
    try:
        model, info = transformers.BertModel.from_pretrained(
            pretrained, local_files_only=True, **kwargs)
    except OSError:
        model = None
    if model is not None:
        _check_loading_info(model, info, pretrained)
        return model
    not_found = (f'pretrained={pretrained!r} is neither a local folder '
                 f'(no {osp.abspath(path)!r}) nor a Hugging Face hub model in '
                 'the local cache')
    hint = _placement_hint(f'{CHECKPOINT_DIR}/{pretrained.split("/")[-1]}',
                           pretrained)
    if hub_offline():
        raise FileNotFoundError(
            f'{not_found}, and downloading is off (HF_HUB_OFFLINE / '
            f'TRANSFORMERS_OFFLINE is set). To use it, {hint}.')
    endpoint = urlparse(
        os.environ.get('HF_ENDPOINT', 'https://huggingface.co'))
    host = endpoint.hostname or ''
    # Probe first, in a thread with a timeout: on a machine without network
    # name resolution alone can block for minutes.
    if not host or not host_reachable(host, endpoint.port or 443):
        raise FileNotFoundError(
            f'{not_found}, and {host or endpoint.geturl()!r} is unreachable '
            f'(no network). To use it, {hint}.')
    try:
        model, info = transformers.BertModel.from_pretrained(
            pretrained, **kwargs)
    except OSError as e:  # unknown repo, HTTP and connection errors
        raise FileNotFoundError(
            f'{not_found}, and downloading it failed ({e}). To use it, '
            f'{hint}.') from e
    _check_loading_info(model, info, pretrained)
    return model


@MODELS.register_module()
class BertTextEncoder(BaseModule):
    """BERT text encoder of CFine, with every token and the [CLS] attention.

    Implements ``docs/methods/cfine.md`` §2 on ``transformers.BertModel``
    with eager attention (SDPA and flash attention return no attention
    probabilities). Inputs are :class:`BertWordPieceTokenizer` ids
    (``[CLS] pieces [SEP] 0 ...``); the attention mask is ``ids != 0`` and
    the segment ids are all 0. The pooler is not built: CFine does not use
    it (cfine.md §2) and unused parameters break DDP.

    Exactly one of ``pretrained`` and ``config`` is given:

    - ``pretrained``: a local folder with ``config.json`` and the weights
      (e.g. ``checkpoints/bert-base-uncased``), or a hub name such as
      ``'bert-base-uncased'``, read from the Hugging Face cache or, when the
      hub is reachable and downloads are not switched off, downloaded.
      Otherwise a ``FileNotFoundError`` says where to put the files. A
      checkpoint missing any encoder weight is refused, never completed
      with random values.
    - ``config``: random initialisation from a ``BertConfig`` dict or a name
      of :data:`BERT_ARCHS` (``'bert-tiny'``, ``'bert-base'``).

    The vocabulary size must be the tokenizer's: ``vocab_file`` (the
    tokenizer's ``vocab.txt`` or folder) sets it for ``config`` (a
    ``vocab_size`` in the dict must then agree) and is checked against the
    checkpoint for ``pretrained``. Without ``vocab_file``, a ``config`` dict
    must hold ``vocab_size``. Ids outside the vocabulary raise a
    ``ValueError`` in :meth:`forward`, never an index error deep in BERT.

    Args:
        pretrained: Local checkpoint folder or hub name; see above.
        config: ``BertConfig`` keyword arguments or a :data:`BERT_ARCHS`
            name, for random initialisation.
        vocab_file: The tokenizer's ``vocab.txt`` (or its folder).
        output_attn: Also return the last layer's attention of the ``[CLS]``
            query, averaged over heads (``'attn'``).
        frozen: Stop gradients and keep the encoder in eval mode.
        init_cfg: mmengine init config, applied by ``init_weights`` after
            the BERT weights are loaded here.

    Attributes:
        embed_dim (int): Size of ``'global'`` and of every token (hidden
            size; there is no projection).
        width (int): Hidden size.
        context_length (int): ``max_position_embeddings``, the longest input.
        vocab_size (int): Number of token embeddings.
    """

    def __init__(self,
                 pretrained: Optional[str] = None,
                 config: Optional[Union[str, dict]] = None,
                 vocab_file: Optional[str] = None,
                 output_attn: bool = False,
                 frozen: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self._value_check = ValueCheck()
        if (pretrained is None) == (config is None):
            raise ValueError(
                'give exactly one of pretrained (a BERT checkpoint folder or '
                'hub name) and config (a BertConfig dict or one of '
                f'{sorted(BERT_ARCHS)}), got pretrained={pretrained!r}, '
                f'config={config!r}')
        transformers = _import_transformers()
        vocab_size = None if vocab_file is None else _vocab_size_of(vocab_file)
        # Eager attention: the only implementation that returns attention
        # probabilities (after attention dropout in train mode, as the
        # official BERT does, cfine.md §2). The open_clip towers compute
        # the one needed row beside a fused attention instead; here that
        # would draw the row's dropout mask apart from the one the
        # attention output uses, so token selection would see other
        # dropped weights than the official code's: BERT stays eager.
        if pretrained is not None:
            bert = _from_pretrained(
                pretrained,
                attn_implementation='eager',
                add_pooling_layer=False)
            if vocab_size is not None and vocab_size != bert.config.vocab_size:
                raise ValueError(
                    f'vocab_file {vocab_file!r} has {vocab_size} tokens but '
                    f'the checkpoint {pretrained!r} has '
                    f'{bert.config.vocab_size} token embeddings: use the '
                    'vocab.txt the checkpoint was trained with')
        else:
            bert = self._build_random(transformers, config, vocab_size,
                                      vocab_file)
        # The paper's tower runs in fp32; newer transformers keep a
        # checkpoint's own dtype (fp16 files stay fp16) unless told.
        self.bert = bert.float()
        # mmengine's BaseModule.init_weights calls init_weights() on every
        # child not marked is_init; BertModel.init_weights re-initialises
        # weights in some transformers versions, which would wipe the
        # checkpoint loaded above.
        self.bert.is_init = True

        cfg = self.bert.config
        self.width = self.embed_dim = cfg.hidden_size
        self.context_length = cfg.max_position_embeddings
        self.vocab_size = cfg.vocab_size
        self.output_attn = output_attn
        self.frozen = frozen
        if frozen:
            freeze(self)
            self.train(False)

    @staticmethod
    def _build_random(transformers, config: Union[str, dict],
                      vocab_size: Optional[int], vocab_file: Optional[str]):
        """A randomly initialised ``BertModel`` (no pooler) from ``config``."""
        if isinstance(config, str):
            if config not in BERT_ARCHS:
                raise ValueError(f'unknown BERT arch {config!r}; named ones: '
                                 f'{sorted(BERT_ARCHS)} (or pass a BertConfig '
                                 'dict)')
            config = BERT_ARCHS[config]
        if not isinstance(config, dict):
            raise TypeError('config must be a BertConfig dict or a name of '
                            f'BERT_ARCHS, got {type(config).__name__}')
        config = dict(config)
        given = config.get('vocab_size')
        if vocab_size is None and given is None:
            raise ValueError(
                'a randomly initialised BERT needs its vocabulary size: set '
                'vocab_file (the tokenizer\'s vocab.txt) or config '
                '"vocab_size" (the tokenizer\'s vocab_size)')
        if vocab_size is not None and given is not None and (given
                                                             != vocab_size):
            raise ValueError(
                f'config vocab_size={given} but vocab_file {vocab_file!r} has '
                f'{vocab_size} tokens; drop one of them')
        config['vocab_size'] = vocab_size if vocab_size is not None else given
        config['attn_implementation'] = 'eager'
        bert_config = transformers.BertConfig(**config)
        return transformers.BertModel(bert_config, add_pooling_layer=False)

    def train(self, mode: bool = True) -> 'BertTextEncoder':
        """Set train mode; a frozen encoder stays in eval mode."""
        return super().train(mode and not self.frozen)

    def forward(self, text: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Encode tokenised captions.

        Args:
            text: ``B x L`` int64 ids from :class:`BertWordPieceTokenizer`
                (``[CLS] ... [SEP]``, 0-padded), ``L <= context_length``.

        Returns:
            dict: ``'global'`` ``B x H``, the ``[CLS]`` token (position 0) of
            the last hidden state; ``'tokens'`` ``B x L x H``, the last
            hidden state at every position (padding included, as in the
            paper); ``'mask'`` ``B x L`` bool, ``text != 0``; and with
            ``output_attn`` ``'attn'`` ``B x L``, the ``[CLS]`` query row of
            the last layer's attention averaged over heads: rows sum to 1 in
            eval mode, padding keys get ~0, and in train mode it is taken
            after attention dropout (cfine.md §2).
        """
        if text.dim() != 2:
            raise ValueError(f'text must be B x L token ids, got shape '
                             f'{tuple(text.shape)}')
        length = text.shape[1]
        if length > self.context_length:
            raise ValueError(f'text has {length} tokens but BERT has '
                             f'{self.context_length} positions; tokenize with '
                             f'context_length<={self.context_length}')
        # data-dependent check: skipped while torch.export traces (ONNX) and
        # on accelerators after the first calls (value_checks)
        checked = (not torch.compiler.is_exporting() and text.numel()
                   and self._value_check.due(text))
        if checked and (int(text.min()) < 0
                        or int(text.max()) >= self.vocab_size):
            raise ValueError(
                f'token ids must lie in [0, {self.vocab_size}), got '
                f'[{int(text.min())}, {int(text.max())}]: the tokenizer\'s '
                'vocabulary is not this encoder\'s (set vocab_file to its '
                'vocab.txt)')
        mask = text != PAD_ID
        out = self.bert(
            input_ids=text,
            attention_mask=mask.long(),
            token_type_ids=torch.zeros_like(text),
            output_attentions=self.output_attn,
            return_dict=True)
        tokens = out.last_hidden_state
        result = {'global': tokens[:, 0], 'tokens': tokens, 'mask': mask}
        if self.output_attn:
            # attentions[-1]: B x heads x L(query) x L(key); row 0 = [CLS].
            result['attn'] = out.attentions[-1].mean(dim=1)[:, 0]
        return result
