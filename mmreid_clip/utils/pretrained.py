"""Build a model without the pretrained files a checkpoint replaces.

A trained checkpoint holds every weight of the model: the CLIP archive and
the BERT folder the config starts training from are read only to be
overwritten. :func:`drop_missing_pretrained` rewrites a model config so that
the towers whose pretrained file is not there are built from their
architecture alone; loading the checkpoint (strictly: ``tools/test.py``'s
``CheckpointMatchHook``, :func:`mmreid_clip.apis.load_model_weights`) then
fails if the checkpoint does not supply every weight, so nothing random is
ever evaluated.

What the build still needs from a missing file is recovered:

- open_clip towers: the MLP activation. OpenAI's archives
  (``ViT-B-16.pt``, ``RN50.pt``, ...) and the ``'openai'`` tag were trained
  with QuickGELU, which they switch on by themselves; without the file
  ``quick_gelu=True`` is set instead (the configs' ``*-quickgelu`` archs
  already say it).
- BERT (:class:`~mmreid_clip.models.BertTextEncoder`): the ``BertConfig``,
  from the folder's ``config.json`` when only the weights are missing,
  otherwise from the checkpoint's tensor shapes (hidden size, layers,
  intermediate size, positions, vocabulary) with BERT's 64-wide attention
  heads (every released BERT); set ``config`` by hand for another layout.

The tokenizer's ``vocab.txt`` is not a weight file: text queries still need
it.
"""
import json
import os
import os.path as osp
import re
from typing import Any, Dict, List

__all__ = [
    'WEIGHT_SUFFIXES', 'bert_config_from_state_dict',
    'drop_missing_pretrained', 'looks_like_path', 'missing_weights_path',
    'pretrained_towers', 'set_clip_weights', 'without_weights'
]

#: OpenAI's CLIP archive names (``clip.load`` downloads), trained with
#: QuickGELU.
_OPENAI_ARCHIVE = re.compile(
    r'^(RN\d+(x\d+)?|ViT-[BLH]-\d+(@\d+px)?)\.pt$', re.IGNORECASE)
_BERT = 'BertTextEncoder'
#: Endings of files named where weights are expected: weight archives, and
#: ``.json`` for the config of a Hugging Face folder given as a file.
WEIGHT_SUFFIXES = ('.pt', '.pth', '.bin', '.safetensors', '.ckpt', '.json')


def looks_like_path(value: str) -> bool:
    """Whether a ``pretrained`` value names a file rather than a tag.

    open_clip tags (``'openai'``, ``'laion2b_s34b_b88k'``) and hub names
    (``'bert-base-uncased'``) have no separator and no weight-file ending;
    anything with a ``/`` (or the platform's separator), a leading ``~`` or
    a :data:`WEIGHT_SUFFIXES` ending (any case) is a path.

    Args:
        value (str): The value.

    Returns:
        bool: True for a path.
    """
    return (os.sep in value or '/' in value or value.startswith('~')
            or value.lower().endswith(WEIGHT_SUFFIXES))


def missing_weights_path(value: Any) -> bool:
    """Whether ``value`` is a path (:func:`looks_like_path`) that does not
    exist (``~`` expanded).

    Args:
        value (Any): A ``pretrained`` value; non-strings are not paths.

    Returns:
        bool: True for a missing file or folder.
    """
    return (isinstance(value, str) and looks_like_path(value)
            and not osp.exists(osp.expanduser(value)))


