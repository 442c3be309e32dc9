# CLIP-ReID ViT-B/16 + SIE + OLP on DukeMTMC-reID: the flags of the
# official README's SIE + OLP run (shown there for MSMT17)
#   MODEL.SIE_CAMERA True MODEL.SIE_COE 1.0 MODEL.STRIDE_SIZE '[12, 12]'
# i.e. a learnt camera embedding (8 cameras) added to the CLS token with
# factor 1.0, and overlapping 16x16 patches with stride 12 (21x10 grid).
#   python tools/train.py \
#       configs/clip_reid/clip-reid_vit-b16_dukemtmc_sie-olp.py
_base_ = ['./clip-reid_vit-b16_dukemtmc.py']
model = dict(
    image_encoder=dict(sie_cameras=8, sie_coef=1.0, stride=12))
