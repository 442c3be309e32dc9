# Ablation row "+ CFM" (docs/methods/ccaf.md §11): CLIP-ReID (prompts on raw
# images) + clothes prompts and the adversarial CFM loss; no IFP.
_base_ = ['./ccaf_vit-b16_prcc.py']
model = dict(ifp=None)
