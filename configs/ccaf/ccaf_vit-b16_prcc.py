# CCAF on PRCC (docs/methods/ccaf.md): CLIP-ReID + IFP + CFM; masks in
# prcc/mask/
# mirroring prcc/rgb/. Reported: same-clothes (B->A) and cloth-changing (C->A).
#   python tools/train.py configs/ccaf/ccaf_vit-b16_prcc.py
_base_ = [
    '../_base_/models/ccaf_vit-b16.py',
    '../_base_/datasets/prcc.py',
    '../_base_/schedules/ccaf_two-stage_120e-60e.py',
    '../_base_/default_runtime.py',
]
# PRCC train: 150 identities, clothes id = pid for cams A/B and pid+'C' for
# cam C, i.e. 300 clothes labels (checked against the dataset at start-up)
model = dict(num_classes=150, num_clothes=300)
