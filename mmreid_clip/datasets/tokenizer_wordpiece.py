"""BERT's WordPiece tokenizer (:class:`BertWordPieceTokenizer`, CFine's
text input, ``docs/methods/cfine.md`` §2): BERT's special tokens, the
vocabulary file and its reader, and the text cleaning shared with the
vocabulary builder (:mod:`.tokenizer_wordpiece_vocab`).
"""
import os.path as osp
from typing import Dict, List, Sequence

from mmreid_clip.registry import TOKENIZER
from .tokenizer_base import BaseCaptionTokenizer

#: BERT's special tokens, in the order :func:`build_wordpiece_vocab` writes
#: them (ids 0-4). ``[PAD]`` must be id 0 in any vocabulary: the BERT text
#: encoder derives its attention mask from ``ids != 0`` (cfine.md §2).
BERT_SPECIAL_TOKENS = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')
#: Marks a piece that continues a word (``play ##ing``).
WORDPIECE_PREFIX = '##'
#: BERT maps a longer word to a single ``[UNK]``, whatever the vocabulary.
MAX_INPUT_CHARS_PER_WORD = 100
_VOCAB_HINT = (
    'build one from the training captions with `python '
    'tools/dataset_converters/build_wordpiece_vocab.py '
    'DATA_ROOT/reid_raw.json OUT_DIR/vocab.txt`, or pass the vocab.txt '
    '(or the folder) of a local BERT checkpoint such as '
    'checkpoints/bert-base-uncased')


def _import_tokenizers():
    # `tokenizers` comes with the optional `bert` extra (transformers needs
    # it); import it only when a WordPiece tokenizer is actually used.
    try:
        import tokenizers
    except ImportError as e:
        raise ImportError(
            'BERT WordPiece tokenisation needs the Hugging Face `tokenizers` '
            'package: pip install -e ".[bert]"') from e
    return tokenizers


def _bert_text_pipeline(lowercase: bool) -> tuple:
    """BERT's normaliser and pre-tokenizer, shared by the tokenizer and the
    vocabulary builder so that both see exactly the same words."""
    tokenizers = _import_tokenizers()
    # BERT's cleaning: drop control characters, map every whitespace to a
    # space, put spaces around CJK ideographs, lower-case; strip_accents=None
    # strips accents exactly when lower-casing, as bert-base-uncased does.
    normalizer = tokenizers.normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=None,
        lowercase=lowercase)
    # Split on whitespace and isolate every punctuation character.
    return normalizer, tokenizers.pre_tokenizers.BertPreTokenizer()


def resolve_vocab_file(vocab_file: str) -> str:
    """Path of the WordPiece ``vocab.txt`` named by ``vocab_file``.

    Args:
        vocab_file (str): A ``vocab.txt`` (one token per line, line ``i`` is
            id ``i``) or a folder holding one, e.g. a local BERT checkpoint.

    Returns:
        str: The path of the file.

    Raises:
        FileNotFoundError: Neither the file nor ``<folder>/vocab.txt``
            exists; the message says how to build one.
    """
    path = osp.expanduser(str(vocab_file))
    if osp.isdir(path):
        path = osp.join(path, 'vocab.txt')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'WordPiece vocabulary {path!r} not found (vocab_file='
            f'{vocab_file!r}); {_VOCAB_HINT}')
    return path


def load_wordpiece_vocab(vocab_file: str) -> Dict[str, int]:
    """Read a WordPiece vocabulary as BERT does (line ``i`` is id ``i``).

    Args:
        vocab_file (str): A ``vocab.txt`` or a folder holding one.

    Returns:
        dict[str, int]: Token to id.

    Raises:
        FileNotFoundError: See :func:`resolve_vocab_file`.
        ValueError: The file holds no token.
    """
    path = resolve_vocab_file(vocab_file)
    # The reader of `tokenizers` itself, so ids match any HF BERT tokenizer
    # built from the same file.
    vocab = _import_tokenizers().models.WordPiece.read_file(path)
    if not vocab:
        raise ValueError(f'WordPiece vocabulary {path!r} is empty; '
                         f'{_VOCAB_HINT}')
    return dict(vocab)


