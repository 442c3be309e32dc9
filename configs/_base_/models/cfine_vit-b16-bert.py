# CFine (Yan et al., TIP 2023), docs/methods/cfine.md §1-§7: CLIP ViT-B/16
# image tower
# without projection + BERT-base, MGF neck, CFR + FCD (training only),
# CMPM + CMPC + diversity on the levels, triplet ranking on S_c + S_f.
# Weights: checkpoints/clip/ViT-B-16.pt (OpenAI archive) and a local
# bert-base-uncased folder at checkpoints/bert-base-uncased (README.md).
num_classes = 11003  # CUHK-PEDES training identities
model = dict(
    type='CFine',
    # the official code normalises with ImageNet statistics (cfine.md §2)
    data_preprocessor=dict(
        type='TextImageDataPreprocessor',
        mean=(123.675, 116.28, 103.53),
        std=(58.395, 57.12, 57.375)),
    image_encoder=dict(
        type='OpenCLIPVisionTransformer',
        # OpenAI's activation, also when built with pretrained=None
        arch='ViT-B-16-quickgelu',
        pretrained='checkpoints/clip/ViT-B-16.pt',
        img_size=(224, 224),
        with_proj=False,
        output_attn=True),
    text_encoder=dict(
        type='BertTextEncoder',
        pretrained='checkpoints/bert-base-uncased',
        # checks that the tokenizer's vocabulary matches the weights
        vocab_file='checkpoints/bert-base-uncased/vocab.txt',
        output_attn=True),
    text_global='cls',
    neck=dict(
        type='MGF', embed_dims=768, num_heads=12, img_ratio=0.1,
        text_ratio=0.2, num_groups=2),
    cfr=dict(type='CFR', temperature=0.07),
    fcd=dict(type='FCD', temperature=0.01, k_w=3, k_p=3),
    losses=[
        dict(type='CMPMLoss', level_weights=(1.0, 1.0, 0.1)),
        dict(type='CMPCLoss', in_channels=768, num_classes=num_classes),
        dict(type='DiversityLoss', loss_weight=0.2),
    ],
    sim_losses=[dict(type='TripletRankingLoss', margin=0.2, loss_weight=10.0)])
