# CCAF on LTCC (docs/methods/ccaf.md): CLIP-ReID + IFP (shielding images from
# LIP
# parsing masks in LTCC_ReID/train-mask/, cloth-agnostic prompts, I2T, I2I)
# + CFM (clothes prompts, examine / adversarial minimise). Only the image
# encoder runs at test time.
#   python tools/train.py configs/ccaf/ccaf_vit-b16_ltcc.py
_base_ = [
    '../_base_/models/ccaf_vit-b16.py',
    '../_base_/datasets/ltcc.py',
    '../_base_/schedules/ccaf_two-stage_120e-60e.py',
    '../_base_/default_runtime.py',
]
# LTCC train: 77 identities wearing 256 outfits (CAL's loader); both are
# checked against the dataset at start-up, with the value to set on mismatch
model = dict(num_classes=77, num_clothes=256)
