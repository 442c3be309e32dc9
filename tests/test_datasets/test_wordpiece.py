"""BERT WordPiece: vocabulary builder, tokenizer, TokenizeCaption wiring.

CFine's text input (docs/methods/cfine.md §2): ``[CLS] pieces [SEP]``
right-padded with 0 to 100, truncation keeping ``[SEP]``.
"""
import json
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from mmreid_clip.datasets.tokenizers import (BERT_SPECIAL_TOKENS,
                                             BertWordPieceTokenizer,
                                             build_wordpiece_vocab,
                                             load_wordpiece_vocab)
from mmreid_clip.datasets.transforms import TokenizeCaption
from mmreid_clip.registry import TOKENIZER

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402

CAPTIONS = [
    'A woman in a red coat, carrying a black bag.',
    'The man wears blue jeans and white shoes!',
    "He's wearing a grey t-shirt; it's short-sleeved.",
    'A woman with long black hair wears a red skirt and white shoes.',
    'The young man is walking, he wears a black jacket and blue jeans.',
    'Une femme très élégante porte un manteau, 日本 caption.',
]
LONG = ' '.join(['the pedestrian wears a long dark coat'] * 20)


def write_vocab(path, tokens):
    path.write_text('\n'.join(tokens) + '\n', encoding='utf-8')
    return str(path)


@pytest.fixture(scope='module')
def vocab_file(tmp_path_factory):
    vocab = build_wordpiece_vocab(CAPTIONS + [LONG], vocab_size=300)
    return write_vocab(tmp_path_factory.mktemp('wp') / 'vocab.txt', vocab)


@pytest.fixture(scope='module')
def tokenizer(vocab_file):
    return BertWordPieceTokenizer(vocab_file, context_length=100)


# ----------------------------------------------------------- vocab builder


def test_vocab_layout_and_coverage():
    vocab = build_wordpiece_vocab(CAPTIONS, vocab_size=400)
    assert tuple(vocab[:5]) == BERT_SPECIAL_TOKENS  # [PAD] = 0
    assert len(vocab) == len(set(vocab)) <= 400
    # the corpus is lower-cased and accent-stripped, as the tokenizer sees it
    assert 'A' not in vocab and 'é' not in vocab
    for char in 'abcdefghijklmnoprstuvwy,.!;\'-日本':
        assert char in vocab and '##' + char in vocab, char
    # frequent whole words are learned as single pieces
    for word in ('woman', 'wears', 'black', 'the'):
        assert word in vocab, word
    # the alphabet (starts, then continuations) precedes the learned pieces
    num_chars = vocab.index('##' + vocab[5]) - 5
    assert all(len(t) == 1 for t in vocab[5:5 + num_chars])
    assert vocab[5 + num_chars:5 +
                 2 * num_chars] == ['##' + t for t in vocab[5:5 + num_chars]]
    assert all(
        len(t) > 1 and len(t.lstrip('#')) > 1
        for t in vocab[5 + 2 * num_chars:])


def test_vocab_alphabet_order():
    # a: 4, b: 2, c: 2 (b before c: alphabetical), d: 1
    vocab = build_wordpiece_vocab(['aa ab ac', 'cb d'],
                                  vocab_size=50,
                                  min_frequency=99)
    assert vocab == list(BERT_SPECIAL_TOKENS) + [
        'a', 'b', 'c', 'd', '##a', '##b', '##c', '##d'
    ]


def test_vocab_merges_by_frequency_then_alphabet():
    # pairs (t,##h) x3, (h,##e)... : 'th' is the most frequent merge; 'ab'
    # and 'ba' tie at 2 and come alphabetically
    vocab = build_wordpiece_vocab(['th th th ab ab ba ba'],
                                  vocab_size=100,
                                  min_frequency=2)
    learned = vocab[5 + 2 * 4:]
    assert learned == ['th', 'ab', 'ba']
    # min_frequency stops learning; vocab_size caps it
    assert build_wordpiece_vocab(['th th th ab ab'], min_frequency=3)[-1] \
        == 'th'
    capped = build_wordpiece_vocab(['th th th ab ab ba ba'], vocab_size=14)
    assert capped[-1] == 'th' and len(capped) == 14


def test_vocab_is_deterministic_and_size_checked():
    a = build_wordpiece_vocab(CAPTIONS, vocab_size=100)
    b = build_wordpiece_vocab(list(reversed(CAPTIONS)), vocab_size=100)
    assert a == b and len(a) == 100
    with pytest.raises(ValueError, match='must be >= '):
        build_wordpiece_vocab(CAPTIONS, vocab_size=20)
    with pytest.raises(ValueError, match='no words'):
        build_wordpiece_vocab([' ', ''])
    with pytest.raises(TypeError):
        build_wordpiece_vocab(['fine', 3])


