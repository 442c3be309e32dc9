"""Caption tokenisation with an explicit, logged truncation policy."""
import logging
from typing import Optional, Union

from mmcv.transforms import BaseTransform
from mmengine.logging import print_log

from mmreid_clip.registry import TOKENIZER, TRANSFORMS
from ..tokenizers import (TRUNCATION_POLICIES, BaseCaptionTokenizer,
                          encode_with_specials)


@TRANSFORMS.register_module()
class TokenizeCaption(BaseTransform):
    """Turn ``results['caption']`` into ``results['text']`` (int64, ``L``).

    The ids are ``[bos] tokens [eos] pad ...`` (CLIP: SOT, BPE ids, EOT,
    zeros). Captions longer than the context length follow ``truncation``:

    - ``'keep_eot'``: keep the start token, the first ``L - 2`` tokens and
      the end token (TBPS-CLIP's policy; the text tower reads the EOT).
    - ``'drop_eot'``: keep the first ``L`` ids of ``[bos] tokens [eos]``,
      losing the end token (CFine's official BERT input; only for towers
      that read position 0, never for CLIP's EOT pooling).
    - ``'error'``: raise ``ValueError`` naming the caption id and its length.

    Truncation changes what the model sees and every reported number, so it
    is never silent: ``num_truncated`` / ``num_seen`` count it on this
    instance, the first ``warn_first`` cuts are logged one by one (caption id
    and lengths) and then a summary is logged each time the count doubles.
    With DataLoader workers each worker holds its own copy, so the counts and
    the messages are per worker process.

    Required keys: ``caption``. Optional: ``caption_id`` (for messages).
    Added keys: ``text``.

    Args:
        tokenizer (dict | BaseCaptionTokenizer): A ``TOKENIZER`` config or
            object. Defaults to ``dict(type='OpenCLIPTokenizer',
            context_length=77)``.
        truncation (str): ``'keep_eot'``, ``'drop_eot'`` or ``'error'``.
            Defaults to ``'keep_eot'``.
        warn_first (int): How many truncations to log individually.
            Defaults to 5.
    """

    def __init__(self,
                 tokenizer: Union[dict, BaseCaptionTokenizer] = dict(
                     type='OpenCLIPTokenizer', context_length=77),
                 truncation: str = 'keep_eot',
                 warn_first: int = 5) -> None:
        if truncation not in TRUNCATION_POLICIES:
            raise ValueError(f'truncation must be one of '
                             f'{TRUNCATION_POLICIES}, got {truncation!r}')
        if isinstance(tokenizer, dict):
            tokenizer = TOKENIZER.build(tokenizer)
        for attr in ('encode', 'context_length', 'bos_token_id',
                     'eos_token_id', 'pad_token_id'):
            if not hasattr(tokenizer, attr):
                raise TypeError(
                    f'tokenizer {type(tokenizer).__name__} lacks {attr!r}; '
                    'caption tokenizers follow BaseCaptionTokenizer')
        self.tokenizer = tokenizer
        self.truncation = truncation
        self.warn_first = int(warn_first)
        self.num_seen = 0
        self.num_truncated = 0

    @property
    def context_length(self) -> int:
        """``L``, the length of every ``results['text']``."""
        return self.tokenizer.context_length

    def transform(self, results: dict) -> dict:
        """Tokenise ``results['caption']`` into ``results['text']``."""
        if 'caption' not in results:
            raise KeyError('TokenizeCaption needs results["caption"]; put it '
                           'in the dataset\'s text_pipeline')
        caption_id = results.get('caption_id')
        ids, full_length = encode_with_specials(self.tokenizer,
                                                results['caption'],
                                                self.truncation, caption_id)
        self.num_seen += 1
        if full_length > self.context_length:
            self.num_truncated += 1
            self._log_truncation(caption_id, full_length)
        results['text'] = ids
        return results

    def _log_truncation(self, caption_id: Optional[int],
                        full_length: int) -> None:
        count = self.num_truncated
        if count <= self.warn_first:
            more = ('; further cuts are summarised each time their count '
                    'doubles' if count == self.warn_first else '')
            print_log(
                f'TokenizeCaption: caption {caption_id} has {full_length} '
                f'tokens (start/end included) > context length '
                f'{self.context_length}; truncated ({self.truncation}), '
                f'{full_length - self.context_length} tokens dropped{more}',
                logger='current',
                level=logging.WARNING)
        elif count & (count - 1) == 0:  # a power of two: the count doubled
            print_log(
                f'TokenizeCaption: {count} of {self.num_seen} captions seen '
                f'so far were longer than {self.context_length} tokens and '
                f'truncated ({self.truncation})',
                logger='current',
                level=logging.WARNING)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(tokenizer={self.tokenizer!r}, '
                f'truncation={self.truncation!r}, '
                f'num_truncated={self.num_truncated}, '
                f'num_seen={self.num_seen})')
