# CFine ablation row 2 (cfine.md §10)
# on SynthPedes v2 from the stand-in CLIP, Study 3's
# budget: + MGF (three levels and the diversity loss); no CFR, no FCD.
_base_ = ['./cfine_clip-tiny-p8_synthpedes-v2.py']
model = dict(cfr=None, fcd=None, sim_losses=[])
