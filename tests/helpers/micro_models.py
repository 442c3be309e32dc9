"""clip-micro CFine and CCAF models and batches for model-level tests."""
import copy

import torch
from mmengine.optim import build_optim_wrapper
from mmpretrain.structures import DataSample

W = 48  # clip-micro's projected width, shared by both towers

CFINE = dict(
    type='CFine',
    image_encoder=dict(
        type='OpenCLIPVisionTransformer', arch='clip-micro',
        img_size=(32, 16), output_attn=True),
    text_encoder=dict(
        type='OpenCLIPTextTransformer', arch='clip-micro',
        context_length=16, output_attn=True),
    text_global='eot',
    # 9 image tokens: a 0.25 ratio gives K=2 per group
    neck=dict(type='MGF', embed_dims=W, num_heads=4, img_ratio=0.25,
              text_ratio=0.2),
    cfr=dict(type='CFR'),
    fcd=dict(type='FCD', k_w=2, k_p=2),
    losses=[
        dict(type='CMPMLoss'),
        dict(type='CMPCLoss', in_channels=W, num_classes=3),
        dict(type='DiversityLoss'),
    ],
    sim_losses=[dict(type='TripletRankingLoss')])

# 4 identities x 2 outfits; SIE over 3 cameras
CCAF = dict(
    type='CCAF',
    image_encoder=dict(
        type='OpenCLIPReIDVisionTransformer', arch='clip-micro',
        img_size=(32, 16), sie_cameras=3),
    text_encoder=dict(type='OpenCLIPTextTransformer', arch='clip-micro'),
    head=dict(type='BNNeckHead', in_channels=(64, 48)),
    num_classes=4,
    num_clothes=8)

CCAF_OPTIM = dict(
    constructor='MultiOptimWrapperConstructor',
    prompt=dict(modules=['id_prompt', 'cfm.clothes_prompt'],
                optimizer=dict(type='Adam', lr=1e-3)),
    encoder=dict(modules=['image_encoder', 'head'],
                 optimizer=dict(type='Adam', lr=1e-4)),
    clothes_prompt=dict(modules=['cfm.clothes_prompt'],
                        optimizer=dict(type='Adam', lr=1e-3)))


def cfine_batch(seed: int = 0) -> dict:
    """Six image-caption pairs of three identities (raw, for train_step)."""
    g = torch.Generator().manual_seed(seed)
    pids = [0, 0, 1, 1, 2, 2]
    texts = torch.randint(1, 400, (6, 16), generator=g)
    texts[:, 0] = 49406
    texts[:, 9] = 49407  # EOT (the argmax), then padding
    texts[:, 10:] = 0
    samples = [
        DataSample(metainfo=dict(pid=p, has_image=True,
                                 has_text=True)).set_gt_label(p)
        for p in pids
    ]
    images = torch.randint(
        0, 256, (6, 3, 32, 16), dtype=torch.uint8, generator=g)
    return dict(inputs=dict(images=images, texts=texts),
                data_samples=samples)


def ccaf_batch(seed: int = 1) -> dict:
    """A P x K = 4 x 2 batch with the three views (raw, for train_step)."""
    g = torch.Generator().manual_seed(seed)
    samples = [
        DataSample(metainfo=dict(pid=i // 2, camid=i % 3,
                                 clothes_id=2 * (i // 2) + i % 2,
                                 subset='train')).set_gt_label(i // 2)
        for i in range(8)
    ]

    def img():
        return torch.randint(0, 255, (8, 3, 32, 16), generator=g,
                             dtype=torch.uint8)

    return dict(inputs=dict(images=img(), shield_images=img(),
                            clothes_images=img()),
                data_samples=samples)


def pid2clothes() -> torch.Tensor:
    p2c = torch.zeros(4, 8, dtype=torch.bool)
    for p in range(4):
        p2c[p, 2 * p] = p2c[p, 2 * p + 1] = True
    return p2c


def ready_ccaf(model):
    """``model`` with the training metainfo and its optimizer wrappers."""
    model.set_train_metainfo(
        dict(num_pids=4, num_clothes=8, pid2clothes=pid2clothes().numpy()))
    return model, build_optim_wrapper(model, copy.deepcopy(CCAF_OPTIM))
