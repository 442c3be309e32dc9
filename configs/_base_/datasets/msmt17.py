# MSMT17 (Wei et al., CVPR 2018): data/MSMT17_V1 with train/, test/ and
# list_{train,val,query,gallery}.txt as released. The train split reads the
# train and val lists (1,041 ids, 32,621 images), as CLIP-ReID does; 11,659
# queries, 82,161 gallery images, 15 cameras. Evaluation: the standard
# protocol, ReIDMetric preset 'msmt17'.
_base_ = ['./market1501.py']
dataset_type = 'MSMT17'
data_root = 'data/MSMT17_V1'
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, train_with_val=True))
stage1_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, train_with_val=True))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = test_dataloader
test_evaluator = dict(type='ReIDMetric', settings='msmt17')
val_evaluator = test_evaluator
