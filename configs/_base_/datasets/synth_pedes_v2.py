# SynthPedes v2 (generator 2.0.0): families of near-duplicate identities
# that share their global appearance and differ in 2-3 local details that
# the captions name (bag, shoes, headwear, chest logo or band, eyewear,
# scarf, watch, hair style); CUHK-PEDES format, loaded by the real
# CUHKPEDES class. Generate with
#   python tools/dataset_converters/make_synth_pedes.py data/synth-pedes-v2 \
#       --version 2 --preset study --seed 0
# Study preset: train 500 ids (140 families) x 4 images x 2 captions
# (2,000 images, 4,000 captions); val 100 ids x 3 images; test 200 ids
# (56 families) x 3 images = 600 gallery images, 1,200 caption queries
# (chance R@1 0.50%). Probe: tools/analysis/synth_pedes_probe.py.
#
# Resolution: 128 x 64 as v1 (drawn at 3x and area-downsampled). A swapped
# detail changes a median 48-172 output pixels (watch .. bag; probe's
# "detail pixels"), i.e. 0.2-0.7 of a 16 x 16 patch but 0.75-2.7 patches of
# 8 x 8: fine-grained methods that select patches (CFine) should use patch 8
# at 128 x 64 (16 x 8 = 128 patches) rather than patch 16 (8 x 4 = 32).
# Same loaders and pipelines as v1 (128 x 64); only the folder differs.
_base_ = ['./synth_pedes.py']
data_root = 'data/synth-pedes-v2'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
