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
"""
import collections
import heapq
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from mmreid_clip.registry import TOKENIZER

__all__ = [
    'BaseCaptionTokenizer', 'OpenCLIPTokenizer', 'BertWordPieceTokenizer',
    'encode_with_specials', 'build_wordpiece_vocab', 'load_wordpiece_vocab',
    'resolve_vocab_file', 'TRUNCATION_POLICIES', 'BERT_SPECIAL_TOKENS',
    'MAX_INPUT_CHARS_PER_WORD', 'WORDPIECE_PREFIX'
]

#: ``'keep_eot'``: keep the start token, the first ``L - 2`` content tokens
#: and the end token (TBPS-CLIP; also what open_clip's tokenizer does).
#: ``'drop_eot'``: cut ``[bos] tokens [eos]`` to its first ``L`` ids, so a
#: long caption keeps ``L - 1`` content tokens and loses its end token (what
#: CFine's official BERT input does); only for towers that read position 0
#: (BERT's [CLS]), never for CLIP's, which pools at the end token.
#: ``'error'``: refuse captions longer than the context length.
TRUNCATION_POLICIES = ('keep_eot', 'drop_eot', 'error')


class BaseCaptionTokenizer:
    """Interface of the caption tokenizers used by ``TokenizeCaption``.

    Subclasses set the attributes below and implement :meth:`encode`.

    Attributes:
        context_length (int): Length ``L`` of every encoded caption, special
            tokens and padding included.
        bos_token_id (int): Id put first (CLIP ``<start_of_text>``, BERT
            ``[CLS]``).
        eos_token_id (int): Id put after the last content token (CLIP
            ``<end_of_text>``, BERT ``[SEP]``).
        pad_token_id (int): Id filling the positions after the end token.
    """

    context_length: int
    bos_token_id: int
    eos_token_id: int
    pad_token_id: int

    def encode(self, text: str) -> List[int]:
        """Content token ids of ``text``, without special tokens.

        Args:
            text (str): The caption.

        Returns:
            list[int]: Token ids; may be longer than ``context_length``.
        """
        raise NotImplementedError(
            f'{type(self).__name__} must implement encode()')

    def __call__(self,
                 texts: Union[str, Sequence[str]],
                 truncation: str = 'keep_eot') -> torch.Tensor:
        """Tokenise one caption or a list into a ``N x L`` LongTensor.

        A convenience for inference (free-text queries); datasets use the
        ``TokenizeCaption`` transform, which also counts truncations.

        Args:
            texts (str | Sequence[str]): Caption(s).
            truncation (str): One of :data:`TRUNCATION_POLICIES`.

        Returns:
            torch.Tensor: int64 token ids, one row per caption.
        """
        if isinstance(texts, str):
            texts = [texts]
        rows = [encode_with_specials(self, t, truncation)[0] for t in texts]
        if not rows:
            return torch.zeros(0, self.context_length, dtype=torch.long)
        return torch.from_numpy(np.stack(rows))


def encode_with_specials(
        tokenizer: BaseCaptionTokenizer,
        text: str,
        truncation: str = 'keep_eot',
        caption_id: Optional[int] = None) -> Tuple[np.ndarray, int]:
    """Encode ``text`` as ``[bos] tokens [eos] pad ...`` of length ``L``.

    Args:
        tokenizer (BaseCaptionTokenizer): The tokenizer.
        text (str): The caption.
        truncation (str): ``'keep_eot'`` keeps the start token, the first
            ``L - 2`` content tokens and the end token; ``'drop_eot'`` the
            start token and the first ``L - 1`` content tokens (no end
            token); ``'error'`` raises.
        caption_id (int, optional): Named in the error message.

    Returns:
        tuple[np.ndarray, int]: The int64 ids of length ``L`` and the
        untruncated length (content tokens + 2 special tokens), which tells
        the caller whether the caption was cut.

    Raises:
        ValueError: An unknown policy, a context length below 2, or a caption
            too long under ``truncation='error'``.
    """
    if truncation not in TRUNCATION_POLICIES:
        raise ValueError(f'truncation must be one of {TRUNCATION_POLICIES}, '
                         f'got {truncation!r}')
    length = tokenizer.context_length
    if length < 2:
        raise ValueError('context_length must leave room for the start and '
                         f'end tokens (>= 2), got {length}')
    content = list(tokenizer.encode(text))
    full_length = len(content) + 2
    if full_length > length:
        if truncation == 'error':
            raise ValueError(
                f'caption {caption_id} has {full_length} tokens (start and '
                f'end tokens included), more than the context length '
                f'{length}; use truncation="keep_eot" or a longer '
                f'context_length. Caption: {text[:200]!r}')
        if truncation == 'drop_eot':
            ids = np.empty(length, dtype=np.int64)
            ids[0] = tokenizer.bos_token_id
            ids[1:] = content[:length - 1]
            return ids, full_length
        content = content[:length - 2]
    ids = np.full(length, tokenizer.pad_token_id, dtype=np.int64)
    ids[0] = tokenizer.bos_token_id
    ids[1:len(content) + 1] = content
    ids[len(content) + 1] = tokenizer.eos_token_id
    return ids, full_length


@TOKENIZER.register_module()
class OpenCLIPTokenizer(BaseCaptionTokenizer):
    """CLIP's byte-level BPE tokenizer, from open_clip, fully offline.

    Wraps ``open_clip.tokenizer.SimpleTokenizer`` with the BPE merges bundled
    in the open_clip wheel. Text is cleaned as ``open_clip.tokenize`` does
    (ftfy fix, whitespace collapse, lower case), so ids match it for every
    caption that fits; longer captions keep their end token last (see
    :func:`encode_with_specials`).

    Args:
        context_length (int): ``L``, 77 for every released CLIP text tower.
            Defaults to 77.
        bpe_path (str, optional): A ``bpe_simple_vocab_16e6.txt.gz`` merges
            file; defaults to the one bundled with open_clip.
    """

    def __init__(self,
                 context_length: int = 77,
                 bpe_path: Optional[str] = None) -> None:
        # open_clip's package import pulls in every model definition
        # (seconds); import it only when a tokenizer is actually built.
        from open_clip.tokenizer import SimpleTokenizer, default_bpe
        if context_length < 2:
            raise ValueError('context_length must be >= 2 (start and end '
                             f'tokens), got {context_length}')
        self.context_length = int(context_length)
        self.bpe_path = bpe_path or default_bpe()
        self._tokenizer = SimpleTokenizer(
            bpe_path=self.bpe_path, context_length=self.context_length)
        self.bos_token_id = self._tokenizer.sot_token_id
        self.eos_token_id = self._tokenizer.eot_token_id
        # CLIP pads with zeros; id 0 is also the byte token "!", which is why
        # the text tower reads the EOT position (argmax id), never a mask.
        self.pad_token_id = 0
        self.vocab_size = self._tokenizer.vocab_size

    def encode(self, text: str) -> List[int]:
        """BPE ids of the cleaned, lower-cased ``text`` (no SOT/EOT)."""
        return self._tokenizer.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``, skipping special and padding tokens."""
        skip = {self.bos_token_id, self.eos_token_id}
        kept = []
        for token in ids:
            token = int(token)
            if token == self.eos_token_id:
                break
            if token not in skip:
                kept.append(token)
        return self._tokenizer.decode(kept).strip()

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(context_length={self.context_length})')


