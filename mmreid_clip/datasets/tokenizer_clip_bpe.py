"""CLIP's byte-level BPE tokenizer (:class:`OpenCLIPTokenizer`), from
open_clip's bundled merges, fully offline.
"""
from typing import List, Optional, Sequence

from mmreid_clip.registry import TOKENIZER
from .tokenizer_base import BaseCaptionTokenizer


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
