_base_ = [
    '../_base_/models/clip-baseline_vit-b16.py',
    '../_base_/datasets/cuhk_pedes.py',
    '../_base_/schedules/irra_adam_60e.py',
    '../_base_/default_runtime.py',
]
model = dict(id_head=dict(num_classes=11003))
