"""BertTextEncoder: CFine's BERT text tower (docs/methods/cfine.md §2)."""
import math
import os

import pytest
import torch
from mmengine.registry import init_default_scope

from mmreid_clip.models.backbones import BERT_TINY, BertTextEncoder
from mmreid_clip.registry import MODELS

transformers = pytest.importorskip('transformers')

VOCAB = 60
# smaller than BERT_TINY: 3 heads so a head-averaging bug cannot hide
MICRO = dict(
    hidden_size=48,
    num_hidden_layers=2,
    num_attention_heads=3,
    intermediate_size=96,
    max_position_embeddings=32,
    vocab_size=VOCAB)
CLS, SEP = 2, 3


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('mmreid_clip')


def build(**kwargs):
    cfg = dict(type='BertTextEncoder')
    cfg.update(kwargs)
    return MODELS.build(cfg)


def ids_batch(length=16):
    """Two captions of different lengths, [CLS] ... [SEP] then 0s."""
    rows = [[CLS, 10, 11, 12, 13, SEP], [CLS, 20, 21, 22, 23, 24, 25, SEP]]
    text = torch.zeros(len(rows), length, dtype=torch.long)
    for i, row in enumerate(rows):
        text[i, :len(row)] = torch.tensor(row)
    return text


def write_vocab(path, size):
    tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    tokens += [f'w{i}' for i in range(size - len(tokens))]
    path.write_text('\n'.join(tokens) + '\n', encoding='utf-8')
    return str(path)


def test_outputs_and_contract():
    torch.manual_seed(0)
    model = build(config=MICRO, output_attn=True).eval()
    assert isinstance(model, BertTextEncoder)
    assert model.embed_dim == model.width == 48
    assert model.context_length == 32 and model.vocab_size == VOCAB
    assert model.bert.config._attn_implementation == 'eager'
    text = ids_batch()
    with torch.no_grad():
        out = model(text)
    assert set(out) == {'global', 'tokens', 'mask', 'attn'}
    assert out['tokens'].shape == (2, 16, 48)
    assert out['global'].shape == (2, 48)
    assert torch.equal(out['global'], out['tokens'][:, 0])
    assert out['mask'].dtype == torch.bool
    assert torch.equal(out['mask'], text != 0)
    attn = out['attn']
    assert attn.shape == (2, 16)
    mask = out['mask']
    torch.testing.assert_close(
        (attn * mask).sum(-1), torch.ones(2), atol=1e-5, rtol=0)
    assert attn[~mask].abs().max() < 1e-6  # pad keys get ~0
    assert (attn[mask] > 0).all()
    # no attention map unless asked
    model.output_attn = False
    assert 'attn' not in model(text)


def test_attn_is_cls_query_row_averaged_over_heads():
    """Recompute the last layer's attention from its input by hand."""
    torch.manual_seed(1)
    model = build(config=MICRO, output_attn=True).eval()
    text = ids_batch(12)
    with torch.no_grad():
        attn = model(text)['attn']
        hidden = model.bert(
            input_ids=text,
            attention_mask=(text != 0).long(),
            token_type_ids=torch.zeros_like(text),
            output_hidden_states=True).hidden_states[-2]
        layer = model.bert.encoder.layer[-1].attention.self
        heads, dim = 3, 16

        def split(x):  # B x L x H -> B x heads x L x dim
            return x.view(2, 12, heads, dim).transpose(1, 2)

        q, k = split(layer.query(hidden)), split(layer.key(hidden))
        scores = q @ k.transpose(-1, -2) / math.sqrt(dim)
        scores = scores.masked_fill((text == 0)[:, None, None], -1e9)
        expected = scores.softmax(-1).mean(1)[:, 0]
    torch.testing.assert_close(attn, expected, atol=1e-5, rtol=1e-4)


