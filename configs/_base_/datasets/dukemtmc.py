# DukeMTMC-reID (Zheng et al., ICCV 2017; Ristani et al., ECCVW 2016):
# data/DukeMTMC-reID with Market-1501's folders (702 train ids; 2,228
# queries; 17,661 gallery images incl. 408 distractor identities, 8 cameras).
# Evaluation: the standard protocol, ReIDMetric preset 'dukemtmc'.
_base_ = ['./market1501.py']
dataset_type = 'DukeMTMCReID'
data_root = 'data/DukeMTMC-reID'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
stage1_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = test_dataloader
test_evaluator = dict(type='ReIDMetric', settings='dukemtmc')
val_evaluator = test_evaluator
