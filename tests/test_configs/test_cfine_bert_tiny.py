"""The tiny BERT CFine config runs a training step on real SynthPedes files."""
import os.path as osp

import torch
from mmengine.config import Config

from mmreid_clip.datasets import text_image_collate
from mmreid_clip.registry import DATASETS, MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT,
               'configs/cfine/cfine_clip-tiny-bert-tiny_synthpedes-tiny.py')
from helpers.tool_loader import load_tool  # noqa: E402


def test_bert_tiny_cfine_trains_one_step(tmp_path):
    from mmreid_synth import generate_synth_pedes
    root = str(tmp_path / 'synth')
    generate_synth_pedes(root, seed=3, train_ids=4, val_ids=1, test_ids=1,
                         images_per_id=2)
    vocab_tool = load_tool('tools/dataset_converters/build_wordpiece_vocab.py')
    vocab = vocab_tool.main([root, str(tmp_path / 'vocab.txt')])
    cfg = Config.fromfile(CFG)
    cfg.merge_from_dict({
        'model.text_encoder.vocab_file': vocab,
        'model.losses.1.num_classes': 4,
    })
    data_cfg = cfg.train_dataloader.dataset
    data_cfg.data_root = root
    data_cfg.text_pipeline[0].tokenizer.vocab_file = vocab
    dataset = DATASETS.build(data_cfg)
    model = MODELS.build(cfg.model)
    model.init_weights()
    batch = text_image_collate([dataset[i] for i in range(8)])
    assert batch['inputs']['texts'].shape == (8, 100)
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.text_encoder.width == 256
