# CFine ablation (cfine-spec.md §12) on CUHK-PEDES, row
# 2. + MGF: three-level features and the diversity loss.
_base_ = ['./cfine_vit-b16-bert_cuhk-pedes.py']
model = dict(
    cfr=None,
    fcd=None,
    sim_losses=[]
)
