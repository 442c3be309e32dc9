"""What the graphs take, and random example batches of it.

:func:`infer_image_size` and :func:`infer_text_spec` read the image size
and the token-id layout (length, vocabulary, special ids; the tokenizer of
the config's ``TokenizeCaption``) from a model and its config;
:func:`random_images` and :func:`random_texts` synthesise batches of them
for tracing and for the parity checks.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log

__all__ = [
    'TextInputSpec', 'infer_image_size', 'infer_text_spec', 'random_images',
    'random_texts'
]


@dataclass
class TextInputSpec:
    """What the text graph takes: token ids of one tokenizer.

    Attributes:
        context_length (int): ``L``, the length of every row.
        vocab_size (int): Ids lie in ``[0, vocab_size)``.
        bos_token_id (int): First id of a row.
        eos_token_id (int): Id after the last content token.
        pad_token_id (int): Id of the positions after the end token.
        tokenizer (dict, optional): The config's tokenizer, recorded in the
            graph's metadata.
    """

    context_length: int
    vocab_size: int
    bos_token_id: int
    eos_token_id: int
    pad_token_id: int
    tokenizer: Optional[dict] = None


def _pair_attr(module: Optional[nn.Module],
               name: str) -> Optional[Tuple[int, int]]:
    value = getattr(module, name, None) if module is not None else None
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, int) for v in value)):
        return int(value[0]), int(value[1])
    return None


def infer_image_size(model: nn.Module) -> Tuple[int, int]:
    """The ``(H, W)`` input size of the model's image encoder.

    Read from ``img_size`` of ``model.image_encoder`` or ``model.backbone``
    (the open_clip towers set it; the positional embedding is built for it).

    Raises:
        ValueError: neither exists; pass the size explicitly.
    """
    for name in ('image_encoder', 'backbone'):
        size = _pair_attr(getattr(model, name, None), 'img_size')
        if size is not None:
            return size
    raise ValueError(
        f'cannot tell the input size of {type(model).__name__}: neither '
        'model.image_encoder.img_size nor model.backbone.img_size exists; '
        'pass img_size=(H, W) (--img-size H W)')


def _tokenizer_cfg(cfg: Optional[Config]) -> Optional[dict]:
    """The ``TokenizeCaption`` tokenizer of the config's eval pipeline."""
    if cfg is None:
        return None
    for loader in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        for step in dataset.get('text_pipeline') or []:
            if step.get('type') == 'TokenizeCaption':
                # the transform's default tokenizer
                return dict(
                    step.get('tokenizer')
                    or dict(type='OpenCLIPTokenizer', context_length=77))
    return None


def infer_text_spec(model: nn.Module,
                    cfg: Optional[Config] = None,
                    context_length: Optional[int] = None) -> TextInputSpec:
    """The token-id input of the model's text graph.

    The length and the special ids come from the config's
    ``TokenizeCaption`` (test, then val, then train pipeline). When the
    tokenizer cannot be built (e.g. a WordPiece ``vocab_file`` that is not on
    this machine) its ``context_length`` is still used and the special ids
    follow CLIP's layout (start = V-2, end = V-1, pad = 0); they only shape
    the example batches, never the graph.

    Args:
        model (nn.Module): A model with a ``text_encoder``.
        cfg (Config, optional): Its config.
        context_length (int, optional): Overrides the tokenizer's length.
    """
    encoder = getattr(model, 'text_encoder', None)
    if encoder is None:
        raise ValueError(f'{type(model).__name__} has no text_encoder')
    # imported here, as the module's other mmreid_clip imports: the model
    # package (mmpretrain) is not needed to load an exported graph
    from mmreid_clip.models.utils.vocab import text_vocab_size
    vocab = text_vocab_size(encoder)
    tok_cfg = _tokenizer_cfg(cfg)
    length = context_length or (tok_cfg
                                or {}).get('context_length') or (getattr(
                                    encoder, 'context_length', None))
    if not isinstance(length, int) or length < 3:
        raise ValueError(f'no usable text length ({length!r}): pass '
                         'context_length (--context-length)')
    specials = (vocab - 2, vocab - 1, 0)
    if tok_cfg is not None:
        from mmreid_clip.registry import TOKENIZER
        try:
            tok = TOKENIZER.build(dict(tok_cfg))
            specials = (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
        except (OSError, ValueError, KeyError, ImportError) as err:
            print_log(
                f'tokenizer {tok_cfg.get("type")} cannot be built ({err}); '
                'the example token ids use CLIP\'s special-id layout',
                logger='current',
                level=30)
    return TextInputSpec(length, vocab, *specials, tokenizer=tok_cfg)


def random_images(num: int,
                  img_size: Sequence[int],
                  uint8: bool = False,
                  seed: int = 0) -> torch.Tensor:
    """A random image batch, ``num x 3 x H x W``.

    Args:
        num (int): Batch size.
        img_size (Sequence[int]): ``(H, W)``.
        uint8 (bool): Pixel values as packed by the data pipeline (uint8)
            instead of normalised float32 (standard normal). Defaults to
            False.
        seed (int): Seed of a private generator. Defaults to 0.
    """
    gen = torch.Generator().manual_seed(seed)
    shape = (num, 3, int(img_size[0]), int(img_size[1]))
    if uint8:
        return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    return torch.randn(shape, generator=gen)


def random_texts(num: int, spec: TextInputSpec, seed: int = 0) -> torch.Tensor:
    """Random captions in the tokenizer's layout, ``num x L`` int64.

    Each row is ``[bos] c_1 .. c_n [eos] [pad] ...`` with content ids drawn
    from the vocabulary minus the special ids. The first row has one content
    token (mostly padding: tied attention scores, which CFine's token
    selection must break the same way in both runtimes), the last row fills
    the whole context; the others have random lengths.

    Args:
        num (int): Batch size.
        spec (TextInputSpec): Length, vocabulary and special ids.
        seed (int): Seed of a private generator. Defaults to 0.
    """
    gen = torch.Generator().manual_seed(seed)
    length = spec.context_length
    special = {spec.bos_token_id, spec.eos_token_id, spec.pad_token_id}
    allowed = torch.tensor(
        [i for i in range(spec.vocab_size) if i not in special])
    if allowed.numel() == 0:
        raise ValueError('the vocabulary has no content ids')
    texts = torch.full((num, length), spec.pad_token_id, dtype=torch.long)
    sizes = torch.randint(1, length - 1, (num, ), generator=gen)
    sizes[0] = 1
    if num > 1:
        sizes[-1] = length - 2
    for row, size in enumerate(sizes.tolist()):
        pick = torch.randint(0, allowed.numel(), (size, ), generator=gen)
        texts[row, 0] = spec.bos_token_id
        texts[row, 1:size + 1] = allowed[pick]
        texts[row, size + 1] = spec.eos_token_id
    return texts
