# CLIP-ReID's two stages (docs/methods/ccaf.md §4, §9), as one MMEngine loop
# (TwoStageEpochBasedTrainLoop) with one optimizer per parameter group.
#  stage 1 (epochs 1-120): prompts only; Adam 3.5e-4, wd 1e-4; timm cosine on
#    the absolute epoch, linear warm-up from 1e-5 over 5 epochs, eta_min 1e-6.
#  stage 2 (epochs 121-180): image encoder + heads; Adam 5e-6, wd 1e-4, lr x2
#    for every parameter named *bias* (LayerNorm and attention in_proj biases
#    too); warm-up factor 0.19 -> 1.0 over stage-2 epochs 1-10, x0.1 from
#    stage-2 epochs 30 and 50 (1-based), as CLIP-ReID's WarmupMultiStepLR.
# tests/test_configs/test_ccaf_configs.py traces these per epoch.
stage1_epochs = 120
stage2_epochs = 60
max_epochs = stage1_epochs + stage2_epochs
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    prompt=dict(
        modules=['id_prompt'],
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=3.5e-4, weight_decay=1e-4)),
    encoder=dict(
        modules=['image_encoder', 'head'],
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=5e-6, weight_decay=1e-4),
        # CLIP-ReID doubles the lr of every parameter whose name contains
        # "bias": also the LayerNorm biases and the attention in_proj_bias.
        # mmengine's bias_lr_mult would skip norm layers and match only
        # parameters named exactly "bias", so a substring custom key is used.
        paramwise_cfg=dict(
            custom_keys={'bias': dict(lr_mult=2.0, decay_mult=1.0)})))
param_scheduler = dict(
    prompt=[
        dict(
            type='TimmCosineLR',
            t_max=120,
            warmup_t=5,
            warmup_lr=1e-5,
            eta_min=1e-6,
            begin=0,
            end=stage1_epochs)
    ],
    encoder=[
        # mmengine's LinearLR reaches end_factor after end-begin-1 steps:
        # 0.19 + 0.09 k for stage-2 epoch k = 0..9
        dict(
            type='LinearLR',
            start_factor=0.19,
            end_factor=1.0,
            by_epoch=True,
            begin=stage1_epochs,
            end=stage1_epochs + 10),
        dict(
            type='MultiStepLR',
            # counted from begin (0 = first stage-2 epoch)
            milestones=[29, 49],
            gamma=0.1,
            by_epoch=True,
            begin=stage1_epochs,
            end=max_epochs),
    ])
train_cfg = dict(
    type='TwoStageEpochBasedTrainLoop',
    max_epochs=max_epochs,
    stage1_epochs=stage1_epochs,
    stage1_batch_size=64,
    val_interval=stage2_epochs)
val_cfg = dict()
test_cfg = dict()
# several processes (tools/dist_train.sh): the model steps several optimizers
# inside its train_step, so gradients are averaged per optimizer step
# instead of by DistributedDataParallel (docs/methods/ccaf.md §9)
model_wrapper_cfg = dict(type='MultiOptimDataParallel', broadcast_buffers=True)
