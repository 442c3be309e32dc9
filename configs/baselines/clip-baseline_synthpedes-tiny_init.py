# The tiny CLIP baseline of the SynthPedes method comparison
# (docs/studies/cfine_synthpedes_v1.md, Study 2): the same
# model and data as clip-baseline_synthpedes-tiny.py, but both towers start
# from the shared InfoNCE-pretrained tiny CLIP
# (clip-pretrain_synthpedes-tiny.py, exported with
# tools/model_converters/export_open_clip_weights.py) and train for the
# study's budget with the study's optimizer.
_base_ = ['./clip-baseline_synthpedes-tiny.py']
init_weights = 'work_dirs/synth-init/clip-tiny-synthpedes-init.pth'
model = dict(
    image_encoder=dict(pretrained=init_weights),
    text_encoder=dict(pretrained=init_weights))

# The same optimizer and schedule as the CFine rows
# (../cfine/cfine_clip-tiny_synthpedes-tiny_init.py explains each choice;
# tests/test_configs/test_cfine_tiny_init_optim.py keeps the two equal), so
# the five rows differ only in model and losses. Its own lineage (IRRA:
# Adam, towers at 0.2x the new modules, cosine) has the same structure;
# the rate ratio 0.1 and the schedule are CFine's so that no row gets a
# different optimizer. The new parameters here: ID head and the InfoNCE
# temperature.
lr_new = 1e-4
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='Adam', lr=lr_new, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=4e-5),
    paramwise_cfg=dict(
        custom_keys={
            'image_encoder': dict(lr_mult=0.1, decay_mult=1.0),
            'text_encoder': dict(lr_mult=0.1, decay_mult=0.0),
            'neck': dict(decay_mult=0.0),
            'losses': dict(decay_mult=0.0),
            'cfr': dict(decay_mult=0.0),
            'fcd': dict(decay_mult=0.0),
            'id_head': dict(decay_mult=0.0),
        }))
warmup_iters = 25
max_epochs = 2
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, end_factor=1.0, by_epoch=False,
         begin=0, end=warmup_iters + 1),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
# only the final checkpoint is tested; keep one
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