def bert_config_from_state_dict(state_dict: Dict[str, Any],
                                prefix: str) -> Dict[str, int]:
    """The ``BertConfig`` of the BERT whose weights are under ``prefix``.

    Args:
        state_dict (dict): Tensors by name (shapes are all that is read).
        prefix (str): E.g. ``'text_encoder.bert.'``.

    Returns:
        dict: ``vocab_size``, ``hidden_size``, ``num_hidden_layers``,
        ``num_attention_heads`` (hidden size / 64), ``intermediate_size``,
        ``max_position_embeddings``, ``type_vocab_size``.

    Raises:
        KeyError: no BERT embedding under ``prefix``.
    """
    emb = state_dict.get(prefix + 'embeddings.word_embeddings.weight')
    if emb is None:
        raise KeyError(f'no {prefix}embeddings.word_embeddings.weight in the '
                       'checkpoint')
    vocab, hidden = tuple(emb.shape)
    layers = {
        int(m.group(1))
        for k in state_dict for m in [
            re.match(re.escape(prefix) + r'encoder\.layer\.(\d+)\.', k)
        ] if m
    }
    inter = state_dict[prefix +
                       'encoder.layer.0.intermediate.dense.weight'].shape[0]
    pos = state_dict[prefix + 'embeddings.position_embeddings.weight']
    types = state_dict.get(prefix + 'embeddings.token_type_embeddings.weight')
    return dict(
        vocab_size=int(vocab),
        hidden_size=int(hidden),
        num_hidden_layers=len(layers),
        num_attention_heads=max(int(hidden) // 64, 1),
        intermediate_size=int(inter),
        max_position_embeddings=int(pos.shape[0]),
        type_vocab_size=2 if types is None else int(types.shape[0]))


def _bert_prefix(path: str, state_dict: Dict[str, Any]) -> str:
    prefix = f'{path}.bert.' if path else 'bert.'
    key = 'embeddings.word_embeddings.weight'
    if prefix + key in state_dict:
        return prefix
    found = [k[:-len(key)] for k in state_dict if k.endswith(key)]
    if len(found) == 1:
        return found[0]
    raise KeyError(f'cannot find the weights of the BERT at model.{path} in '
                   f'the checkpoint (BERT embeddings at: {found or "none"})')


def drop_missing_pretrained(model_cfg: dict,
                            state_dict_fn=None,
                            only_missing: bool = True) -> List[str]:
    """Build the towers whose pretrained file is missing without it.

    Changes ``model_cfg`` in place. Only call it when a full checkpoint is
    loaded afterwards.

    Args:
        model_cfg (dict): The ``model`` config.
        state_dict_fn (Callable, optional): Returns the checkpoint's state
            dict; called only when a BERT's layout must be read from it.
        only_missing (bool): Keep the pretrained files that exist (default);
            False drops every one (the weights come from the checkpoint
            anyway).

    Returns:
        list[str]: One line per tower changed, for the log.

    Raises:
        KeyError: a BERT without ``config.json`` whose weights are not in
            the checkpoint.
    """
    notes: List[str] = []
    cache: Dict[str, Any] = {}

    def state_dict():
        if 'sd' not in cache:
            if state_dict_fn is None:
                raise KeyError('the BERT layout is needed from the checkpoint '
                               'but none was given')
            cache['sd'] = state_dict_fn()
        return cache['sd']

    def visit(node: Any, path: str) -> None:
        if isinstance(node, dict):
            value = node.get('pretrained')
            drop = (missing_weights_path(value) if only_missing else
                    isinstance(value, str) and bool(value))
            if drop:
                where = f'model.{path}' if path else 'model'
                if str(node.get('type', '')).endswith(_BERT):
                    _drop_bert(node, path, state_dict)
                else:
                    tag = osp.basename(value)
                    if (_OPENAI_ARCHIVE.match(tag) or value == 'openai') \
                            and node.get('quick_gelu') is None:
                        node['quick_gelu'] = True
                    node['pretrained'] = None
                notes.append(f'{where}: {value!r} is not loaded (built '
                             'without it; the checkpoint holds its weights)')
            for key, child in node.items():
                visit(child, f'{path}.{key}' if path else str(key))
        elif isinstance(node, (list, tuple)):
            for i, child in enumerate(node):
                visit(child, f'{path}.{i}')

    visit(model_cfg, '')
    return notes


def _drop_bert(node: dict, path: str, state_dict) -> None:
    folder = osp.expanduser(node['pretrained'])
    config_json = osp.join(folder, 'config.json')
    if osp.isfile(config_json):
        with open(config_json) as f:
            config = json.load(f)
    else:
        sd = state_dict()
        config = bert_config_from_state_dict(sd, _bert_prefix(path, sd))
    node['pretrained'] = None
    node['config'] = config
    # the vocabulary size is the checkpoint's (a vocab_file that does not
    # match is still an error of the tokenizer's, in the dataset)
    node['vocab_file'] = None


def pretrained_towers(model_cfg: dict) -> List[tuple]:
    """``(key path, pretrained value)`` of every tower config of the model
    (a dict with a ``pretrained`` key)."""
    out = []

    def visit(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if 'pretrained' in node:
                out.append((f'model.{path}' if path else 'model',
                            node['pretrained']))
            for key, child in node.items():
                visit(child, f'{path}.{key}' if path else str(key))
        elif isinstance(node, (list, tuple)):
            for i, child in enumerate(node):
                visit(child, f'{path}.{i}')

    visit(model_cfg, '')
    return out


def set_clip_weights(model_cfg: dict, weights: str) -> List[str]:
    """Point every open_clip tower at one CLIP weights file, in place.

    For zero-shot use without a trained checkpoint: the towers of types
    ``OpenCLIP*`` get ``pretrained=weights`` (an OpenAI archive, an
    open_clip state dict or a tag, see ``README.md``, "CLIP weights").

    Returns:
        list[str]: The key paths changed.

    Raises:
        ValueError: the model has no open_clip tower.
    """
    changed = []

    def visit(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if str(node.get('type', '')).startswith('OpenCLIP'):
                node['pretrained'] = weights
                changed.append(f'model.{path}' if path else 'model')
            for key, child in node.items():
                visit(child, f'{path}.{key}' if path else str(key))
        elif isinstance(node, (list, tuple)):
            for i, child in enumerate(node):
                visit(child, f'{path}.{i}')

    visit(model_cfg, '')
    if not changed:
        raise ValueError('the model has no open_clip tower (type OpenCLIP*) '
                         'to load CLIP weights into')
    return changed


def without_weights(model_cfg: dict) -> dict:
    """A copy of ``model_cfg`` built from architectures alone.

    For tools that need the model's structure, not its values (parameter
    groups, FLOPs): every ``pretrained`` is dropped; a BERT folder's
    ``config.json`` is used when it is there, otherwise bert-base-uncased's
    layout; a BERT ``vocab_file`` that is missing is replaced by
    bert-base-uncased's vocabulary size (30522), which only sizes the
    token embedding.

    Args:
        model_cfg (dict): The ``model`` config (not changed).

    Returns:
        dict: The new config.
    """
    import copy

    from mmreid_clip.models.backbones.bert_text import BERT_BASE
    out = copy.deepcopy(
        model_cfg.to_dict() if hasattr(model_cfg, 'to_dict') else model_cfg)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if str(node.get('type', '')).endswith(_BERT):
                folder = node.get('pretrained')
                if isinstance(folder, str) and not osp.isfile(
                        osp.join(osp.expanduser(folder), 'config.json')):
                    node.update(
                        pretrained=None,
                        config=dict(BERT_BASE, vocab_size=30522),
                        vocab_file=None)
                vocab = node.get('vocab_file')
                if isinstance(vocab, str) and not osp.exists(vocab):
                    node['vocab_file'] = None
                    if isinstance(node.get('config'), dict):
                        node['config'].setdefault('vocab_size', 30522)
            for child in node.values():
                visit(child)
        elif isinstance(node, (list, tuple)):
            for child in node:
                visit(child)

    visit(out)
    drop_missing_pretrained(out, only_missing=False)
    return out
