# Tiny CFine of the SynthPedes method comparison
# (docs/studies/cfine_synthpedes_v1.md, "Measured by this implementation"):
# cfine_clip-tiny_synthpedes-tiny.py with both towers starting from the shared
# InfoNCE-pretrained tiny CLIP and the study's budget, identical to
# ../baselines/clip-baseline_synthpedes-tiny_init.py (same init file, epochs,
# batch, optimizer and schedule). The ablation `*_init` configs inherit
# everything from here.
_base_ = ['./cfine_clip-tiny_synthpedes-tiny.py']
init_weights = 'work_dirs/synth-init/clip-tiny-synthpedes-init.pth'
model = dict(
    image_encoder=dict(pretrained=init_weights),
    text_encoder=dict(pretrained=init_weights))

# CFine's own optimizer structure (the official recipe, scaled to 126
# steps; docs/studies/cfine_synthpedes_v1.md gives the reasons for each
# change):
# - torch Adam with coupled L2, as the official code; no gradient clipping
#   (the official run does not clip; _delete_ drops the clip_grad, AdamW and
#   the norm/bias exemptions of the from-scratch base config).
# - both towers at 0.1x the new parameters' rate, the official ratio
#   (docs/studies/cfine_synthpedes_v1.md gives what 1x did).
# - weight decay 4e-5 on the image tower only (biases and norms included,
#   as a plain torch param group), none on the text tower (the official
#   BERT group has none) or on anything new (MGF, BN necks, CMPC W).
# - the official rates, 1e-4 new / 1e-5 towers, unscaled: a one-seed probe
#   on the val split (docs/studies/cfine_synthpedes_v1.md) found 10x
#   (1e-3 / 1e-4) worse after the 126 steps, so the budget did not call
#   for a larger rate.
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
            # everything else is new: MGF + BN necks (neck), CMPC's W
            # (losses), and CFR/FCD/ID head where a config has them
            'neck': dict(decay_mult=0.0),
            'losses': dict(decay_mult=0.0),
            'cfr': dict(decay_mult=0.0),
            'fcd': dict(decay_mult=0.0),
            'id_head': dict(decay_mult=0.0),
        }))
# The official warm-up (linear from 0.01x, 10 of 50 epochs = the first 20%
# of training), per iteration over the first 20% of the 126 steps: stepped
# per epoch it would hold the whole first epoch, half the budget, at 0.01x.
# LinearLR reaches end_factor at step end - begin - 1, so end=26 gives
# 0.01 + 0.99 * i / 25 for iteration i = 0..25. The official x0.1 steps
# (after 40/50/70% of a run that has converged by then) are omitted: 126
# steps are far from convergence and scaled steps would leave 25 steps at
# the full rate. The rate stays constant after the warm-up.
warmup_iters = 25
max_epochs = 2
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, end_factor=1.0, by_epoch=False,
         begin=0, end=warmup_iters + 1),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
