# The shared starting point of the SynthPedes method comparison
# (docs/studies/cfine_synthpedes_v1.md): a short CLIP-style InfoNCE training of
# the tiny CLIP on the SynthPedes *train* split only (no validation, no test),
# the stand-in for the pretrained CLIP the papers start from. Its checkpoint is
# exported to an open_clip state dict that every `*_init` config loads into
# both towers:
#   python tools/train.py configs/baselines/clip-pretrain_synthpedes-tiny.py \
#       --work-dir work_dirs/synth-init/pretrain
#   python tools/model_converters/export_open_clip_weights.py \
#       work_dirs/synth-init/pretrain/epoch_2.pth \
#       work_dirs/synth-init/clip-tiny-synthpedes-init.pth --arch clip-tiny
_base_ = ['./clip-baseline_synthpedes-tiny.py']
# InfoNCE only, as CLIP's own pretraining: no identity head, so nothing
# identity-specific is carried into the methods compared from this init.
model = dict(id_head=None)

max_epochs = 2
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
# The val and test splits are never seen before the methods are compared.
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
default_hooks = dict(checkpoint=dict(save_best=None, max_keep_ckpts=1))
# Fixed, and distinct from the study's training seeds (0, 1, 2).
randomness = dict(seed=1000, deterministic=False)
