# SynthCC v2 (generator 2.0.0): a synthetic cloth-changing benchmark in the
# LTCC layout with LIP parsing masks, loaded by the real LTCC class, made by
#   python tools/dataset_converters/make_synth_cc.py data/synth-cc-v2 \
#       --version 2 --seed 0
# and measured by
#   python tools/analysis/synth_cc_probe.py data/synth-cc-v2/LTCC_ReID
# Study preset: 48 train ids (1,152 images, 168 outfits of their own, 3-4 per
# id at about 60/25/15%), 30 test ids (270 queries, 540 gallery images, 90
# unseen outfits, 4 look-alike pairs), 6 cameras, 128x64. See README.md
# ("SynthCC v2") for the design and the acceptance numbers.
#
# Resolution / patch: 128x64 is the size the images are written at (drawn
# at 4x and area-downsampled; resizing them again would blur the cues). A
# model config should use an 8-pixel patch at this size (16 x 8 tokens): a
# head is about 29 px tall and an image holds about 20 whole 8x8 patches of
# identity cues (skin, hair, face, shoes), against about 3 of 16x16.
_base_ = ['./ltcc.py']
data_root = 'data/synth-cc-v2/LTCC_ReID'
img_size = (128, 64)
scale = (img_size[1], img_size[0])
_resize = dict(type='Resize', scale=scale, backend='pillow',
               keep_ratio=False)
train_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
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
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
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
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadParsingMask'),
    dict(_resize, interpolation='bilinear'),
    dict(type='ShieldClothes', clothes_labels='lip', with_clothes_img=True),
    dict(type='PackReIDInputs'),
]
stage1_pipeline_nomask = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(_resize, interpolation='bilinear'),
    dict(type='PackReIDInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
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
