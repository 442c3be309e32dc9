# CFine on ICFG-PEDES (paper: 60.83 / 76.55 / 82.42); same hyper-parameters
# (docs/methods/cfine.md §8). No val split: validation runs on the test split.
_base_ = ['./cfine_vit-b16-bert_cuhk-pedes.py']
data_root = 'data/ICFG-PEDES'
model = dict(losses=[
    dict(type='CMPMLoss', level_weights=(1.0, 1.0, 0.1)),
    dict(type='CMPCLoss', in_channels=768, num_classes=3102),
    dict(type='DiversityLoss', loss_weight=0.2),
])
train_dataloader = dict(dataset=dict(type='ICFGPEDES', data_root=data_root))
val_dataloader = dict(
    dataset=dict(type='ICFGPEDES', data_root=data_root, split='test'))
test_dataloader = dict(dataset=dict(type='ICFGPEDES', data_root=data_root))