def test_in_corpus_text_has_no_unk(vocab_file, tokenizer):
    assert tokenizer.unk_token_id == 1
    for caption in CAPTIONS + [LONG]:
        ids = tokenizer.encode(caption)
        assert ids and tokenizer.unk_token_id not in ids, caption
    # unseen words made of seen characters still avoid [UNK]
    assert tokenizer.unk_token_id not in tokenizer.encode('Brown boots')
    # an unseen character does not
    assert tokenizer.encode('x') == [tokenizer.unk_token_id]


# --------------------------------------------------------------- tokenizer


def test_layout_cls_pieces_sep_pad(tokenizer):
    tf = TokenizeCaption(tokenizer=tokenizer, truncation='error')
    caption = CAPTIONS[0]
    pieces = tokenizer.encode(caption)
    out = tf(dict(caption=caption, caption_id=0))['text']
    assert out.dtype == np.int64 and out.shape == (100, )
    n = len(pieces)
    assert out[0] == tokenizer.bos_token_id == 2  # [CLS]
    assert out[n + 1] == tokenizer.eos_token_id == 3  # [SEP]
    assert out[1:n + 1].tolist() == pieces
    assert (out[n + 2:] == 0).all() and tokenizer.pad_token_id == 0
    assert (out[:n + 2] != 0).all()
    assert tokenizer.decode(out) == 'a woman in a red coat, carrying a ' \
        'black bag.'


def test_matches_hugging_face_bert_tokenizer(tmp_path, vocab_file):
    """Same ids as transformers' BERT tokenizer with the official call
    (max_length, padding='max_length', truncation=True)."""
    transformers = pytest.importorskip('transformers')
    folder = tmp_path / 'bert'
    folder.mkdir()
    (folder / 'vocab.txt').write_text(
        open(vocab_file, encoding='utf-8').read(), encoding='utf-8')
    hf_class = getattr(transformers, 'BertTokenizerFast',
                       transformers.BertTokenizer)
    hf = hf_class.from_pretrained(str(folder), do_lower_case=True)
    ours = BertWordPieceTokenizer(str(folder), context_length=24)
    texts = CAPTIONS + [LONG, 'x marks [SEP]', '']
    expected = hf(
        texts, max_length=24, padding='max_length',
        truncation=True)['input_ids']
    got = ours(texts[:-2] + ['x marks', ''], truncation='keep_eot')
    # HF treats a typed "[SEP]" as the special token; ours keeps it text
    assert got[:-2].tolist() == expected[:-2]
    assert got[-1].tolist() == expected[-1] == [2, 3] + [0] * 22
    pieces = ours.encode('x marks [SEP]')
    assert ours('x marks [SEP]')[0, 1:len(pieces) + 1].tolist() == pieces
    assert ours.tokenize('[SEP]')[1:4] == ['s', '##e', '##p']


def test_truncation_keeps_sep_or_raises(vocab_file):
    tok = BertWordPieceTokenizer(vocab_file, context_length=16)
    pieces = tok.encode(LONG)
    assert len(pieces) > 14
    keep = TokenizeCaption(tokenizer=tok, truncation='keep_eot')
    out = keep(dict(caption=LONG, caption_id=7))['text']
    assert out.tolist() == [2] + pieces[:14] + [3]
    assert keep.num_truncated == 1
    strict = TokenizeCaption(tokenizer=tok, truncation='error')
    with pytest.raises(ValueError, match='caption 7 has'):
        strict(dict(caption=LONG, caption_id=7))
    # exactly L tokens is not a truncation
    fit = ' '.join(['a'] * 14)
    assert strict(dict(
        caption=fit))['text'].tolist() == [2
                                           ] + [tok.encode('a')[0]] * 14 + [3]


def test_built_from_registry_and_folder(tmp_path, vocab_file):
    folder = tmp_path / 'ckpt'
    folder.mkdir()
    write_vocab(folder / 'vocab.txt',
                open(vocab_file, encoding='utf-8').read().splitlines())
    tok = TOKENIZER.build(
        dict(type='BertWordPieceTokenizer', vocab_file=str(folder)))
    assert isinstance(tok, BertWordPieceTokenizer)
    assert tok.vocab_file == str(folder / 'vocab.txt')
    assert tok.context_length == 100
    assert tok.vocab_size == len(load_wordpiece_vocab(vocab_file))
    tf = TokenizeCaption(
        tokenizer=dict(
            type='BertWordPieceTokenizer',
            vocab_file=vocab_file,
            context_length=32))
    assert tf.context_length == 32
    assert tf(dict(caption='A man.'))['text'].shape == (32, )


def test_pickles_for_dataloader_workers(tokenizer):
    clone = pickle.loads(pickle.dumps(tokenizer))
    for caption in CAPTIONS:
        assert clone.encode(caption) == tokenizer.encode(caption)


