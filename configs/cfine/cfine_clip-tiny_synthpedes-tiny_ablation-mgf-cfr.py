# CFine ablation row 3 (cfine.md §10) on SynthPedes: + CFR (triplet loss on
# S_c);
# the full config adds FCD (S_c + S_f).
_base_ = ['./cfine_clip-tiny_synthpedes-tiny.py']
model = dict(fcd=None)
