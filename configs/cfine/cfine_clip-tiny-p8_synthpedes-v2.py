# CFine on SynthPedes v2 with the pretrained stand-in CLIP (CPU, minutes):
# the configuration of the pre-registered SynthPedes v2 study (README.md,
# "Study 3"). Everything but the data, the architecture and the init is
# cfine_clip-tiny_synthpedes-tiny_init.py (Study 2's recipe: CFine's own
# optimizer structure, Adam, towers at 0.1x, the official rates 1e-4 /
# 1e-5, 25 warm-up steps, 2 epochs). The ablation rows (*_ablation-*) and
# ../baselines/clip-baseline_clip-tiny-p8_synthpedes-v2.py change only the
# modules.
#   python tools/dataset_converters/make_synth_pedes.py data/synth-pedes-v2 \
#       --version 2 --seed 0
#   python tools/misc/build_synth_clip.py     # the stand-in CLIP (cached)
#   python tools/train.py configs/cfine/cfine_clip-tiny-p8_synthpedes-v2.py
_base_ = ['./cfine_clip-tiny_synthpedes-tiny_init.py']
# The tiny CLIP with 8-pixel patches (16 x 8 tokens at 128 x 64; the
# SynthPedes v2 probe found the local details need them), pretrained on the
# SynthCLIP corpus, whose identities are disjoint from SynthPedes v2.
init_weights = 'checkpoints/synth-clip/clip-tiny-p8-synth.pth'
model = dict(
    image_encoder=dict(arch='clip-tiny-p8', pretrained=init_weights),
    text_encoder=dict(arch='clip-tiny-p8', pretrained=init_weights))
data_root = 'data/synth-pedes-v2'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
