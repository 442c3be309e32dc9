# CFine ablation row 2 (cfine.md §10) from the shared init, with the study's
# budget: + MGF (three levels and the diversity loss); no CFR, no FCD.
_base_ = ['./cfine_clip-tiny_synthpedes-tiny_init.py']
model = dict(cfr=None, fcd=None, sim_losses=[])
