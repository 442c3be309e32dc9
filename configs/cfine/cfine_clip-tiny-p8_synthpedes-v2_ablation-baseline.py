# CFine ablation row 1 (cfine.md §10)
# on SynthPedes v2 from the stand-in CLIP, Study 3's
# budget: global features + BN + CMPM + CMPC; no MGF, CFR or FCD (the same
# change as cfine_clip-tiny_synthpedes-tiny_ablation-baseline.py).
_base_ = ['./cfine_clip-tiny-p8_synthpedes-v2.py']
model = dict(
    neck=dict(num_groups=0),
    cfr=None,
    fcd=None,
    losses=[
        dict(type='CMPMLoss', level_weights=(1.0, )),
        dict(type='CMPCLoss', in_channels=256, num_classes=500),
    ],
    sim_losses=[])
