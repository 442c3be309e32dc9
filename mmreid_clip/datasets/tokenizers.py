"""Caption tokenizers with one interface for CLIP BPE and BERT WordPiece.

A caption tokenizer turns a caption into the *content* token ids (no special
tokens) and names its special ids and its context length. Adding the special
tokens, truncating and padding is done once, by :func:`encode_with_specials`,
for every tokenizer, so the truncation policy behaves the same for CLIP's
``<start_of_text> ... <end_of_text> 0 0`` layout and for BERT's
``[CLS] ... [SEP] [PAD]`` layout. :class:`BertWordPieceTokenizer` (CFine's
text input, ``docs/methods/cfine.md`` §2) implements
:meth:`BaseCaptionTokenizer.encode` with a Hugging Face ``tokenizers``
WordPiece pipeline called with ``add_special_tokens=False`` and sets
``bos_token_id=[CLS]``, ``eos_token_id=[SEP]``, ``pad_token_id=[PAD]=0``;
:func:`build_wordpiece_vocab` learns a ``vocab.txt`` for it from captions
(``tools/dataset_converters/build_wordpiece_vocab.py``).

This module is the import path of them all; each lives in its own module:
:mod:`.tokenizer_base` (the interface, truncation and padding),
:mod:`.tokenizer_clip_bpe` (:class:`OpenCLIPTokenizer`),
:mod:`.tokenizer_wordpiece` (:class:`BertWordPieceTokenizer` and its
vocabulary file) and :mod:`.tokenizer_wordpiece_vocab`
(:func:`build_wordpiece_vocab`).
"""
from .tokenizer_base import (TRUNCATION_POLICIES, BaseCaptionTokenizer,
                             encode_with_specials)
from .tokenizer_clip_bpe import OpenCLIPTokenizer
from .tokenizer_wordpiece import (_VOCAB_HINT,  # noqa: F401
                                  BERT_SPECIAL_TOKENS,
                                  MAX_INPUT_CHARS_PER_WORD, WORDPIECE_PREFIX,
                                  BertWordPieceTokenizer, _bert_text_pipeline,
                                  _import_tokenizers, load_wordpiece_vocab,
                                  resolve_vocab_file)
from .tokenizer_wordpiece_vocab import (_merge_pair,  # noqa: F401
                                        build_wordpiece_vocab)

__all__ = [
    'BaseCaptionTokenizer', 'OpenCLIPTokenizer', 'BertWordPieceTokenizer',
    'encode_with_specials', 'build_wordpiece_vocab', 'load_wordpiece_vocab',
    'resolve_vocab_file', 'TRUNCATION_POLICIES', 'BERT_SPECIAL_TOKENS',
    'MAX_INPUT_CHARS_PER_WORD', 'WORDPIECE_PREFIX'
]
