# CFine ablation row 2 (cfine.md §10) on SynthPedes: + MGF (three levels and
# the
# diversity loss); no CFR, no FCD.
_base_ = ['./cfine_clip-tiny_synthpedes-tiny.py']
model = dict(cfr=None, fcd=None, sim_losses=[])
