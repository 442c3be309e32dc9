"""The tools users of mmpretrain / fast-reid expect: print_config, get_flops,
zero-shot search with CLIP weights alone, and an ONNX export that records
its preprocessing and refuses random weights."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tiny_search_setup import save_random_checkpoint, write_config  # noqa
from helpers.tool_loader import load_tool  # noqa: E402

TINY = osp.join(ROOT, 'configs/baselines/clip-baseline_synthpedes-tiny.py')
CCAF_TINY = osp.join(ROOT, 'configs/ccaf/ccaf_clip-tiny_synthcc-tiny.py')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    from mmreid_synth import generate_synth_pedes
    folder = tmp_path_factory.mktemp('usertools')
    root = str(folder / 'synth-pedes')
    generate_synth_pedes(
        root, seed=5, train_ids=0, val_ids=0, test_ids=4, images_per_id=2)
    config = write_config(str(folder / 'tiny.py'), root)
    # "CLIP weights": an open_clip state dict of the micro arch
    from mmreid_clip.models.backbones import build_open_clip
    torch.manual_seed(3)
    clip = str(folder / 'clip-micro.pth')
    torch.save(build_open_clip('clip-micro', img_size=(32, 16)).state_dict(),
               clip)
    return dict(root=root, config=config, clip=clip, folder=str(folder),
                gallery=osp.join(root, 'imgs'))


def test_print_config_applies_the_options(tmp_path, capsys):
    tool = load_tool('tools/misc/print_config.py')
    text = tool.main([
        CCAF_TINY, '--epochs', '6', '--stage1-epochs', '2', '--data-root',
        str(tmp_path)
    ])
    out = capsys.readouterr().out
    assert '# --epochs: train_cfg.max_epochs: 50 -> 6' in out
    assert '# --data-root: stage1_dataloader.dataset.data_root' in out
    cfg = Config.fromstring(text, '.py')
    assert cfg.train_cfg.max_epochs == 6 and cfg.train_cfg.stage1_epochs == 2
    assert cfg.stage1_dataloader.dataset.data_root == str(tmp_path)
    path = tool.main([TINY, '--out', str(tmp_path / 'c.json')])
    assert json.load(open(path))['train_cfg']['max_epochs'] == 6


def test_get_flops_per_part(tmp_path):
    tool = load_tool('tools/analysis/get_flops.py')
    numbers = tool.main([TINY, '--json', str(tmp_path / 'f.json')])
    image, caption = numbers['flops']['image'], numbers['flops']['caption']
    # each encoder costs only its own modality; the parts sum to the total
    assert image['image_encoder'] > 0 and 'text_encoder' not in image
    assert caption['text_encoder'] > 0 and 'image_encoder' not in caption
    assert sum(v for k, v in image.items() if k != 'total') == \
        image['total']
    params = numbers['params']
    assert params['image_encoder'][0] == sum(
        p.numel() for p in tool.build_model(Config.fromfile(TINY))
        .image_encoder.parameters())
    assert json.load(open(tmp_path / 'f.json'))['params']


def test_zero_shot_search_with_clip_weights_alone(tiny, tmp_path):
    tool = load_tool('tools/demo/text_search.py')
    argv = [
        tiny['config'], '--gallery', tiny['gallery'], '--query',
        'a man in a blue jacket', '--topk', '3', '--out',
        str(tmp_path / 'zs.png')
    ]
    # no checkpoint and no weights: refused, never random features
    with pytest.raises(SystemExit, match='--clip-weights'):
        tool.main(argv)
    result = tool.main(argv + ['--clip-weights', tiny['clip']])
    assert len(result['results'][0].paths) == 3
    # the API: init_model without a checkpoint keeps the CLIP weights
    from mmreid_clip.apis import TextPersonSearcher, init_model
    from mmreid_clip.utils.pretrained import set_clip_weights
    cfg = Config.fromfile(tiny['config'])
    set_clip_weights(cfg.model, tiny['clip'])
    searcher = TextPersonSearcher(init_model(cfg))
    searcher.index_folder(tiny['gallery'])
    again = searcher.query('a man in a blue jacket', topk=3)
    assert again.rel_paths == result['results'][0].rel_paths
    sd = torch.load(tiny['clip'], weights_only=True)
    assert torch.equal(searcher.model.image_encoder.visual.conv1.weight,
                       sd['visual.conv1.weight'])


needs_onnx = pytest.mark.skipif(
    not all(
        importlib.util.find_spec(m)
        for m in ('onnx', 'onnxscript', 'onnxruntime')),
    reason='needs onnx, onnxscript and onnxruntime')


@needs_onnx
@pytest.mark.slow
def test_onnx_export_metadata_and_random_weights(tiny, tmp_path, capsys):
    from mmreid_clip.deploy import ExportError, export_from_config
    tool = load_tool('tools/deploy/export_onnx.py')
    # random towers and no checkpoint: refused, with the way out named
    with pytest.raises(ExportError, match='--random-weights'):
        export_from_config(tiny['config'], out_dir=str(tmp_path / 'r'))
    assert tool.main([tiny['config'], '--out-dir', str(tmp_path / 'r')]) == 1
    assert '--random-weights' in capsys.readouterr().err
    # a full checkpoint, the config's pretrained file missing
    ckpt = save_random_checkpoint(tiny['config'], str(tmp_path / 'c.pth'), 0)
    out = str(tmp_path / 'onnx')
    assert tool.main([
        tiny['config'], '--checkpoint', ckpt, '--out-dir', out,
        '--cfg-options',
        'model.image_encoder.pretrained=checkpoints/nowhere/x.pth'
    ]) == 0
    printed = capsys.readouterr().out
    assert 'preprocessing (' in printed
    meta = json.load(open(osp.join(out, 'preprocessing.json')))
    img = meta['image']
    assert img['size_hw'] == [32, 16]
    assert img['normalisation']['in_graph'] is False
    assert len(img['normalisation']['mean']) == 3
    assert img['channel_order'].startswith(('RGB', 'BGR'))
    assert any(step['type'] == 'Resize' for step in img['pipeline'])
    text = meta['text']
    assert text['tokenizer']['type'] == 'OpenCLIPTokenizer'
    assert text['context_length'] == 77 and 'start' in text['special_ids']
