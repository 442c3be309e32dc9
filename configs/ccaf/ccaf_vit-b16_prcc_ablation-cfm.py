# Ablation row "+ CFM" (ccaf-spec.md §10.3 row 5): CLIP-ReID (prompts on raw
# images) + clothes prompts and the adversarial CFM loss; no IFP.
_base_ = ['./ccaf_vit-b16_prcc.py']
model = dict(ifp=None)
