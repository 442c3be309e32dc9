# PRCC (docs/methods/datasets.md §2.1): data/prcc/rgb/{train,val,test},
# masks in a mask/ tree mirroring rgb/. Test protocol (CAL): full multi-shot
# cam-A gallery; same-clothes queries = cam B, cloth-changing queries = cam C,
# each with the standard rule (same pid & camera removed).
_base_ = ['./ltcc.py']
dataset_type = 'PRCC'
data_root = 'data/prcc'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
stage1_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = test_dataloader
test_evaluator = dict(type='ReIDMetric', settings='prcc')
val_evaluator = test_evaluator