@TOKENIZER.register_module()
class BertWordPieceTokenizer(BaseCaptionTokenizer):
    """BERT's WordPiece tokenizer, built offline from a local ``vocab.txt``.

    CFine's text input (``docs/methods/cfine.md`` §2): BERT text cleaning
    (lower case, accents stripped), punctuation split, greedy longest-match
    WordPiece with ``##`` continuations, the Hugging Face ``tokenizers``
    implementation. Encoded with :func:`encode_with_specials` (e.g. by
    ``TokenizeCaption``) a caption becomes ``[CLS] pieces [SEP] 0 0 ...`` of
    length ``context_length``: with ``truncation='keep_eot'`` a long caption
    keeps its first ``L - 2`` pieces and still ends with ``[SEP]``, which is
    what HF's ``max_length=100, padding='max_length', truncation=True`` gives;
    CFine's official code loses ``[SEP]`` instead (``truncation='drop_eot'``,
    which the CFine paper configs use).

    Special tokens typed in a caption (``"[SEP]"``) are plain text here, not
    special ids: captions cannot inject them.

    Args:
        vocab_file (str): A ``vocab.txt`` or a folder holding one (e.g. the
            local ``checkpoints/bert-base-uncased``); it must hold
            :data:`BERT_SPECIAL_TOKENS` with ``[PAD]`` as id 0. Build one
            from captions with
            ``tools/dataset_converters/build_wordpiece_vocab.py``.
        context_length (int): ``L``, special tokens and padding included.
            Defaults to 100 (CFine); at most the text encoder's
            ``max_position_embeddings``.
        lowercase (bool): Lower-case and strip accents first, as the uncased
            BERTs and :func:`build_wordpiece_vocab` do. It must match how the
            vocabulary was made. Defaults to True.

    Attributes:
        vocab_file (str): The resolved ``vocab.txt`` path.
        vocab_size (int): Largest id + 1: the text encoder's ``vocab_size``.
        unk_token_id (int): Id of ``[UNK]``.
        mask_token_id (int): Id of ``[MASK]``.
    """

    def __init__(self,
                 vocab_file: str,
                 context_length: int = 100,
                 lowercase: bool = True) -> None:
        tokenizers = _import_tokenizers()
        if context_length < 2:
            raise ValueError('context_length must be >= 2 ([CLS] and '
                             f'[SEP]), got {context_length}')
        self.vocab_file = resolve_vocab_file(vocab_file)
        vocab = load_wordpiece_vocab(self.vocab_file)
        missing = [t for t in BERT_SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise ValueError(f'WordPiece vocabulary {self.vocab_file!r} lacks '
                             f'the special tokens {missing}; {_VOCAB_HINT}')
        if vocab['[PAD]'] != 0:
            raise ValueError(
                f'[PAD] has id {vocab["[PAD]"]} in {self.vocab_file!r}, but '
                'the BERT text encoder masks ids == 0 as padding: [PAD] must '
                'be on the first line')
        self.context_length = int(context_length)
        self.lowercase = bool(lowercase)
        self.bos_token_id = vocab['[CLS]']
        self.eos_token_id = vocab['[SEP]']
        self.pad_token_id = vocab['[PAD]']
        self.unk_token_id = vocab['[UNK]']
        self.mask_token_id = vocab['[MASK]']
        self.vocab_size = max(vocab.values()) + 1

        tokenizer = tokenizers.Tokenizer(
            tokenizers.models.WordPiece(
                vocab,
                unk_token='[UNK]',
                max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD,
                continuing_subword_prefix=WORDPIECE_PREFIX))
        tokenizer.normalizer, tokenizer.pre_tokenizer = _bert_text_pipeline(
            self.lowercase)
        tokenizer.decoder = tokenizers.decoders.WordPiece(
            prefix=WORDPIECE_PREFIX)
        # No post-processor and no registered special tokens: encode() yields
        # content pieces only; encode_with_specials adds [CLS]/[SEP]/[PAD].
        self._tokenizer = tokenizer

    def encode(self, text: str) -> List[int]:
        """WordPiece ids of ``text`` (no ``[CLS]``/``[SEP]``)."""
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def tokenize(self, text: str) -> List[str]:
        """WordPiece strings of ``text`` (no ``[CLS]``/``[SEP]``)."""
        return self._tokenizer.encode(text, add_special_tokens=False).tokens

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` up to ``[SEP]``, without ``[CLS]`` and padding."""
        kept = []
        for token in ids:
            token = int(token)
            if token == self.eos_token_id:
                break
            if token not in (self.bos_token_id, self.pad_token_id):
                kept.append(token)
        return self._tokenizer.decode(kept, skip_special_tokens=False)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(vocab_file={self.vocab_file!r}, '
                f'vocab_size={self.vocab_size}, '
                f'context_length={self.context_length}, '
                f'lowercase={self.lowercase})')