# ---------------------------------------------------------------------------
# BERT WordPiece (CFine's text input, docs/methods/cfine.md §2)
# ---------------------------------------------------------------------------

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


def _merge_pair(symbols: List[str], pair: Tuple[str, str],
                piece: str) -> List[str]:
    """``symbols`` with every occurrence of ``pair`` (left to right, not
    overlapping) replaced by ``piece``; the same list when there is none."""
    first, second = pair
    out = []
    i = 0
    while i < len(symbols):
        if (i + 1 < len(symbols) and symbols[i] == first
                and symbols[i + 1] == second):
            out.append(piece)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out if len(out) != len(symbols) else symbols


def build_wordpiece_vocab(captions: Iterable[str],
                          vocab_size: int = 30522,
                          min_frequency: int = 2,
                          lowercase: bool = True) -> List[str]:
    """Learn a BERT WordPiece vocabulary (the lines of a ``vocab.txt``).

    For training a BERT text encoder from scratch on a caption corpus (e.g.
    SynthPedes, where no pretrained BERT is available offline), so that
    :class:`BertWordPieceTokenizer` can tokenise it. The result is a
    function of the arguments only, in this order:

    1. :data:`BERT_SPECIAL_TOKENS` (``[PAD]`` = 0, ``[UNK]``, ``[CLS]``,
       ``[SEP]``, ``[MASK]``).
    2. The alphabet: every character of the normalised captions as a word
       start ``c``, then every one as a continuation ``##c``, each list by
       decreasing frequency, then alphabetically. Greedy longest-match can
       always fall back to single characters, so any text made of these
       characters tokenises without ``[UNK]`` (except words longer than
       :data:`MAX_INPUT_CHARS_PER_WORD`, which BERT turns into one ``[UNK]``
       whatever the vocabulary).
    3. Learned pieces: starting from characters, the adjacent pair of pieces
       that occurs most often in the corpus (words weighted by their count)
       is merged into a new piece, again and again; ties go to the
       alphabetically first merged piece (then pair). Pieces are listed in
       the order they were learned, i.e. by the frequency at which they were
       merged. Learning stops at ``vocab_size`` entries or when the best pair
       occurs fewer than ``min_frequency`` times.

    Captions are normalised and split into words exactly as the tokenizer
    does (:func:`_bert_text_pipeline`).

    Args:
        captions (Iterable[str]): The corpus, normally the training captions
            only (test captions would leak into the vocabulary).
        vocab_size (int): Most entries to return. Defaults to 30522 (BERT's);
            small corpora stop earlier, at ``min_frequency``.
        min_frequency (int): Least corpus count of a learned piece.
            Defaults to 2.
        lowercase (bool): Lower-case and strip accents, as
            ``BertWordPieceTokenizer(lowercase=...)`` must then do too.
            Defaults to True.

    Returns:
        list[str]: The tokens, id ``i`` at index ``i``.

    Raises:
        ValueError: ``vocab_size`` cannot hold the special tokens and the
            alphabet, ``min_frequency < 1``, or no caption has any word.
        TypeError: A caption is not a string.
    """
    if min_frequency < 1:
        raise ValueError(f'min_frequency must be >= 1, got {min_frequency}')
    normalizer, pre_tokenizer = _bert_text_pipeline(lowercase)
    word_counts = collections.Counter()
    for caption in captions:
        if not isinstance(caption, str):
            raise TypeError(f'captions must be strings, got {caption!r}')
        words = pre_tokenizer.pre_tokenize_str(
            normalizer.normalize_str(caption))
        word_counts.update(word for word, _ in words)
    if not word_counts:
        raise ValueError('no words in the captions: cannot build a '
                         'vocabulary')

    char_counts = collections.Counter()
    for word, count in word_counts.items():
        for char in word:
            char_counts[char] += count
    chars = sorted(char_counts, key=lambda c: (-char_counts[c], c))
    vocab = list(BERT_SPECIAL_TOKENS) + chars + [
        WORDPIECE_PREFIX + c for c in chars
    ]
    if len(vocab) > vocab_size:
        raise ValueError(
            f'vocab_size={vocab_size} cannot hold the '
            f'{len(BERT_SPECIAL_TOKENS)} special tokens and the '
            f'{len(chars)} characters of the captions, each as a word start '
            f'and a "##" continuation: it must be >= {len(vocab)}')
    known = set(vocab)

    # Words as piece sequences; too long words are [UNK] for BERT anyway.
    words, counts = [], []
    for word in sorted(word_counts):
        if 2 <= len(word) <= MAX_INPUT_CHARS_PER_WORD:
            words.append([word[0]] + [WORDPIECE_PREFIX + c for c in word[1:]])
            counts.append(word_counts[word])

    def joined(pair: Tuple[str, str]) -> str:
        return pair[0] + pair[1][len(WORDPIECE_PREFIX):]

    # Pair counts are kept up to date incrementally (only the words holding
    # the merged pair change); the heap may hold stale entries, recognised
    # by a count that differs from pair_counts and skipped.
    pair_counts = collections.defaultdict(int)
    holders = collections.defaultdict(set)
    for i, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += counts[i]
            holders[pair].add(i)
    heap = [(-n, joined(p), p) for p, n in pair_counts.items()]
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        neg_count, piece, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count != -neg_count:
            continue
        if count < min_frequency:
            break
        if piece not in known:
            # Two pairs can join into one piece ("a"+"##bc", "ab"+"##c");
            # the vocabulary lists it once.
            vocab.append(piece)
            known.add(piece)
        touched = set()
        for i in holders.pop(pair):
            symbols = words[i]
            merged = _merge_pair(symbols, pair, piece)
            if merged is symbols:
                continue
            for old in zip(symbols, symbols[1:]):
                pair_counts[old] -= counts[i]
                touched.add(old)
            for new in zip(merged, merged[1:]):
                pair_counts[new] += counts[i]
                holders[new].add(i)
                touched.add(new)
            words[i] = merged
        for other in touched:
            n = pair_counts[other]
            if n > 0:
                heapq.heappush(heap, (-n, joined(other), other))
            else:
                del pair_counts[other]
    return vocab