def test_lowercase_false_keeps_case(tmp_path):
    vocab = build_wordpiece_vocab(['Red red'], lowercase=False)
    assert 'R' in vocab and 'r' in vocab
    path = write_vocab(tmp_path / 'vocab.txt', vocab)
    cased = BertWordPieceTokenizer(path, lowercase=False)
    lower = BertWordPieceTokenizer(path)
    assert cased.encode('Red') != lower.encode('Red')
    assert cased.tokenize('Red') == ['R', '##ed']
    assert lower.tokenize('Red') == ['r', '##ed']


def test_missing_or_bad_vocab(tmp_path):
    missing = str(tmp_path / 'nope' / 'vocab.txt')
    with pytest.raises(FileNotFoundError) as err:
        BertWordPieceTokenizer(missing)
    assert missing in str(err.value)
    assert 'build_wordpiece_vocab.py' in str(err.value)
    with pytest.raises(FileNotFoundError, match='vocab.txt'):
        BertWordPieceTokenizer(str(tmp_path))  # a folder without vocab.txt
    with pytest.raises(ValueError, match=r"\['\[MASK\]'\]"):
        BertWordPieceTokenizer(
            write_vocab(tmp_path / 'a.txt',
                        ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'a']))
    with pytest.raises(ValueError, match='first line'):
        BertWordPieceTokenizer(
            write_vocab(tmp_path / 'b.txt',
                        ['[UNK]', '[PAD]', '[CLS]', '[SEP]', '[MASK]']))
    with pytest.raises(ValueError, match='context_length'):
        BertWordPieceTokenizer(
            write_vocab(tmp_path / 'c.txt', list(BERT_SPECIAL_TOKENS)),
            context_length=1)


# ---------------------------------------------------------------------- CLI


def load_cli():
    return load_tool('tools/dataset_converters/build_wordpiece_vocab.py')


def test_cli_on_cuhk_format(tmp_path, capsys):
    from helpers.tipr_fixtures import cuhk_entries
    entries = cuhk_entries()
    root = tmp_path / 'CUHK-PEDES'
    root.mkdir()
    (root / 'reid_raw.json').write_text(json.dumps(entries), 'utf-8')
    cli = load_cli()

    out = cli.main([str(root), str(tmp_path / 'out') + '/'])
    assert out == str(tmp_path / 'out' / 'vocab.txt')
    assert 'wrote' in capsys.readouterr().out
    train = [
        c for e in entries if e['split'] == 'train' for c in e['captions']
    ]
    assert open(out, encoding='utf-8').read().splitlines() == \
        build_wordpiece_vocab(train)
    tok = BertWordPieceTokenizer(out)
    for caption in train:
        assert tok.unk_token_id not in tok.encode(caption)
    # val/test captions were not used: "jacket" and "日本" only occur there
    train_vocab = open(out, encoding='utf-8').read().splitlines()
    assert 'j' not in train_vocab and '日' not in train_vocab
    assert tok.encode('日') == [tok.unk_token_id]

    every = cli.main([
        str(root / 'reid_raw.json'),
        str(tmp_path / 'all.txt'), '--splits', 'all', '--vocab-size', '100'
    ])
    vocab = open(every, encoding='utf-8').read().splitlines()
    everything = [c for e in entries for c in e['captions']]
    assert vocab == build_wordpiece_vocab(everything, vocab_size=100)
    assert '日' in vocab and 'j' in vocab


def test_cli_errors(tmp_path):
    cli = load_cli()
    with pytest.raises(FileNotFoundError, match='not found'):
        cli.main([str(tmp_path / 'missing.json'), str(tmp_path / 'v.txt')])
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps([{'captions': ['a b']}]), 'utf-8')
    with pytest.raises(ValueError, match='--splits all'):
        cli.main([str(ann), str(tmp_path / 'v.txt')])
    ann.write_text(
        json.dumps([{
            'split': 'test',
            'captions': ['a b']
        }]), 'utf-8')
    with pytest.raises(ValueError, match=r"no caption in splits \['train'\]"):
        cli.main([str(ann), str(tmp_path / 'v.txt')])


def test_end_to_end_with_text_encoder(vocab_file):
    """Tokenizer ids feed the BERT encoder built with the same vocab."""
    from mmreid_clip.registry import MODELS
    tok = BertWordPieceTokenizer(vocab_file, context_length=40)
    model = MODELS.build(
        dict(
            type='BertTextEncoder', config='bert-tiny',
            vocab_file=vocab_file)).eval()
    ids = tok(CAPTIONS)
    with torch.no_grad():
        out = model(ids)
    assert out['global'].shape == (len(CAPTIONS), 128)
    assert torch.equal(out['mask'], ids != 0)
