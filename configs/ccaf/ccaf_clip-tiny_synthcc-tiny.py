# Tiny CCAF on SynthCC, on CPU (minutes). Starts from the shared tiny-CLIP init
# of the SynthPedes study (docs/studies/cfine_synthpedes_v1.md, "Shared init"),
# the stand-in for OpenAI's CLIP weights:
#   python tools/dataset_converters/make_synth_cc.py data/synth-cc --seed 0
#   python tools/train.py configs/baselines/clip-pretrain_synthpedes-tiny.py \
#       --work-dir work_dirs/synth-init/pretrain
#   python tools/model_converters/export_open_clip_weights.py \
#       work_dirs/synth-init/pretrain/epoch_2.pth \
#       work_dirs/synth-init/clip-tiny-synthpedes-init.pth --arch clip-tiny
#   python tools/train.py configs/ccaf/ccaf_clip-tiny_synthcc-tiny.py
# The ablation configs (*_ablation-*.py) change only the modules; budget, data
# and init are shared, so the rows are comparable
# (docs/studies/ccaf_synthcc_v1.md).
_base_ = [
    '../_base_/models/ccaf_vit-b16.py',
    '../_base_/datasets/synth_cc.py',
    '../_base_/schedules/ccaf_two-stage_120e-60e.py',
    '../_base_/default_runtime.py',
]
clip_init = 'work_dirs/synth-init/clip-tiny-synthpedes-init.pth'
model = dict(
    image_encoder=dict(
        arch='clip-tiny', pretrained=clip_init, img_size=(128, 64)),
    # the text tower loads only the file's text keys (build_open_clip's
    # tower='text'), so the plain arch name fits the 128x64-trained file
    text_encoder=dict(arch='clip-tiny', pretrained=clip_init),
    head=dict(in_channels=(192, 256)),
    # SynthCC tiny train split: 36 identities x 3 outfits
    num_classes=36,
    num_clothes=108)

stage1_epochs = 10
# stage 2: 40 epochs (1,200 steps), the v1 study's budget (why:
# docs/studies/ccaf_synthcc_v1.md).
stage2_epochs = 40
max_epochs = stage1_epochs + stage2_epochs
# a small tower fine-tuned from a weak init: larger rates than ViT-B/16's
optim_wrapper = dict(
    prompt=dict(optimizer=dict(lr=1e-3)),
    encoder=dict(optimizer=dict(lr=3e-4)),
    clothes_prompt=dict(optimizer=dict(lr=1e-3)))
param_scheduler = dict(
    _delete_=True,
    prompt=[
        dict(
            type='TimmCosineLR',
            t_max=stage1_epochs,
            warmup_t=2,
            warmup_lr=1e-5,
            eta_min=1e-5,
            begin=0,
            end=stage1_epochs)
    ],
    encoder=[
        dict(
            type='LinearLR',
            start_factor=0.1,
            by_epoch=True,
            begin=stage1_epochs,
            end=stage1_epochs + 2),
        dict(
            type='MultiStepLR',
            milestones=[32],
            gamma=0.1,
            by_epoch=True,
            begin=stage1_epochs,
            end=max_epochs),
    ],
    clothes_prompt=[
        dict(type='ConstantLR', factor=1.0, by_epoch=True)
    ])
train_cfg = dict(
    max_epochs=max_epochs,
    stage1_epochs=stage1_epochs,
    val_interval=stage2_epochs)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=stage2_epochs, save_best=None, max_keep_ckpts=1))
