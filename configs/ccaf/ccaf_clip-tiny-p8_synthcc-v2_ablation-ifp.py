# Ablation row "+ IFP" on SynthCC v2 (pre-registered study, README.md):
# shielding images, cloth-agnostic prompts,
# I2T + I2I + shielding-branch ID/Tri; no CFM.
_base_ = ['./ccaf_clip-tiny-p8_synthcc-v2.py']
model = dict(cfm=None, num_clothes=None)
optim_wrapper = dict(prompt=dict(modules=['id_prompt']), clothes_prompt=None)
