# Ablation row "+ CFM" on SynthCC v2 (pre-registered study, README.md):
# clothes prompts + adversarial CFM; no IFP.
_base_ = ['./ccaf_clip-tiny-p8_synthcc-v2.py']
model = dict(ifp=None)
