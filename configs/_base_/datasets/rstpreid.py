# RSTPReid (Zhu et al., ACM MM 2021): data/RSTPReid/{data_captions.json,imgs/}
# 3,701 train identities; test: 2,000 captions x 1,000 images.
_base_ = ['./cuhk_pedes.py']
dataset_type = 'RSTPReid'
data_root = 'data/RSTPReid'
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
