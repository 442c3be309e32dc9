# Ablation row "+ IFP" on SynthCC: shielding images, cloth-agnostic prompts,
# I2T + I2I + shielding-branch ID/Tri; no CFM.
_base_ = ['./ccaf_clip-tiny_synthcc-tiny.py']
model = dict(cfm=None, num_clothes=None)
optim_wrapper = dict(prompt=dict(modules=['id_prompt']), clothes_prompt=None)
