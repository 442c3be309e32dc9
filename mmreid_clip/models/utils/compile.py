"""``torch.compile`` of a retriever's encoders, as a config switch."""
from typing import Optional, Sequence

from torch import nn

#: the submodules the retrievers compile (those that exist)
ENCODERS = ('image_encoder', 'text_encoder')


def compile_submodules(model: nn.Module,
                       options: Optional[dict],
                       names: Sequence[str] = ENCODERS) -> Sequence[str]:
    """Compile ``model``'s encoder submodules in place.

    ``nn.Module.compile`` compiles the module's ``forward`` where it is
    called through ``module(...)``, and leaves parameters, buffers and
    ``state_dict`` keys as they are, so checkpoints load into compiled and
    eager models alike (``torch.compile(module)`` would prefix every key
    with ``_orig_mod.``). Only the encoders are compiled: the losses,
    token selection and optimizer steps around them run eagerly, so a
    method's graph breaks (host-side checks, Python control flow) stay out
    of the compiled region.

    Args:
        model: The retriever.
        options: None (eager, the default) or ``torch.compile``'s keyword
            arguments, e.g. ``dict()`` or ``dict(mode='max-autotune',
            dynamic=False)``.
        names: Submodule names to compile.

    Returns:
        The names compiled.

    Raises:
        TypeError: ``options`` is not a dict (``compile_encoders=True`` is
            a common slip; pass ``dict()``).
    """
    if options is None:
        return ()
    if not isinstance(options, dict):
        raise TypeError('compile_encoders takes torch.compile keyword '
                        f'arguments as a dict (e.g. dict()), got {options!r}')
    done = []
    for name in names:
        module = getattr(model, name, None)
        if isinstance(module, nn.Module):
            module.compile(**options)
            done.append(name)
    return tuple(done)
