"""Fixtures shared by the tool tests."""
import os.path as osp
from typing import Tuple

import pytest
from helpers.tiny_search_setup import save_random_checkpoint
from helpers.tool_loader import ROOT

#: The CCAF tiny config with micro towers, on a tiny SynthCC (LTCC layout).
_CC_CONFIG = """
_base_ = [{base!r}]
model = dict(
    image_encoder=dict(arch='clip-micro', pretrained=None, img_size=(128, 64)),
    text_encoder=dict(arch='clip-micro', pretrained=None),
    head=dict(in_channels=(64, 48)))
test_dataloader = dict(batch_size=16, dataset=dict(data_root={root!r}))
"""


@pytest.fixture(scope='module')
def tiny_cc_setup(tmp_path_factory) -> Tuple[str, str]:
    """``(config, checkpoint)``: a tiny SynthCC in the LTCC layout, the CCAF
    tiny config with micro towers reading it, and random weights for it
    (per module, as the visualisation and probe tools' tests need)."""
    from mmreid_synth import generate_synth_cc
    folder = tmp_path_factory.mktemp('vis_reid')
    generate_synth_cc(
        str(folder / 'cc'),
        seed=1,
        train_ids=2,
        test_ids=3,
        cameras_per_outfit=2,
        frames_per_camera=2)
    config = str(folder / 'cfg.py')
    with open(config, 'w') as f:
        f.write(
            _CC_CONFIG.format(
                base=osp.join(ROOT,
                              'configs/ccaf/ccaf_clip-tiny_synthcc-tiny.py'),
                root=str(folder / 'cc' / 'LTCC_ReID')))
    return config, save_random_checkpoint(config, str(folder / 'w.pth'), 0)
