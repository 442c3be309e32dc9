# CLIP ViT-B/16 text-image baseline (IRRA's "CLIP fine-tuned" row): image CLS
# and text EOT features, cosine similarity, SDM + ID losses.
# Weights: put OpenAI's ViT-B-16.pt at checkpoints/clip/ViT-B-16.pt
# (README.md, "CLIP weights"). The '-quickgelu' arch is OpenAI's activation,
# so the towers stay right also when built without the archive
# (pretrained=None) to load a converted or trained checkpoint.
clip_arch = 'ViT-B-16-quickgelu'
clip_weights = 'checkpoints/clip/ViT-B-16.pt'
model = dict(
    type='CLIPTextImageReID',
    data_preprocessor=dict(type='TextImageDataPreprocessor'),
    image_encoder=dict(
        type='OpenCLIPVisionTransformer',
        arch=clip_arch,
        pretrained=clip_weights,
        img_size=(384, 128)),
    text_encoder=dict(
        type='OpenCLIPTextTransformer',
        arch=clip_arch,
        pretrained=clip_weights,
        context_length=77),
    losses=[dict(type='SDMLoss', temperature=0.02)],
    id_head=dict(type='SharedIDHead', in_channels=512, num_classes=11003))
