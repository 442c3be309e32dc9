# CFine ablation row 1 (cfine.md §10) on SynthPedes: global features + BN +
# CMPM + CMPC; no MGF, CFR or FCD.
_base_ = ['./cfine_clip-tiny_synthpedes-tiny.py']
model = dict(
    neck=dict(num_groups=0),
    cfr=None,
    fcd=None,
    losses=[
        dict(type='CMPMLoss', level_weights=(1.0, )),
        dict(type='CMPCLoss', in_channels=256, num_classes=500),
    ],
    sim_losses=[])
