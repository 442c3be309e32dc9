# CLIP-ReID ViT-B/16 (docs/methods/fidelity.md): OpenAI CLIP weights; the
# '-quickgelu' arch is their activation, so the towers stay right also when
# built without the archive (pretrained=None) to load a converted or trained
# checkpoint. 256x128 input, stride 16,
# SIE off; BNNeck on f12 and fp; stage-2 loss 0.25 ID + 1 Tri + 1 I2T.
# Datasets set model.num_classes (and num_clothes for CCAF).
clip_weights = 'checkpoints/clip/ViT-B-16.pt'
model = dict(
    type='CLIPReID',
    data_preprocessor=dict(
        type='ReIDDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5]),
    image_encoder=dict(
        type='OpenCLIPReIDVisionTransformer',
        arch='ViT-B-16-quickgelu',
        pretrained=clip_weights,
        img_size=(256, 128),  # = the dataset configs' img_size
        interpolation='bilinear',
        # CLIP-ReID resizes OpenAI's fp16 positional embedding in fp16
        resize_in_file_dtype=True),
    text_encoder=dict(
        type='OpenCLIPTextTransformer',
        arch='ViT-B-16-quickgelu',
        pretrained=clip_weights),
    head=dict(type='BNNeckHead', in_channels=(768, 512), keys=('f12', 'fp')),
    num_classes=None,
    id_prompt=dict(
        type='PromptLearner', template='A photo of a {} person.', num_ctx=4),
    stage1_loss=dict(type='SupConLoss', temperature=1.0),
    id_loss=dict(
        type='LabelSmoothCrossEntropyLoss',
        label_smooth_val=0.1,
        loss_weight=0.25),
    triplet_loss=dict(type='BatchHardTripletLoss', margin=0.3),
    triplet_keys=('f11', 'f12', 'fp'),
    i2t_loss=dict(
        type='LabelSmoothCrossEntropyLoss',
        label_smooth_val=0.1,
        loss_weight=1.0),
    test_feat_keys=('f12', 'fp'))
