# CLIP-ReID baseline on LTCC (docs/methods/ccaf.md §11): identity prompts
# learnt on raw images, stage 2 with L_ID + L_Tri + L_I2T; needs no masks.
#   python tools/train.py configs/clip_reid/clip-reid_vit-b16_ltcc.py
_base_ = [
    '../_base_/models/clip-reid_vit-b16.py',
    '../_base_/datasets/ltcc.py',
    '../_base_/schedules/clip-reid_two-stage_120e-60e.py',
    '../_base_/default_runtime.py',
]
# LTCC train has 77 identities (checked against the dataset at start-up)
model = dict(num_classes=77)
train_dataloader = dict(
    dataset=dict(with_mask=False, pipeline={{_base_.train_pipeline_nomask}}))
stage1_dataloader = dict(
    dataset=dict(with_mask=False, pipeline={{_base_.stage1_pipeline_nomask}}))
