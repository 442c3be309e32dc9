# CLIP-ReID ViT-B/16 on MSMT17 (Li, Sun, Li, AAAI 2023, arXiv 2211.13977):
# 256x128, stride 16, no SIE; stage 1 learns identity prompts, stage 2
# fine-tunes the image encoder with 0.25 L_ID + L_Tri + L_I2T.
#   python tools/train.py configs/clip_reid/clip-reid_vit-b16_msmt17.py
_base_ = [
    '../_base_/models/clip-reid_vit-b16.py',
    '../_base_/datasets/msmt17.py',
    '../_base_/schedules/clip-reid_two-stage_120e-60e.py',
    '../_base_/default_runtime.py',
]
# MSMT17 train has 1041 identities (checked against the dataset at
# start-up)
model = dict(num_classes=1041)
