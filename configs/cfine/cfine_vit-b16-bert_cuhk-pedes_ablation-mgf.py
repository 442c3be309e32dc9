# CFine ablation (docs/methods/cfine.md §10) on CUHK-PEDES, row
# 2. + MGF: three-level features and the diversity loss.
_base_ = ['./cfine_vit-b16-bert_cuhk-pedes.py']
model = dict(
    cfr=None,
    fcd=None,
    sim_losses=[]
)
