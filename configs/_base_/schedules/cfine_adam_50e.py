# CFine's official recipe (docs/methods/cfine.md §8): torch Adam (coupled L2),
# lr 1e-4 for new parameters and 1e-5 for both encoders, weight decay 4e-5 on
# the CLIP image tower only; per-epoch linear warm-up from 0.01x over 10
# epochs, x0.1 at epochs 20, 25 and 35 (0-based), 50 epochs, batch 32.
# New-group lr per 1-based epoch: 1e-6 (1), 1e-4 (11-20), 1e-5 (21-25),
# 1e-6 (26-35), 1e-7 (36-50); encoders one tenth (tests/test_configs).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='Adam', lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=4e-5),
    paramwise_cfg=dict(
        custom_keys={
            'image_encoder': dict(lr_mult=0.1, decay_mult=1.0),
            'text_encoder': dict(lr_mult=0.1, decay_mult=0.0),
            'neck': dict(decay_mult=0.0),
            'losses': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        end_factor=1.0,
        by_epoch=True,
        begin=0,
        # mmengine's LinearLR reaches end_factor at step end-begin-1, so
        # end=11 gives the official factor 0.01 + 0.99 * e / 10 (e = 0..10)
        end=11,
        convert_to_iter_based=False),
    dict(
        type='MultiStepLR',
        milestones=[20, 25, 35],
        gamma=0.1,
        by_epoch=True,
        begin=0,
        end=50),
]
train_cfg = dict(by_epoch=True, max_epochs=50, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=32)
