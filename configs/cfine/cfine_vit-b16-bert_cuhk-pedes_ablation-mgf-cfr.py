# CFine ablation (docs/methods/cfine.md §10) on CUHK-PEDES, row
# 3. + CFR: triplet ranking loss on S_c (the full model adds FCD: S_c + S_f).
_base_ = ['./cfine_vit-b16-bert_cuhk-pedes.py']
model = dict(
    fcd=None
)
