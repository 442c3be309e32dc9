# CFine ablation (docs/methods/cfine.md §10) on CUHK-PEDES, row
# 1. baseline: CLS features + BN + CMPM + CMPC (no MGF, CFR, FCD).
_base_ = ['./cfine_vit-b16-bert_cuhk-pedes.py']
model = dict(
    neck=dict(num_groups=0),
    cfr=None,
    fcd=None,
    losses=[
        dict(type='CMPMLoss', level_weights=(1.0, )),
        dict(type='CMPCLoss', in_channels=768, num_classes=11003),
    ],
    sim_losses=[]
)
