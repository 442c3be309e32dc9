# Tiny CFine of the SynthPedes method comparison (README.md, "Measured by
# this implementation"): cfine_clip-tiny_synthpedes-tiny.py with both towers
# starting from the shared InfoNCE-pretrained tiny CLIP and the study's
# budget, identical to ../baselines/clip-baseline_synthpedes-tiny_init.py
# (same init file, epochs, schedule, batch and optimizer). The ablation
# `*_init` configs inherit both from here.
_base_ = ['./cfine_clip-tiny_synthpedes-tiny.py']
init_weights = 'work_dirs/synth-init/clip-tiny-synthpedes-init.pth'
model = dict(
    image_encoder=dict(pretrained=init_weights),
    text_encoder=dict(pretrained=init_weights))

max_epochs = 2
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
