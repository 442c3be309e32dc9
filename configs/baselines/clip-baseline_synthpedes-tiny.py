# The demo: a ~9M-parameter CLIP trained from scratch on SynthPedes, on CPU.
#   python tools/dataset_converters/make_synth_pedes.py data/synth-pedes
#   python tools/train.py configs/baselines/clip-baseline_synthpedes-tiny.py
_base_ = [
    '../_base_/datasets/synth_pedes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='CLIPTextImageReID',
    data_preprocessor=dict(type='TextImageDataPreprocessor'),
    image_encoder=dict(
        type='OpenCLIPVisionTransformer',
        arch='clip-tiny',
        pretrained=None,
        img_size=(128, 64)),
    text_encoder=dict(
        type='OpenCLIPTextTransformer',
        arch='clip-tiny',
        pretrained=None,
        context_length=77),
    # From scratch, SDM at tau=0.02 sits on the plateau where all features
    # collapse (loss ~28 = the uniform-similarity value, measured on this
    # config); InfoNCE with a learnable temperature trains. SDM is the loss of
    # the ViT-B/16 configs, which start from CLIP's weights.
    losses=[dict(type='InfoNCELoss', init_temperature=0.07)],
    id_head=dict(type='SharedIDHead', in_channels=256, num_classes=500))

# from scratch, so a much larger learning rate than fine-tuning CLIP
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=5.0))
max_epochs = 6
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=2)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(interval=20))
