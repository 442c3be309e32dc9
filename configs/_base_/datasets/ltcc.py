# LTCC (docs/methods/datasets.md §2.2): data/LTCC_ReID/{train,query,test},
# human-parsing masks (LIP label PNGs, datasets.md §3) in train-mask/.
# Evaluation: general (same pid & camera removed) and cloth-changing (also same
# pid & clothes removed), all 493 queries, those without a valid match skipped.
dataset_type = 'LTCC'
data_root = 'data/LTCC_ReID'
img_size = (256, 128)  # (H, W)
scale = (img_size[1], img_size[0])  # mmcv Resize takes (W, H)
# Images are decoded with Pillow, as CLIP-ReID's loader does (OpenCV's JPEG
# decoder differs by a few intensity levels), and resized with Pillow.

# CLIP-ReID's train transforms (docs/methods/fidelity.md) applied jointly to
# the image and its parsing mask, then the shielding view, then random erasing
# drawn independently per view: timm's RandomErasing(p=0.5, mode='pixel') as
# CLIP-ReID applies it to the normalised tensor (fill_color/fill_std = the
# data preprocessor's mean/std; the erased views come out float32). Resize
# with backend='pillow' as CLIP-ReID (PIL), so the bicubic image and the
# nearest mask stay aligned.
train_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadParsingMask'),
    dict(type='Resize', scale=scale, interpolation='bicubic',
         backend='pillow', keep_ratio=False),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='JointRandomCrop', crop_size=img_size, padding=10, pad_val=0,
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
# The CLIP-ReID baseline uses neither masks nor shielding images.
train_pipeline_nomask = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='Resize', scale=scale, interpolation='bicubic',
         backend='pillow', keep_ratio=False),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    # mmpretrain's RandomCrop pads 10 px on every side, then crops
    dict(type='RandomCrop', crop_size=img_size, padding=10, pad_val=0),
    dict(type='RandomErasing', erase_prob=0.5, min_area_ratio=0.02,
         max_area_ratio=1 / 3, mode='pixel', impl='timm',
         fill_color=(127.5, 127.5, 127.5), fill_std=(127.5, 127.5, 127.5)),
    dict(type='PackReIDInputs'),
]
# Stage-1 feature cache: test transforms over the training images (CLIP-ReID),
# with the shielding and clothes-only views CCAF's prompts learn on.
stage1_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadParsingMask'),
    dict(type='Resize', scale=scale, interpolation='bilinear',
         backend='pillow', keep_ratio=False),
    dict(type='ShieldClothes', clothes_labels='lip', with_clothes_img=True),
    dict(type='PackReIDInputs'),
]
stage1_pipeline_nomask = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='Resize', scale=scale, interpolation='bilinear',
         backend='pillow', keep_ratio=False),
    dict(type='PackReIDInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='Resize', scale=scale, interpolation='bilinear',
         backend='pillow', keep_ratio=False),
    dict(type='PackReIDInputs'),
]

train_dataloader = dict(
    batch_size=64,  # P = 16 identities x K = 4 images
    num_workers=4,
    persistent_workers=True,
    # page-locked batches: the host-to-device copy overlaps the step (the
    # data preprocessors copy with non_blocking=True)
    pin_memory=True,
    # CLIP-ReID's RandomIdentitySampler epoch: identities drawn uniformly
    # until fewer than P = 16 have groups of K = 4 left
    sampler=dict(type='IdentityBalancedSampler', num_instances=4,
                 batch_size=64, mode='exhaust'),
    collate_fn=dict(type='reid_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        with_mask=True,
        pipeline=train_pipeline))
stage1_dataloader = dict(
    batch_size=64,
    num_workers=4,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='reid_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        with_mask=True,
        pipeline=stage1_pipeline))
test_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='reid_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(type='ReIDMetric', settings='ltcc')
val_evaluator = test_evaluator
