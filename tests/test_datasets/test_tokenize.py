"""Caption tokenisation: open_clip parity, truncation policies, logging."""
import logging
from typing import List

import numpy as np
import pytest
import torch

from mmreid_clip.datasets import (BaseCaptionTokenizer, OpenCLIPTokenizer,
                                  encode_with_specials)
from mmreid_clip.datasets.transforms import TokenizeCaption
from mmreid_clip.registry import TOKENIZER, TRANSFORMS

SOT, EOT = 49406, 49407
SHORT = [
    'A woman in a red coat, carrying a black bag.',
    'THE MAN WEARS  blue\tjeans and white shoes!',
    'Une femme très élégante, 日本語 caption.',
    "He's wearing a grey t-shirt; it's short-sleeved.",
]
LONG = ' '.join(['the pedestrian wears a long dark coat'] * 20)


@pytest.fixture(scope='module')
def tokenizer():
    return OpenCLIPTokenizer(context_length=77)


def test_matches_open_clip_tokenize(tokenizer):
    from open_clip import tokenize
    tf = TokenizeCaption(tokenizer=tokenizer)
    for caption in SHORT:
        out = tf(dict(caption=caption, caption_id=0))['text']
        assert out.dtype == np.int64 and out.shape == (77, )
        np.testing.assert_array_equal(out, tokenize([caption])[0].numpy())
        assert out[0] == SOT
    assert tf.num_truncated == 0 and tf.num_seen == len(SHORT)


def test_keep_eot_truncation(tokenizer):
    from open_clip import tokenize
    content = tokenizer.encode(LONG)
    assert len(content) > 75
    tf = TokenizeCaption(tokenizer=tokenizer, truncation='keep_eot')
    out = tf(dict(caption=LONG, caption_id=3))['text']
    assert out[0] == SOT and out[-1] == EOT
    np.testing.assert_array_equal(out[1:76], content[:75])
    # open_clip's own truncation ends the same way
    np.testing.assert_array_equal(out, tokenize([LONG])[0].numpy())
    assert tf.num_truncated == 1


def test_exact_fit_is_not_truncated():
    tok = OpenCLIPTokenizer(context_length=8)
    caption = 'a b c d e f'  # six one-token words + SOT + EOT = 8
    assert len(tok.encode(caption)) == 6
    tf = TokenizeCaption(tokenizer=tok)
    out = tf(dict(caption=caption))['text']
    assert out.tolist() == [SOT] + tok.encode(caption) + [EOT]
    assert tf.num_truncated == 0
    out = tf(dict(caption=caption + ' g'))['text']
    assert out.tolist() == [SOT] + tok.encode(caption)[:6] + [EOT]
    assert tf.num_truncated == 1


def test_error_policy_names_caption(tokenizer):
    tf = TokenizeCaption(tokenizer=tokenizer, truncation='error')
    n = len(tokenizer.encode(LONG)) + 2
    with pytest.raises(
            ValueError,
            match=rf'caption 42 has {n} tokens.*context length 77'):
        tf(dict(caption=LONG, caption_id=42))
    assert tf(dict(caption=SHORT[0]))['text'][0] == SOT


def test_truncations_counted_and_logged(mm_records):
    tok = OpenCLIPTokenizer(context_length=6)
    tf = TokenizeCaption(tokenizer=tok, warn_first=2)
    for i in range(9):
        tf(dict(caption='one two three four five six seven', caption_id=i))
        tf(dict(caption='short', caption_id=100 + i))
    assert tf.num_truncated == 9 and tf.num_seen == 18
    msgs = [
        r.getMessage() for r in mm_records
        if 'TokenizeCaption' in r.getMessage()
    ]
    assert all(r.levelno == logging.WARNING for r in mm_records
               if 'TokenizeCaption' in r.getMessage())
    # two individual warnings (caption id, lengths), then summaries at 4, 8
    assert len(msgs) == 4
    assert 'caption 0 has 9 tokens' in msgs[0]
    assert 'context length 6' in msgs[0]
    assert 'caption 1 has 9 tokens' in msgs[1] and 'doubles' in msgs[1]
    assert msgs[2].startswith('TokenizeCaption: 4 of 7 captions')
    assert msgs[3].startswith('TokenizeCaption: 8 of 15 captions')
    assert 'num_truncated=9' in repr(tf)


