# SynthCC: procedurally rendered people whose identity lives in body build,
# skin, hair, face and shoes, each wearing several outfits drawn independently
# of identity, written in the LTCC layout with LIP parsing masks by
#   python tools/dataset_converters/make_synth_cc.py data/synth-cc --seed 0
# and loaded by the real LTCC class. Tiny: 36 train ids (972 images, 108
# outfits), 20 test ids (60 queries, 480 gallery images), 128x64.
_base_ = ['./ltcc.py']
data_root = 'data/synth-cc/LTCC_ReID'
img_size = (128, 64)
scale = (img_size[1], img_size[0])
_resize = dict(type='Resize', scale=scale, backend='pillow',
               keep_ratio=False)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadParsingMask'),
    dict(_resize, interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='JointRandomCrop', crop_size=img_size, padding=5, pad_val=0,
         seg_pad_val=0),
    dict(type='ShieldClothes', clothes_labels='lip', fill=0),
    dict(
        type='TransformBroadcaster',
        mapping={'img': ['img', 'shield_img']},
        auto_remap=True,
        share_random_params=False,
        transforms=[
            dict(type='RandomErasing', erase_prob=0.5, min_area_ratio=0.02,
                 max_area_ratio=1 / 3, mode='pixel', impl='timm',
                 fill_color=(127.5, 127.5, 127.5),
                 fill_std=(127.5, 127.5, 127.5))
        ]),
    dict(type='PackReIDInputs'),
]
train_pipeline_nomask = [
    dict(type='LoadImageFromFile'),
    dict(_resize, interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    # mmpretrain's RandomCrop pads 5 px on every side, then crops
    dict(type='RandomCrop', crop_size=img_size, padding=5, pad_val=0),
    dict(type='RandomErasing', erase_prob=0.5, min_area_ratio=0.02,
         max_area_ratio=1 / 3, mode='pixel', impl='timm',
         fill_color=(127.5, 127.5, 127.5), fill_std=(127.5, 127.5, 127.5)),
    dict(type='PackReIDInputs'),
]
stage1_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadParsingMask'),
    dict(_resize, interpolation='bilinear'),
    dict(type='ShieldClothes', clothes_labels='lip', with_clothes_img=True),
    dict(type='PackReIDInputs'),
]
stage1_pipeline_nomask = [
    dict(type='LoadImageFromFile'),
    dict(_resize, interpolation='bilinear'),
    dict(type='PackReIDInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(_resize, interpolation='bilinear'),
    dict(type='PackReIDInputs'),
]
train_dataloader = dict(
    batch_size=32,  # P = 8 identities x K = 4
    num_workers=0,
    persistent_workers=False,
    sampler=dict(batch_size=32),
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
stage1_dataloader = dict(
    batch_size=128,
    num_workers=0,
    dataset=dict(data_root=data_root, pipeline=stage1_pipeline))
test_dataloader = dict(
    batch_size=128,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
val_dataloader = test_dataloader
