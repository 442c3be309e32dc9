# The tiny CLIP baseline of the SynthPedes method comparison
# (configs/cfine/README.md, "Measured by this implementation"): the same
# model, data and optimizer as clip-baseline_synthpedes-tiny.py, but both
# towers start from the shared InfoNCE-pretrained tiny CLIP
# (clip-pretrain_synthpedes-tiny.py, exported with
# tools/model_converters/export_open_clip_weights.py) and train for the
# study's budget. Every `*_init` config of the comparison uses this init and
# this budget (cfine_clip-tiny_synthpedes-tiny_init.py repeats it).
_base_ = ['./clip-baseline_synthpedes-tiny.py']
init_weights = 'work_dirs/synth-init/clip-tiny-synthpedes-init.pth'
model = dict(
    image_encoder=dict(pretrained=init_weights),
    text_encoder=dict(pretrained=init_weights))

# The study's budget: 2 epochs x 63 iterations of batch 64, one warm-up
# epoch from 0.1x, then cosine; AdamW lr 1e-3 as the from-scratch configs.
max_epochs = 2
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
# only the final checkpoint is tested; keep one
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