def test_built_from_registry():
    tf = TRANSFORMS.build(
        dict(
            type='TokenizeCaption',
            tokenizer=dict(type='OpenCLIPTokenizer', context_length=32)))
    assert tf.context_length == 32
    assert tf(dict(caption='a man'))['text'].shape == (32, )
    tok = TOKENIZER.build(dict(type='OpenCLIPTokenizer'))
    assert tok.context_length == 77 and tok.pad_token_id == 0


def test_bad_arguments(tokenizer):
    with pytest.raises(ValueError, match='truncation must be one of'):
        TokenizeCaption(tokenizer=tokenizer, truncation='drop')
    with pytest.raises(TypeError, match='lacks'):
        TokenizeCaption(tokenizer=object())
    with pytest.raises(ValueError, match='context_length'):
        OpenCLIPTokenizer(context_length=1)
    with pytest.raises(KeyError, match='caption'):
        TokenizeCaption(tokenizer=tokenizer)(dict(img_path='x.jpg'))


def test_call_and_decode(tokenizer):
    batch = tokenizer(SHORT[:2] + [LONG])
    assert batch.shape == (3, 77) and batch.dtype == torch.long
    # CLIP's decoder spaces out punctuation; the words round-trip
    decoded = tokenizer.decode(batch[0])
    assert decoded.replace(' ', '') == SHORT[0].lower().replace(' ', '')
    assert (batch[:, 0] == SOT).all()
    assert batch[2, -1].item() == EOT
    with pytest.raises(ValueError, match='too long|tokens'):
        tokenizer([LONG], truncation='error')


class WordPieceLike(BaseCaptionTokenizer):
    """A BERT-shaped toy: [CLS]=101 ... [SEP]=102, [PAD]=0."""

    def __init__(self, context_length: int) -> None:
        self.context_length = context_length
        self.bos_token_id, self.eos_token_id, self.pad_token_id = 101, 102, 0

    def encode(self, text: str) -> List[int]:
        return [1000 + len(w) for w in text.split()]


def test_interface_fits_a_bert_style_tokenizer():
    tf = TokenizeCaption(tokenizer=WordPieceLike(6))
    assert tf(
        dict(caption='ab c'))['text'].tolist() == [101, 1002, 1001, 102, 0, 0]
    out = tf(dict(caption='a bb ccc dddd eeeee'))['text']
    assert out.tolist() == [101, 1001, 1002, 1003, 1004, 102]
    assert tf.num_truncated == 1
    ids, full = encode_with_specials(WordPieceLike(4), 'a b c', 'keep_eot')
    assert ids.tolist() == [101, 1001, 1001, 102] and full == 5


def test_drop_eot_truncation_cuts_like_cfines_official_input():
    """CFine's official BERT input cuts [CLS] pieces [SEP] to its first L
    ids: a long caption keeps L - 1 pieces and loses [SEP]; a caption that
    fits is the same as under keep_eot."""
    tf = TokenizeCaption(tokenizer=WordPieceLike(6), truncation='drop_eot')
    out = tf(dict(caption='a bb ccc dddd eeeee'))['text']
    assert out.tolist() == [101, 1001, 1002, 1003, 1004, 1005]
    assert tf.num_truncated == 1
    assert tf(dict(caption='ab c'))['text'].tolist() == [
        101, 1002, 1001, 102, 0, 0
    ]
    # exactly L - 1 pieces fit with [SEP]: not truncated
    ids, full = encode_with_specials(WordPieceLike(6), 'a b c d', 'drop_eot')
    assert ids.tolist() == [101, 1001, 1001, 1001, 1001, 102] and full == 6
