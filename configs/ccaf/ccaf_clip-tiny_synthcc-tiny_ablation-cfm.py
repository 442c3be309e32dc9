# Ablation row "+ CFM" on SynthCC: clothes prompts + adversarial CFM; no IFP.
_base_ = ['./ccaf_clip-tiny_synthcc-tiny.py']
model = dict(ifp=None)
