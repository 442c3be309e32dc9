# CFine ablation row 3 (cfine.md §10)
# on SynthPedes v2 from the stand-in CLIP, Study 3's
# budget: + CFR (triplet loss on S_c); the full _init config adds FCD.
_base_ = ['./cfine_clip-tiny-p8_synthpedes-v2.py']
model = dict(fcd=None)
