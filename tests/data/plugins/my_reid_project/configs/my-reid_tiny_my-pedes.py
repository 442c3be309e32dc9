# CFine's retriever assembled from the plugin's backbone, neck and loss, on
# the plugin's dataset; everything else comes from mmreid_clip.
custom_imports = dict(imports=['my_reid_plugin'], allow_failed_imports=False)
default_scope = 'mmreid_clip'

data_root = 'data/my-pedes'
img_size = (64, 32)  # (H, W)
text_pipeline = [
    dict(
        type='TokenizeCaption',
        tokenizer=dict(type='OpenCLIPTokenizer', context_length=32)),
]
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size[1], img_size[0])),
]

model = dict(
    type='CFine',
    data_preprocessor=dict(type='TextImageDataPreprocessor'),
    image_encoder=dict(type='TinyConvEncoder', embed_dims=48, patch_size=8),
    text_encoder=dict(
        type='OpenCLIPTextTransformer', arch='clip-micro', context_length=32),
    text_global='eot',  # CLIP's text tower pools its end-of-text token
    neck=dict(type='MeanPoolNeck', embed_dims=48),
    losses=[dict(type='LevelInfoNCELoss', temperature=0.07)])

train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='text_image_collate'),
    dataset=dict(
        type='MyPedes',
        data_root=data_root,
        split='train',
        pipeline=pipeline,
        text_pipeline=text_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='text_image_collate'),
    dataset=dict(
        type='MyPedes',
        data_root=data_root,
        split='test',
        pipeline=pipeline,
        text_pipeline=text_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='TextImageRetrievalMetric', topk=(1, 5, 10))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(type='LoggerHook', interval=10))
