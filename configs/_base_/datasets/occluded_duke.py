# Occluded-Duke (Miao et al., ICCV 2019): data/Occluded_Duke as written by the
# authors' convert_duke_to_occduke.py from DukeMTMC-reID.zip (702 train ids /
# 15,618 images; 2,210 occluded queries; 17,661 gallery images; 8 cameras).
# Evaluation: the standard protocol, ReIDMetric preset 'occluded_duke'.
_base_ = ['./market1501.py']
dataset_type = 'OccludedDuke'
data_root = 'data/Occluded_Duke'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
stage1_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = test_dataloader
test_evaluator = dict(type='ReIDMetric', settings='occluded_duke')
val_evaluator = test_evaluator
