# SynthPedes: procedurally rendered pedestrians written in the CUHK-PEDES
# format by tools/dataset_converters/make_synth_pedes.py, loaded by the real
# CUHKPEDES dataset class. 500 train ids x 4 images x 2 captions; test
# 200 ids x 3 images (600 gallery images, 1,200 caption queries).
_base_ = ['./cuhk_pedes.py']
data_root = 'data/synth-pedes'
img_size = (128, 64)  # (H, W)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size[1], img_size[0]),
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size[1], img_size[0]),
         interpolation='bicubic'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=128,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
