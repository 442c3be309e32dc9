# Market-1501 (Zheng et al., ICCV 2015): data/Market-1501-v15.09.15 with
# bounding_box_train/, query/, bounding_box_test/ as released (751 train ids;
# 3,368 queries; 15,913 gallery images once the 3,819 junk images are left
# out). Evaluation: the standard protocol (same pid & camera removed from the
# ranking, distractors pid 0 are negatives), ReIDMetric preset 'market1501'.
# The folder sizes are checked against the full release at start-up
# (check_counts=True); set it to False to train on a modified copy.
# Loaders, sampler and transforms are CLIP-ReID's, kept in one place: the
# no-mask pipelines of ltcc.py (256x128), which this file inherits.
_base_ = ['./ltcc.py']
dataset_type = 'Market1501'
data_root = 'data/Market-1501-v15.09.15'
# CLIP-ReID reads no parsing masks
train_pipeline = {{_base_.train_pipeline_nomask}}
stage1_pipeline = {{_base_.stage1_pipeline_nomask}}
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        with_mask=False,
        check_counts=True,
        pipeline=train_pipeline))
stage1_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        with_mask=False,
        check_counts=True,
        pipeline=stage1_pipeline))
test_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, check_counts=True))
val_dataloader = test_dataloader
test_evaluator = dict(type='ReIDMetric', settings='market1501')
val_evaluator = test_evaluator
