# CLIP-ReID ViT-B/16 on DukeMTMC-reID (Li, Sun, Li, AAAI 2023,
# arXiv 2211.13977): 256x128, stride 16, no SIE; stage 1 learns identity
# prompts, stage 2 fine-tunes the image encoder with 0.25 L_ID + L_Tri +
# L_I2T.
#   python tools/train.py configs/clip_reid/clip-reid_vit-b16_dukemtmc.py
_base_ = [
    '../_base_/models/clip-reid_vit-b16.py',
    '../_base_/datasets/dukemtmc.py',
    '../_base_/schedules/clip-reid_two-stage_120e-60e.py',
    '../_base_/default_runtime.py',
]
# DukeMTMC-reID train has 702 identities (checked against the dataset at
# start-up)
model = dict(num_classes=702)
