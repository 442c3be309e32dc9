"""The vocabulary size of a text tower, for code that makes token ids."""
import torch.nn as nn

__all__ = ['text_vocab_size']


def text_vocab_size(encoder: nn.Module) -> int:
    """How many token ids ``encoder`` embeds.

    The tower's ``vocab_size`` attribute when it has an int one (our
    open_clip and BERT towers), otherwise the size of its first
    ``nn.Embedding`` (the token embedding comes first in every text tower;
    the positional one is a parameter, not an embedding module).

    Args:
        encoder (nn.Module): A text tower.

    Returns:
        int: The number of token ids.

    Raises:
        ValueError: neither an int ``vocab_size`` nor an ``nn.Embedding``.
    """
    size = getattr(encoder, 'vocab_size', None)
    # bool is an int subclass, but never a vocabulary size
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    for module in encoder.modules():
        if isinstance(module, nn.Embedding):
            return module.num_embeddings
    raise ValueError(f'cannot find the vocabulary size of '
                     f'{type(encoder).__name__} (no vocab_size, no '
                     'nn.Embedding)')
