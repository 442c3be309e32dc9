"""Freezing a module: no gradients to any of its parameters."""
import torch.nn as nn

__all__ = ['freeze']


def freeze(module: nn.Module) -> None:
    """Stop gradients to every parameter of ``module``."""
    for param in module.parameters():
        param.requires_grad_(False)
