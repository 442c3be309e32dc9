# Tiny CFine on SynthPedes, trained from scratch on CPU with the same budget
# as configs/baselines/clip-baseline_synthpedes-tiny.py (same towers, data,
# optimizer, schedule and epochs), for the comparison in README.md.
# Text side: CLIP's text tower ("CFine-CLIPtext", cfine.md §2), so no BERT
# vocabulary is needed; both towers project to 256-d for the shared MGF.
_base_ = ['../baselines/clip-baseline_synthpedes-tiny.py']
model = dict(
    _delete_=True,
    type='CFine',
    data_preprocessor=dict(type='TextImageDataPreprocessor'),
    image_encoder=dict(
        type='OpenCLIPVisionTransformer',
        arch='clip-tiny',
        pretrained=None,
        img_size=(128, 64),
        output_attn=True),
    text_encoder=dict(
        type='OpenCLIPTextTransformer',
        arch='clip-tiny',
        pretrained=None,
        context_length=77,
        output_attn=True),
    text_global='eot',
    neck=dict(type='MGF', embed_dims=256, num_heads=4, img_ratio=0.1,
              text_ratio=0.2, num_groups=2),
    cfr=dict(type='CFR', temperature=0.07),
    fcd=dict(type='FCD', temperature=0.01, k_w=3, k_p=3),
    losses=[
        dict(type='CMPMLoss', level_weights=(1.0, 1.0, 0.1)),
        dict(type='CMPCLoss', in_channels=256, num_classes=500),
        dict(type='DiversityLoss', loss_weight=0.2),
    ],
    sim_losses=[dict(type='TripletRankingLoss', margin=0.2, loss_weight=10.0)])
