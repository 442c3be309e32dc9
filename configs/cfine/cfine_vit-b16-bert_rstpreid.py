# CFine on RSTPReid (paper: 50.55 / 72.50 / 81.60); same hyper-parameters.
_base_ = ['./cfine_vit-b16-bert_cuhk-pedes.py']
data_root = 'data/RSTPReid'
model = dict(losses=[
    dict(type='CMPMLoss', level_weights=(1.0, 1.0, 0.1)),
    dict(type='CMPCLoss', in_channels=768, num_classes=3701),
    dict(type='DiversityLoss', loss_weight=0.2),
])
train_dataloader = dict(dataset=dict(type='RSTPReid', data_root=data_root))
val_dataloader = dict(dataset=dict(type='RSTPReid', data_root=data_root))
test_dataloader = dict(dataset=dict(type='RSTPReid', data_root=data_root))
