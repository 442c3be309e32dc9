# IRRA's recipe: Adam, lr 1e-5 for the CLIP towers and 5x for new modules,
# weight decay 4e-5 (none on biases), 5 warm-up epochs from 0.1x, cosine to
# zero over 60 epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='Adam', lr=1e-5, betas=(0.9, 0.999), eps=1e-3,
        weight_decay=4e-5),
    paramwise_cfg=dict(
        bias_decay_mult=0.0,
        custom_keys={
            'id_head': dict(lr_mult=5.0),
            'losses': dict(lr_mult=5.0, decay_mult=0.0),
        }))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.1,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        by_epoch=True,
        begin=5,
        end=60,
        eta_min=0.0,
        convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=60, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# lr above is for 1 GPU x 128 pairs; --auto-scale-lr rescales it
auto_scale_lr = dict(base_batch_size=128)
