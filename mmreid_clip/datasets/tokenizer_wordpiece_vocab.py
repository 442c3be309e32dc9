"""Learning a BERT WordPiece vocabulary from captions
(:func:`build_wordpiece_vocab`, the lines of a ``vocab.txt`` for
:class:`~.tokenizer_wordpiece.BertWordPieceTokenizer`), deterministic in
its arguments.
"""
import collections
import heapq
from typing import Iterable, List, Tuple

from .tokenizer_wordpiece import (BERT_SPECIAL_TOKENS,
                                  MAX_INPUT_CHARS_PER_WORD, WORDPIECE_PREFIX,
                                  _bert_text_pipeline)


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
