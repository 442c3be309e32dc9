# "CFine-CLIPtext" (docs/methods/cfine.md §2): CLIP's own text tower instead of
# BERT. The
# text global token is EOT and its attention row drives word selection. The
# text tower is 512 wide, so both towers keep CLIP's projection into the
# shared 512-d space and MGF works at 512 (8 heads). Not comparable with the
# paper's BERT numbers. 77 CLIP BPE tokens.
_base_ = ['./cfine_vit-b16-bert_cuhk-pedes.py']
model = dict(
    image_encoder=dict(with_proj=True),
    text_encoder=dict(
        _delete_=True,
        type='OpenCLIPTextTransformer',
        arch='ViT-B-16-quickgelu',
        pretrained='checkpoints/clip/ViT-B-16.pt',
        context_length=77,
        output_attn=True),
    text_global='eot',
    neck=dict(embed_dims=512, num_heads=8),
    losses=[
        dict(type='CMPMLoss', level_weights=(1.0, 1.0, 0.1)),
        dict(type='CMPCLoss', in_channels=512, num_classes=11003),
        dict(type='DiversityLoss', loss_weight=0.2),
    ])
text_pipeline = [
    dict(
        type='TokenizeCaption',
        tokenizer=dict(type='OpenCLIPTokenizer', context_length=77),
        truncation='keep_eot'),
]
train_dataloader = dict(dataset=dict(text_pipeline=text_pipeline))
val_dataloader = dict(dataset=dict(text_pipeline=text_pipeline))
test_dataloader = dict(dataset=dict(text_pipeline=text_pipeline))
