"""Turning an open_clip pretrained tag into a local weights file, or an error.

A tag (``'openai'``, ``'laion2b_s34b_b88k'``) is downloaded through open_clip
only when downloading is allowed and the host answers
(:mod:`.hub_probe`); otherwise the error says where to put a manually
downloaded file.
"""
import os
import os.path as osp
from typing import Any, Optional, Tuple
from urllib.parse import urlparse

from open_clip import pretrained as oc_pretrained

from .hub_probe import host_reachable, hub_offline

__all__ = ['CHECKPOINT_DIR', 'resolve_tag']

# Where the zoo's configs and README expect user-supplied CLIP weights.
CHECKPOINT_DIR = 'checkpoints/clip'


def _download_host(tag_cfg: dict) -> Tuple[str, int]:
    if tag_cfg.get('hf_hub') and oc_pretrained.has_hf_hub():
        url = os.environ.get('HF_ENDPOINT', 'https://huggingface.co')
    else:
        url = tag_cfg.get('url', '')
    parsed = urlparse(url)
    return parsed.hostname or '', parsed.port or 443


def _tag_instructions(name: str, tag: str, tag_cfg: dict) -> str:
    """How to get the weights of a tag by hand, and where to put them."""
    sources = []
    if tag_cfg.get('url'):
        sources.append(tag_cfg['url'])
        suggested = f'{CHECKPOINT_DIR}/{osp.basename(tag_cfg["url"])}'
    if tag_cfg.get('hf_hub'):
        repo = tag_cfg['hf_hub'].rstrip('/')
        sources.append(f'https://huggingface.co/{repo} '
                       '(open_clip_model.safetensors or '
                       'open_clip_pytorch_model.bin)')
    if not tag_cfg.get('url'):
        suggested = f'{CHECKPOINT_DIR}/{name}_{tag}.safetensors'
    hint = ('download the weights yourself (' + ' or '.join(sources) +
            f'), put the file at {suggested} and set '
            f'pretrained={suggested!r}')
    if tag_cfg.get('quick_gelu'):
        hint += ' (these are OpenAI weights: keep quick_gelu=None or True)'
    return hint


def resolve_tag(name: Optional[str], arch: Any, tag: str) -> Tuple[str, dict]:
    """Download the weights of an open_clip pretrained tag, or fail fast."""
    if name is None:
        raise ValueError(
            f'pretrained={tag!r} is neither an existing file nor usable as an '
            f'open_clip tag with arch={arch!r}: tags need an open_clip model '
            'name such as "ViT-B-16"')
    tag_cfg = oc_pretrained.get_pretrained_cfg(name, tag)
    if not tag_cfg:
        known = oc_pretrained.list_pretrained_tags_by_model(name)
        raise ValueError(
            f'pretrained={tag!r} is neither an existing file nor a '
            f'pretrained tag of open_clip model {name!r} (tags: {known})')
    hint = _tag_instructions(name, tag, tag_cfg)
    if hub_offline():
        raise RuntimeError(
            f'cannot download the {name!r} weights for tag {tag!r}: '
            f'HF_HUB_OFFLINE is set (no network). To use them, {hint}.')
    host, port = _download_host(tag_cfg)
    if not host or not host_reachable(host, port):
        raise RuntimeError(
            f'cannot download the {name!r} weights for tag {tag!r}: no '
            f'network ({host or "no download source"} is unreachable). To '
            f'use them, {hint}.')
    try:
        path = oc_pretrained.download_pretrained(tag_cfg)
    except Exception as e:  # network errors of urllib and huggingface_hub
        raise RuntimeError(
            f'downloading the {name!r} weights for tag {tag!r} failed '
            f'({e}). To use them, {hint}.') from e
    if not path or not osp.isfile(path):
        raise RuntimeError(f'open_clip returned no file for tag {tag!r}. '
                           f'To use the weights, {hint}.')
    return path, tag_cfg
