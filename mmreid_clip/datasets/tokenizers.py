"""Caption tokenizers with one interface for CLIP BPE and (later) BERT.

A caption tokenizer turns a caption into the *content* token ids (no special
tokens) and names its special ids and its context length. Adding the special
tokens, truncating and padding is done once, by :func:`encode_with_specials`,
for every tokenizer, so the truncation policy behaves the same for CLIP's
``<start_of_text> ... <end_of_text> 0 0`` layout and for BERT's
``[CLS] ... [SEP] [PAD]`` layout. A WordPiece tokenizer only has to implement
:meth:`BaseCaptionTokenizer.encode` (e.g. a Hugging Face tokenizer called with
``add_special_tokens=False``) and set ``bos_token_id=cls``,
``eos_token_id=sep``, ``pad_token_id=pad``.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from mmreid_clip.registry import TOKENIZER

__all__ = [
    'BaseCaptionTokenizer', 'OpenCLIPTokenizer', 'encode_with_specials',
    'TRUNCATION_POLICIES'
]

#: ``'keep_eot'``: keep the start token, the first ``L - 2`` content tokens
#: and the end token (TBPS-CLIP; also what open_clip's tokenizer does).
#: ``'error'``: refuse captions longer than the context length.
TRUNCATION_POLICIES = ('keep_eot', 'error')


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
            ``L - 2`` content tokens and the end token; ``'error'`` raises.
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
