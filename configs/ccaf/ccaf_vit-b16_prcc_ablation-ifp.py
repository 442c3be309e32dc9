# Ablation row "+ IFP" (docs/methods/ccaf.md §11): CLIP-ReID + GCATP
# prompts on shielding images + I2T + I2I + shielding-branch ID/Tri; no CFM.
_base_ = ['./ccaf_vit-b16_prcc.py']
model = dict(cfm=None, num_clothes=None)
optim_wrapper = dict(
    prompt=dict(modules=['id_prompt']), clothes_prompt=None)
