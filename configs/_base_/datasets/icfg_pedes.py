# ICFG-PEDES (Ding et al., 2021): data/ICFG-PEDES/{ICFG-PEDES.json,imgs/}
# 3,102 train identities; test: 19,848 captions x 19,848 images. There is no
# validation split, so validation runs on the test split (as every peer does;
# report last-epoch numbers, see configs/baselines/README.md).
_base_ = ['./cuhk_pedes.py']
dataset_type = 'ICFGPEDES'
data_root = 'data/ICFG-PEDES'
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
