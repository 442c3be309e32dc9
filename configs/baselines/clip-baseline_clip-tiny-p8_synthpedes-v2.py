# The CLIP baseline row of the SynthPedes v2 study (configs/cfine/README.md,
# "Study 3"): InfoNCE + the shared ID head, from the pretrained stand-in
# CLIP, with the CFine rows' data, budget and optimizer
# (clip-baseline_synthpedes-tiny_init.py: Adam, towers at 0.1x, 1e-4 /
# 1e-5, 25 warm-up steps, 2 epochs).
_base_ = ['./clip-baseline_synthpedes-tiny_init.py']
init_weights = 'checkpoints/synth-clip/clip-tiny-p8-synth.pth'
model = dict(
    image_encoder=dict(arch='clip-tiny-p8', pretrained=init_weights),
    text_encoder=dict(arch='clip-tiny-p8', pretrained=init_weights))
data_root = 'data/synth-pedes-v2'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
