# CUHK-PEDES (Li et al., CVPR 2017): data/CUHK-PEDES/{reid_raw.json,imgs/}
# 11,003 train identities; test: 6,156 captions x 3,074 images.
# Images are decoded and resized with Pillow as IRRA's and CFine's
# torchvision pipelines do (Pillow's bicubic antialiases when shrinking,
# OpenCV's does not).
dataset_type = 'CUHKPEDES'
data_root = 'data/CUHK-PEDES'
img_size = (384, 128)  # (H, W)
context_length = 77

text_pipeline = [
    dict(
        type='TokenizeCaption',
        tokenizer=dict(type='OpenCLIPTokenizer',
                       context_length=context_length),
        truncation='keep_eot'),
]
train_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='Resize', scale=(img_size[1], img_size[0]),
         interpolation='bicubic', backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    # IRRA's augmentation: pad 10 + random crop, random erasing
    dict(type='RandomCrop', crop_size=img_size, padding=10),
    dict(type='RandomErasing', erase_prob=0.5, min_area_ratio=0.02,
         max_area_ratio=0.4, mode='const',
         fill_color=(104, 117, 123)),  # the CLIP mean, BGR
]
test_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='Resize', scale=(img_size[1], img_size[0]),
         interpolation='bicubic', backend='pillow'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    # page-locked batches: the host-to-device copy overlaps the step (the
    # data preprocessors copy with non_blocking=True)
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='text_image_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline,
        text_pipeline=text_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='text_image_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        pipeline=test_pipeline,
        text_pipeline=text_pipeline))
test_dataloader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='text_image_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        pipeline=test_pipeline,
        text_pipeline=text_pipeline))
val_evaluator = dict(type='TextImageRetrievalMetric', topk=(1, 5, 10))
test_evaluator = val_evaluator
