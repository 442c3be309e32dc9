# CFine ablation row 3 (cfine.md §10) from the shared init, with the study's
# budget: + CFR (triplet loss on S_c); the full _init config adds FCD.
_base_ = ['./cfine_clip-tiny_synthpedes-tiny_init.py']
model = dict(fcd=None)
