# The stand-in for OpenAI's CLIP on the synthetic benchmarks: the tiny CLIP
# with 8-pixel patches (arch 'clip-tiny-p8', 128x64 images, 16x8 tokens)
# pretrained CLIP-style (symmetric InfoNCE with a learned temperature, no
# identity head) on the SynthCLIP corpus: 10,800 captioned person images
# (SynthPedes v2 people and SynthCC v2 crops, 2 captions each) whose
# identities are disjoint from every benchmark split (corpus seed 1000;
# the benchmarks use seeds 0-2). Build, export and measure it with one
# command (cached; about an hour on 2 CPU cores):
#   python tools/misc/build_synth_clip.py
# which runs
#   python tools/dataset_converters/make_synth_clip_corpus.py \
#       data/synth-clip-corpus
#   python tools/train.py \
#       configs/baselines/clip-pretrain_clip-tiny-p8_synth-corpus.py \
#       --work-dir work_dirs/synth-clip/pretrain
#   python tools/model_converters/export_open_clip_weights.py \
#       work_dirs/synth-clip/pretrain/epoch_5.pth \
#       checkpoints/synth-clip/clip-tiny-p8-synth.pth --arch clip-tiny-p8
# Validation: the corpus' held-out identities (never a benchmark split).
# Testing this config gives the zero-shot text-to-image figures on the
# SynthPedes v2 test split (data/synth-pedes-v2, seed 0).
_base_ = [
    '../_base_/datasets/synth_pedes_v2.py',
    '../_base_/default_runtime.py',
]
corpus_root = 'data/synth-clip-corpus'
model = dict(
    type='CLIPTextImageReID',
    data_preprocessor=dict(type='TextImageDataPreprocessor'),
    image_encoder=dict(
        type='OpenCLIPVisionTransformer',
        arch='clip-tiny-p8',
        pretrained=None,
        img_size=(128, 64)),
    text_encoder=dict(
        type='OpenCLIPTextTransformer',
        arch='clip-tiny-p8',
        pretrained=None,
        context_length=77),
    losses=[dict(type='InfoNCELoss', init_temperature=0.07)],
    id_head=None)

# Corpus paths are relative to the corpus root (img_prefix '').
train_dataloader = dict(
    batch_size=128,
    dataset=dict(data_root=corpus_root, img_prefix=''))
val_dataloader = dict(dataset=dict(data_root=corpus_root, img_prefix=''))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.1,
                   betas=(0.9, 0.98), eps=1e-6),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=5.0))
max_epochs = 5
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs,
                 val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=1, max_keep_ckpts=1, save_best=None))
# Fixed, and distinct from the studies' seeds (0, 1, 2).
randomness = dict(seed=1000, deterministic=False)
