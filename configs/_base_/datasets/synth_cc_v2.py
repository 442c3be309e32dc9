# SynthCC v2 (generator 2.0.0): a synthetic cloth-changing benchmark in the
# LTCC layout with LIP parsing masks, loaded by the real LTCC class, made by
#   python tools/dataset_converters/make_synth_cc.py data/synth-cc-v2 \
#       --version 2 --seed 0
# and measured by
#   python tools/analysis/synth_cc_probe.py data/synth-cc-v2/LTCC_ReID
# Study preset: 48 train ids (1,152 images, 168 outfits of their own, 3-4 per
# id at about 60/25/15%), 30 test ids (270 queries, 540 gallery images, 90
# unseen outfits, 4 look-alike pairs), 6 cameras, 128x64. See README.md
# ("SynthCC v2") for the design and the acceptance numbers.
#
# Resolution / patch: 128x64 is the size the images are written at (drawn
# at 4x and area-downsampled; resizing them again would blur the cues). A
# model config should use an 8-pixel patch at this size (16 x 8 tokens): a
# head is about 29 px tall and an image holds about 20 whole 8x8 patches of
# identity cues (skin, hair, face, shoes), against about 3 of 16x16.
# Same loaders and pipelines as v1 (128 x 64, PNG images); only the folder
# differs.
_base_ = ['./synth_cc.py']
data_root = 'data/synth-cc-v2/LTCC_ReID'
train_dataloader = dict(dataset=dict(data_root=data_root))
stage1_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = test_dataloader
