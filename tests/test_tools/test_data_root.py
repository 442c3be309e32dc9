"""One data root for every loader (``--data-root``), errors that name the
keys, and ``browse_dataset.py`` drawing samples after the pipeline."""
import os.path as osp

import pytest
from mmengine.config import Config
from PIL import Image

from mmreid_clip.utils import missing_files
from mmreid_clip.utils.data_root import apply_data_root_args, set_data_root

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402

CCAF_TINY = osp.join(ROOT, 'configs/ccaf/ccaf_clip-tiny_synthcc-tiny.py')
LTCC = osp.join(ROOT, 'configs/ccaf/ccaf_vit-b16_ltcc.py')
LOADERS = ('train_dataloader', 'stage1_dataloader', 'val_dataloader',
           'test_dataloader')


@pytest.fixture(scope='module')
def synth_cc(tmp_path_factory):
    from mmreid_synth import generate_synth_cc
    root = tmp_path_factory.mktemp('cc')
    generate_synth_cc(
        str(root), seed=3, train_ids=3, test_ids=2, outfits_per_id=2,
        cameras_per_outfit=2, frames_per_camera=1, num_cameras=4)
    return str(root)  # the parent of LTCC_ReID/


def test_every_loader_and_the_parent_folder(synth_cc, tmp_path):
    cfg = Config.fromfile(CCAF_TINY)
    notes = set_data_root(cfg, synth_cc)  # the parent of LTCC_ReID
    want = osp.join(synth_cc, 'LTCC_ReID')
    for key in LOADERS:
        assert cfg[key].dataset.data_root == want, key
    assert cfg.data_root == want
    assert any(n.startswith('stage1_dataloader.dataset.data_root')
               for n in notes)
    # the folder itself works too; an unrelated folder is taken as given
    cfg = Config.fromfile(CCAF_TINY)
    set_data_root(cfg, want)
    assert cfg.stage1_dataloader.dataset.data_root == want
    cfg = Config.fromfile(CCAF_TINY)
    set_data_root(cfg, str(tmp_path))
    assert cfg.train_dataloader.dataset.data_root == str(tmp_path)


def test_top_level_data_root_option_is_not_ignored(synth_cc):
    cfg = Config.fromfile(CCAF_TINY)
    options = {'data_root': synth_cc}
    cfg.merge_from_dict(options)
    apply_data_root_args(cfg, None, options)
    assert cfg.stage1_dataloader.dataset.data_root == osp.join(
        synth_cc, 'LTCC_ReID')
    # the evaluation tools change the test loader only
    cfg = Config.fromfile(CCAF_TINY)
    apply_data_root_args(cfg, synth_cc, None, loaders=('test_dataloader', ))
    assert cfg.test_dataloader.dataset.data_root.startswith(synth_cc)
    assert not cfg.train_dataloader.dataset.data_root.startswith(synth_cc)


def test_ambiguous_root_names_the_keys():
    cfg = Config.fromfile(CCAF_TINY)
    cfg.test_dataloader.dataset.data_root = 'data/other'
    with pytest.raises(ValueError) as err:
        set_data_root(cfg, '/x')
    msg = str(err.value)
    assert 'ambiguous' in msg
    for key in LOADERS:
        assert f'{key}.dataset.data_root=' in msg


def test_missing_data_names_the_keys(tmp_path):
    cfg = Config.fromfile(LTCC)
    text = '\n'.join(missing_files(cfg))
    # every loader, stage 1 included, by its key; the weights by theirs
    for key in LOADERS:
        assert f"{key}.dataset.data_root: dataset folder 'data/LTCC_ReID'" \
            in text, key
    assert 'model.image_encoder.pretrained: pretrained weights' in text


def test_browse_dataset_draws_the_views(synth_cc, tmp_path):
    tool = load_tool('tools/analysis/browse_dataset.py')
    run = tool.main([
        CCAF_TINY, '--data-root', synth_cc, '--show-number', '2',
        '--original', '--output-dir',
        str(tmp_path)
    ])
    assert run['indices'] == [0, run['size'] - 1]
    with Image.open(run['out']) as png:
        assert png.width > 4 * 64 and png.height > 192
    # the views of one item: file, image, mask over it, shielding view
    ds = tool.build_dataset(_with_root(CCAF_TINY, synth_cc), 'train')
    views = tool.sample_views(tool.run_pipeline(ds, 0), original=True)
    assert [t for t, _ in views] == [
        'file', 'image', 'parsing mask', 'shielding view'
    ]
    # stage 1 also draws the clothes-only view
    ds = tool.build_dataset(_with_root(CCAF_TINY, synth_cc), 'stage1')
    titles = [t for t, _ in tool.sample_views(tool.run_pipeline(ds, 0),
                                              False)]
    assert 'clothes view' in titles
    text = tool.describe(dict(pid=3, caption='a man', img_path='/a/b.jpg'),
                         7)
    assert text.startswith('#7 pid 3') and '"a man"' in text
    with pytest.raises(SystemExit, match='no stage1_dataloader.dataset'):
        tool.build_dataset(Config(dict()), 'stage1')


def _with_root(path, root):
    cfg = Config.fromfile(path)
    set_data_root(cfg, root)
    return cfg
