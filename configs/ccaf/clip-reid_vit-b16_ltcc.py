# Alias of ../clip_reid/clip-reid_vit-b16_ltcc.py, where the CLIP-ReID
# baseline's configs live; kept at this path so existing commands and the
# CLIP-ReID equivalence harness (docs/methods/fidelity.md) still find it.
_base_ = ['../clip_reid/clip-reid_vit-b16_ltcc.py']
