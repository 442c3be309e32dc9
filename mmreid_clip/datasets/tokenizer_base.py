"""The caption-tokenizer interface (:class:`BaseCaptionTokenizer`: content
ids, special ids, context length) and the one place special tokens,
truncation (:data:`TRUNCATION_POLICIES`) and padding are applied
(:func:`encode_with_specials`), the same for every tokenizer.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

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