def test_padding_does_not_change_real_tokens():
    torch.manual_seed(2)
    model = build(config=MICRO).eval()
    short, long = ids_batch(8), ids_batch(30)
    with torch.no_grad():
        out_short, out_long = model(short), model(long)
        # the same ids without the mask: padding then leaks into [CLS]
        unmasked = model.bert(
            input_ids=long,
            token_type_ids=torch.zeros_like(long)).last_hidden_state[:, 0]
    torch.testing.assert_close(
        out_short['global'], out_long['global'], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        out_short['tokens'], out_long['tokens'][:, :8], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(unmasked, out_long['global'], atol=1e-3)


def test_train_mode_attention_dropout():
    """cfine.md §2: in train mode A_t is taken after attention dropout."""
    torch.manual_seed(3)
    model = build(config=MICRO, output_attn=True)
    text = ids_batch()
    model.eval()
    with torch.no_grad():
        clean = model(text)['attn']
    model.train()
    with torch.no_grad():
        dropped = model(text)['attn']
    assert not torch.allclose(clean, dropped)


def test_gradients_reach_every_parameter():
    # no pooler: every parameter is used, as DDP requires
    model = build(config=MICRO)
    assert not hasattr(model.bert, 'pooler') or model.bert.pooler is None
    out = model(ids_batch())
    (out['global'].sum() + out['tokens'].sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_frozen():
    model = build(config=MICRO, frozen=True)
    assert not model.training
    model.train()
    assert not model.training and not model.bert.training
    assert all(not p.requires_grad for p in model.parameters())
    assert not model(ids_batch())['global'].requires_grad


def test_named_tiny_config_and_vocab_file(tmp_path):
    vocab_file = write_vocab(tmp_path / 'vocab.txt', 77)
    model = build(config='bert-tiny', vocab_file=vocab_file)
    cfg = model.bert.config
    assert cfg.vocab_size == 77 and model.vocab_size == 77
    for key, value in BERT_TINY.items():
        assert getattr(cfg, key) == value, key
    assert model.embed_dim == 128 and model.context_length == 128
    # a folder holding vocab.txt works too
    assert build(
        config=dict(BERT_TINY), vocab_file=str(tmp_path)).vocab_size == 77
    with pytest.raises(ValueError, match='vocab_size=50 but vocab_file'):
        build(config=dict(BERT_TINY, vocab_size=50), vocab_file=vocab_file)
    with pytest.raises(ValueError, match='vocabulary size'):
        build(config='bert-tiny')
    with pytest.raises(ValueError, match='unknown BERT arch'):
        build(config='bert-huge', vocab_file=vocab_file)
    with pytest.raises(FileNotFoundError, match='build_wordpiece_vocab'):
        build(config='bert-tiny', vocab_file=str(tmp_path / 'no.txt'))


def test_bad_inputs_fail_clearly():
    model = build(config=MICRO)
    text = ids_batch()
    text[1, 3] = VOCAB  # an id the embedding does not have
    with pytest.raises(ValueError, match=r'\[0, 60\)'):
        model(text)
    with pytest.raises(ValueError, match='32 positions'):
        model(ids_batch(40))
    with pytest.raises(ValueError, match='B x L'):
        model(ids_batch()[0])
    with pytest.raises(ValueError, match='exactly one of'):
        build()
    with pytest.raises(ValueError, match='exactly one of'):
        build(pretrained='x', config=MICRO)


def save_checkpoint(folder, pretraining=False):
    torch.manual_seed(4)
    config = transformers.BertConfig(**MICRO)
    cls = (
        transformers.BertForPreTraining
        if pretraining else transformers.BertModel)
    model = cls(config)
    model.save_pretrained(str(folder))
    return model


def test_load_local_folder(tmp_path):
    reference = save_checkpoint(tmp_path / 'bert')
    model = build(pretrained=str(tmp_path / 'bert'), output_attn=True)
    assert model.bert.config._attn_implementation == 'eager'
    expected = reference.state_dict()
    loaded = model.bert.state_dict()
    assert loaded  # pooler dropped, everything else loaded exactly
    for key, value in loaded.items():
        assert torch.equal(value, expected[key]), key
    assert model.vocab_size == VOCAB
    # mmengine's init_weights must not re-initialise loaded weights
    model.init_weights()
    for key, value in model.bert.state_dict().items():
        assert torch.equal(value, expected[key]), key
    # outputs match the reference model run the official code's way
    text = ids_batch()
    reference.eval()
    model.eval()
    with torch.no_grad():
        ref = reference(
            input_ids=text, attention_mask=(text
                                            != 0).long()).last_hidden_state
        torch.testing.assert_close(model(text)['tokens'], ref)
    # the tokenizer's vocabulary is checked against the checkpoint
    with pytest.raises(ValueError, match='has 61 tokens but'):
        build(
            pretrained=str(tmp_path / 'bert'),
            vocab_file=write_vocab(tmp_path / 'v.txt', 61))


def test_load_pretraining_layout(tmp_path):
    """bert-base-uncased is stored as BertForPreTraining ("bert." keys)."""
    reference = save_checkpoint(tmp_path / 'pt', pretraining=True)
    model = build(pretrained=str(tmp_path / 'pt'))
    expected = reference.bert.state_dict()
    for key, value in model.bert.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_incomplete_checkpoint_is_refused(tmp_path):
    from safetensors.torch import load_file, save_file
    save_checkpoint(tmp_path / 'bert')
    path = str(tmp_path / 'bert' / 'model.safetensors')
    state = load_file(path)
    dropped = [k for k in state if 'layer.1.output.dense.weight' in k]
    assert dropped
    for key in dropped:
        del state[key]
    save_file(state, path, metadata={'format': 'pt'})
    with pytest.raises(RuntimeError, match='randomly initialised'):
        build(pretrained=str(tmp_path / 'bert'))


def test_missing_or_incomplete_folder(tmp_path):
    missing = str(tmp_path / 'nowhere' / 'bert-base-uncased')
    with pytest.raises(FileNotFoundError) as err:
        build(pretrained=missing)
    assert missing in str(err.value) and 'config.json' in str(err.value)
    with pytest.raises(FileNotFoundError, match='checkpoints/bert-base'):
        build(pretrained='checkpoints/bert-base-uncased')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match="lacks \\['config.json'"):
        build(pretrained=str(tmp_path / 'empty'))
    save_checkpoint(tmp_path / 'noweights')
    os.remove(tmp_path / 'noweights' / 'model.safetensors')
    with pytest.raises(FileNotFoundError, match='model.safetensors or'):
        build(pretrained=str(tmp_path / 'noweights'))
    (tmp_path / 'file.bin').write_bytes(b'')
    with pytest.raises(ValueError, match='is a file'):
        build(pretrained=str(tmp_path / 'file.bin'))


# a hub name no cache holds, so that only the offline handling can answer
HUB_NAME = 'mmreid-clip-tests/bert-base-uncased'


@pytest.fixture
def bert_loads(monkeypatch):
    """The keyword arguments of every ``BertModel.from_pretrained`` call."""
    calls = []
    original = transformers.BertModel.from_pretrained

    def spy(cls, *args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.BertModel, 'from_pretrained',
                        classmethod(spy))
    return calls


def test_offline_hub_name_fails_fast(monkeypatch, refused_network,
                                     bert_loads):
    """Offline, a hub name is looked up in the local cache only: no
    connection, no name lookup, no download attempt (what made it slow)."""
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    for name in (HUB_NAME, 'bert-base-uncased'):
        with pytest.raises(FileNotFoundError) as err:
            build(pretrained=name)
        message = str(err.value)
        assert 'HF_HUB_OFFLINE' in message and repr(name) in message
        assert "pretrained='checkpoints/bert-base-uncased'" in message
        assert 'config.json' in message and 'vocab.txt' in message
    assert refused_network == []
    assert bert_loads and all(k.get('local_files_only') for k in bert_loads)


def test_unreachable_hub_fails_fast(monkeypatch, refused_network,
                                    bert_loads):
    """Online but unreachable: one TCP probe of the endpoint, bounded by
    the probe timeout, and no download once it fails."""
    from mmreid_clip.models.backbones.hub_probe import PROBE_TIMEOUT_S
    monkeypatch.setenv('HF_HUB_OFFLINE', '0')
    monkeypatch.delenv('TRANSFORMERS_OFFLINE', raising=False)
    monkeypatch.setenv('HF_ENDPOINT', 'http://127.0.0.1:9')
    with pytest.raises(FileNotFoundError, match='127.0.0.1.*unreachable'):
        build(pretrained=HUB_NAME)
    assert refused_network == [(('127.0.0.1', 9), PROBE_TIMEOUT_S)]
    assert bert_loads and all(k.get('local_files_only') for k in bert_loads)
