"""Evaluating a full checkpoint needs no pretrained file: tools/test.py, the
inference API and the demos build the towers whose CLIP / BERT file is
missing without it, and the checkpoint must then supply every weight."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tiny_search_setup import save_random_checkpoint, write_config  # noqa
from helpers.tool_loader import load_tool  # noqa: E402

MISSING = 'checkpoints/nowhere/clip-micro-init.pth'


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    from mmreid_synth import generate_synth_pedes
    folder = tmp_path_factory.mktemp('nopretrained')
    root = str(folder / 'synth-pedes')
    generate_synth_pedes(
        root, seed=5, train_ids=0, val_ids=0, test_ids=4, images_per_id=2)
    plain = write_config(str(folder / 'plain.py'), root)
    ckpt = save_random_checkpoint(plain, str(folder / 'full.pth'), 0)
    # the same model, its towers to be initialised from a file that is gone
    config = str(folder / 'with_pretrained.py')
    with open(config, 'w') as f:
        f.write(f'_base_ = [{plain!r}]\n'
                f'model = dict(image_encoder=dict(pretrained={MISSING!r}),\n'
                f'             text_encoder=dict(pretrained={MISSING!r}))\n')
    return dict(root=root, config=config, plain=plain, checkpoint=ckpt,
                gallery=osp.join(root, 'imgs'))


def test_init_model_builds_without_the_missing_file(tiny):
    from mmreid_clip.apis import init_model
    with pytest.raises(FileNotFoundError, match='clip-micro-init.pth'):
        init_model(tiny['config'])  # no checkpoint: the file is needed
    model = init_model(tiny['config'], tiny['checkpoint'])
    ref = init_model(tiny['plain'], tiny['checkpoint'])
    for (k, a), (_, b) in zip(model.state_dict().items(),
                              ref.state_dict().items()):
        assert torch.equal(a, b), k
    assert model.cfg.model.image_encoder.pretrained is None


def test_a_partial_checkpoint_is_still_refused(tiny, tmp_path):
    from mmreid_clip.apis import init_model
    sd = torch.load(tiny['checkpoint'], weights_only=True)['state_dict']
    part = {k: v for k, v in sd.items() if not k.startswith('text_encoder')}
    path = str(tmp_path / 'part.pth')
    torch.save({'state_dict': part, 'meta': {}}, path)
    with pytest.raises(ValueError, match='parameters missing'):
        init_model(tiny['config'], path)


def test_text_search_demo_without_pretrained(tiny, tmp_path):
    tool = load_tool('tools/demo/text_search.py')
    result = tool.main([
        tiny['config'], tiny['checkpoint'], '--gallery', tiny['gallery'],
        '--query', 'a man in a blue jacket', '--topk', '3', '--out',
        str(tmp_path / 'grid.png')
    ])
    assert len(result['results'][0].paths) == 3


def test_bert_layout_from_the_checkpoint(tmp_path):
    from mmreid_clip.models import BertTextEncoder
    from mmreid_clip.utils.pretrained import drop_missing_pretrained
    config = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=256, max_position_embeddings=40,
                  vocab_size=99)
    torch.manual_seed(0)
    ref = BertTextEncoder(config=config).eval()
    sd = {f'text_encoder.{k}': v for k, v in ref.state_dict().items()}
    model_cfg = dict(
        type='X',
        text_encoder=dict(
            type='BertTextEncoder',
            pretrained=str(tmp_path / 'no-bert-here'),
            vocab_file=str(tmp_path / 'no-bert-here' / 'vocab.txt'),
            output_attn=True))
    notes = drop_missing_pretrained(model_cfg, lambda: sd)
    assert len(notes) == 1 and 'text_encoder' in notes[0]
    te = dict(model_cfg['text_encoder'])
    assert te['pretrained'] is None and te['vocab_file'] is None
    assert te['config'] == dict(config, type_vocab_size=2)
    te.pop('type')
    rebuilt = BertTextEncoder(**te).eval()
    rebuilt.load_state_dict(ref.state_dict(), strict=True)
    ids = torch.tensor([[1, 5, 7, 2, 0, 0]])
    out, want = rebuilt(ids), ref(ids)
    assert torch.allclose(out['global'], want['global'])
    # a folder that kept its config.json is read instead
    folder = tmp_path / 'bert'
    folder.mkdir()
    (folder / 'config.json').write_text(json.dumps(dict(config)))
    model_cfg = dict(text_encoder=dict(type='BertTextEncoder',
                                       pretrained=str(folder)))
    drop_missing_pretrained(model_cfg, only_missing=False)
    assert model_cfg['text_encoder']['config'] == config


def test_openai_archive_name_keeps_quick_gelu():
    from mmreid_clip.utils.pretrained import drop_missing_pretrained
    cfg = dict(image_encoder=dict(arch='ViT-B-16', pretrained=MISSING),
               text_encoder=dict(arch='ViT-B-16',
                                 pretrained='nowhere/ViT-B-16.pt'))
    drop_missing_pretrained(cfg)
    assert 'quick_gelu' not in cfg['image_encoder']
    assert cfg['text_encoder']['quick_gelu'] is True
    assert cfg['text_encoder']['pretrained'] is None


@pytest.mark.slow
def test_test_py_without_pretrained(tiny, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    base = [sys.executable, 'tools/test.py', tiny['config'],
            tiny['checkpoint'], '--work-dir', str(tmp_path / 'w')]
    out = str(tmp_path / 'metrics.json')
    proc = subprocess.run(base + ['--out', out], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert 'is not loaded (built without it' in proc.stdout + proc.stderr
    assert 't2i/R@1' in json.load(open(out))


def test_test_py_refuses_an_unwritable_out_first(tmp_path):
    tool = load_tool('tools/test.py')
    with pytest.raises(SystemExit, match='--out'):
        tool.check_writable('/proc/no/such/metrics.json')
    with pytest.raises(SystemExit, match='is a folder'):
        tool.check_writable(str(tmp_path))
    tool.check_writable(str(tmp_path / 'new' / 'm.json'))  # creates 'new'
    assert osp.isdir(tmp_path / 'new')
