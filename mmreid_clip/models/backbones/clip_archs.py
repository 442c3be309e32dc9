"""Named open_clip architectures: the tiny ones as data, and name resolution.

The tiny architectures live as open_clip model-config JSON files in
``model_configs/`` next to this module and are registered through open_clip's
own mechanism (``open_clip.add_model_config``), so ``open_clip.list_models()``
and ``open_clip.get_model_config()`` know them like any other open_clip arch.

* ``clip-tiny`` (~9.1M parameters, most of them the 49408x128 token
  embedding);
* ``clip-tiny-p8``: clip-tiny with 8-pixel patches at 128x64, so the
  synthetic v2 benchmarks' images have 16x8 tokens and their identity cues
  (head, hair, shoes, local details) span whole patches. The stand-in
  pretrained CLIP (``tools/misc/build_synth_clip.py``) is this architecture;
* ``clip-micro`` (~1.7M parameters, for unit tests: builds and runs in
  milliseconds). Its three widths differ so a projection applied to the
  wrong tensor fails loudly instead of silently broadcasting.

All keep open_clip's BPE vocabulary (49408) and 77-token context so the
tokenizer bundled with open_clip works unchanged; vision heads are
width // head_width as in open_clip's configs.
"""
import copy
import os
import os.path as osp
from typing import Any, Dict, Optional, Tuple, Union

import open_clip

__all__ = ['MODEL_CONFIG_DIR', 'TINY_ARCHS', 'get_arch_config']

#: Folder of the project's open_clip model-config JSON files.
MODEL_CONFIG_DIR = osp.join(osp.dirname(osp.abspath(__file__)),
                            'model_configs')


def _register(folder: str) -> None:
    """Add ``folder`` to open_clip's model-config paths (once)."""
    from open_clip import factory
    if any(
            osp.abspath(str(p)) == folder
            for p in getattr(factory, '_MODEL_CONFIG_PATHS', [])):
        return
    open_clip.add_model_config(folder)


_register(MODEL_CONFIG_DIR)

#: Named architectures small enough to train and test on a CPU: the
#: ``model_configs/*.json`` files, as open_clip registered them (the module
#: docstring describes each).
TINY_ARCHS: Dict[str, dict] = {
    name: open_clip.get_model_config(name)
    for name in sorted(
        osp.splitext(f)[0] for f in os.listdir(MODEL_CONFIG_DIR)
        if f.endswith('.json'))
}


def _to_plain(obj: Any) -> Any:
    """Deep-copy mmengine ``ConfigDict``/lists into plain dicts/lists."""
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_plain(v) for v in obj]
    return copy.deepcopy(obj)


def get_arch_config(arch: Union[str, dict]) -> Tuple[Optional[str], dict]:
    """Resolve ``arch`` to a config of open_clip's ``CLIP`` constructor.

    Args:
        arch: One of :data:`TINY_ARCHS`, an open_clip model name (see
            ``open_clip.list_models()``, e.g. ``'ViT-B-16'``), a
            ``'local-dir:<folder>'`` holding an ``open_clip_config.json``, or
            a dict of ``CLIP`` keyword arguments (``embed_dim``,
            ``vision_cfg``, ``text_cfg``, optionally ``quick_gelu`` and
            ``custom_text``).

    Returns:
        ``(name, config)``: ``name`` is the open_clip model name pretrained
        tags are looked up under (None for tiny archs and dicts), ``config``
        a fresh plain dict the caller may modify.

    Raises:
        ValueError: unknown name, ``hf-hub:`` names, or an incomplete dict.
    """
    if isinstance(arch, dict):
        cfg, name = _to_plain(arch), None
    elif not isinstance(arch, str):
        raise TypeError(f'arch must be a str or dict, got {type(arch)}')
    elif arch in TINY_ARCHS:
        cfg, name = _to_plain(TINY_ARCHS[arch]), None
        # JSON has no tuples: a non-square size is an (H, W) pair as before
        size = cfg['vision_cfg'].get('image_size')
        if isinstance(size, list):
            cfg['vision_cfg']['image_size'] = tuple(size)
    elif arch.startswith('hf-hub:'):
        # open_clip would fetch the config from the hub at build time.
        raise ValueError(
            f'arch {arch!r}: hf-hub architectures need the network; download '
            'the repository and pass arch="local-dir:<folder>" instead')
    else:
        # open_clip accepts 'ViT-B/16' for 'ViT-B-16'; paths keep slashes
        name = arch if arch.startswith('local-dir:') else arch.replace(
            '/', '-')
        cfg = open_clip.get_model_config(name)
        if cfg is None:
            raise ValueError(
                f'unknown arch {arch!r}: use one of {sorted(TINY_ARCHS)}, an '
                'open_clip model name (open_clip.list_models()) or a dict '
                'of open_clip CLIP arguments')
        cfg = _to_plain(cfg)
    missing = [
        k for k in ('embed_dim', 'vision_cfg', 'text_cfg') if k not in cfg
    ]
    if missing:
        raise ValueError(f'arch config lacks {missing}: {cfg}')
    return name, cfg
