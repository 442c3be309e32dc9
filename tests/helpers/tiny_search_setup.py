"""A tiny SynthPedes split, config and random-weight checkpoints for the
inference/search tests (also used by ``tests/test_tools/test_demos.py``).

The model is the demo config's CLIP baseline with the ``clip-micro`` towers
and 32x16 inputs, so building and encoding take milliseconds.
"""
import os.path as osp
import re
from types import SimpleNamespace

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_CFG = osp.join(ROOT, 'configs/baselines/clip-baseline_synthpedes-tiny.py')

CONFIG_TEMPLATE = """
_base_ = [{base!r}]
img_size = (32, 16)
model = dict(
    image_encoder=dict(arch='clip-micro', img_size=img_size),
    text_encoder=dict(arch='clip-micro'),
    id_head=dict(in_channels=48, num_classes=4))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale={scale!r}, interpolation='bicubic'),
]
test_dataloader = dict(
    batch_size=8,
    dataset=dict(data_root={root!r}, pipeline=test_pipeline))
"""


def write_config(path: str, data_root: str, scale=(16, 32)) -> str:
    """A tiny config; ``scale`` is the (W, H) of the test Resize."""
    with open(path, 'w') as f:
        f.write(
            CONFIG_TEMPLATE.format(base=BASE_CFG, root=data_root, scale=scale))
    return path


def save_random_checkpoint(config: str, path: str, seed: int) -> str:
    """Random weights of the config's model in MMEngine's checkpoint format.
    """
    from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu

    from mmreid_clip.apis import init_model
    torch.manual_seed(seed)
    model = init_model(config)
    save_checkpoint(
        {
            'state_dict': weights_to_cpu(model.state_dict()),
            'meta': dict(epoch=1, seed=seed)
        }, path)
    return path


def pid_of(path: str) -> int:
    """SynthPedes file names are ``<pid:05d>_<k:02d>.jpg``."""
    match = re.match(r'(\d{5})_\d{2}\.jpg$', osp.basename(path))
    assert match, path
    return int(match.group(1))


def make_tiny_setup(folder: str) -> SimpleNamespace:
    """Data, config and two checkpoints (different weights) under folder.

    Returns:
        SimpleNamespace: ``root`` (dataset), ``gallery`` (its image
        folder), ``config``, ``checkpoint``, ``other_checkpoint``.
    """
    from mmreid_synth import generate_synth_pedes
    root = osp.join(folder, 'synth-pedes')
    generate_synth_pedes(
        root, seed=5, train_ids=0, val_ids=0, test_ids=4, images_per_id=2)
    config = write_config(osp.join(folder, 'tiny_search.py'), root)
    return SimpleNamespace(
        root=root,
        gallery=osp.join(root, 'imgs'),
        config=config,
        checkpoint=save_random_checkpoint(config, osp.join(folder, 'a.pth'),
                                          0),
        other_checkpoint=save_random_checkpoint(config,
                                                osp.join(folder, 'b.pth'), 1))
