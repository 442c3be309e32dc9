# CFine on CUHK-PEDES, the official recipe (paper: 69.57 / 85.93 / 91.15).
# The official run selects the best epoch on the *test* split; here
# validation uses the val split and test.py reports the chosen checkpoint.
_base_ = [
    '../_base_/models/cfine_vit-b16-bert.py',
    '../_base_/datasets/cuhk_pedes_bert-224.py',
    '../_base_/schedules/cfine_adam_50e.py',
    '../_base_/default_runtime.py',
]
randomness = dict(seed=42)
