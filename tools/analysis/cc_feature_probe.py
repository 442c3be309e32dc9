"""What a trained image-ReID model's features depend on: person, clothes or
background.

    python tools/analysis/cc_feature_probe.py CONFIG CHECKPOINT \\
        [--split test] [--max-images 240] [--clothes-labels lip] \\
        [--json out.json] [--device cpu] [--cfg-options k=v ...]

For the images of one split of an LTCC-layout dataset with LIP parsing masks
(LTCC, SynthCC; ``<split>-mask/`` beside ``<split>/``) it encodes three
views of every image with the model's test pipeline (``encode_images``):

* the image;
* the *background-only* view: every person pixel (mask > 0) set to 0;
* the *shielding* view: the clothes pixels (``--clothes-labels``) set to 0,
  as ``ShieldClothes`` makes it for IFP.

and reports

* ``mean_cos_between_images``: the mean cosine of two different images'
  features (near 1 means a common component dominates, so the raw cosines
  below say little);
* ``centred_cos_{background,shielded}``: the mean cosine of an image's
  feature and its view's, both minus the mean image feature: near 0, the
  view's content does not drive the feature; near 1, it does;
* ``cross_camera_nn_same_pid`` / ``cloth_changing_nn_same_pid`` (and the
  same with the background-only features): how often the nearest image
  from another camera (and in other clothes) is the same person, over the
  images that have such a match, with the chance rate beside it;
* with prompt learning (CLIP-ReID / CCAF), ``prompt_cos_identity`` (and
  ``prompt_cos_clothes``): the mean cosine between the text features of two
  different identity (clothes) prompts: near 1, the prompts barely differ
  and the image-to-text losses give near-uniform targets.

The file names give the labels (``<pid>_<clothes>_c<cam>_<frame>``).
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mmreid_clip.apis import encode_images  # noqa: E402
from mmreid_clip.apis.cli import add_model_args, load_model  # noqa: E402
from mmreid_clip.datasets.transforms import \
    resolve_clothes_labels  # noqa: E402

NAME = re.compile(r'^(\d+)_(\d+)_c(\d+)_\d+\.(png|jpg|jpeg)$', re.I)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_model_args(parser)
    parser.add_argument('--split', default='test', help='image folder')
    parser.add_argument(
        '--data-root',
        help='dataset folder (or its parent; default: the config\'s test '
        'data_root)')
    parser.add_argument('--max-images', type=int, default=240)
    parser.add_argument('--clothes-labels', default='lip')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--json', help='also write the numbers here')
    return parser.parse_args(argv)


def load_views(root: str, split: str, max_images: int,
               clothes_labels) -> Dict[str, object]:
    """Images, their background-only and shielding views, and labels."""
    import cv2
    files = sorted(
        f for f in glob.glob(osp.join(root, split, '*'))
        if NAME.match(osp.basename(f)))
    if not files:
        raise FileNotFoundError(
            f'no <pid>_<clothes>_c<cam>_<frame> images in '
            f'{osp.join(root, split)}')
    step = max(1, len(files) // max_images) if max_images else 1
    files = files[::step][:max_images or None]
    clothes = np.asarray(resolve_clothes_labels(clothes_labels))
    views = {'image': [], 'background': [], 'shielded': []}
    labels = []
    for path in files:
        mask_path = osp.join(root, f'{split}-mask',
                             osp.splitext(osp.basename(path))[0] + '.png')
        if not osp.isfile(mask_path):
            raise FileNotFoundError(f'parsing mask {mask_path} of {path} '
                                    'is missing')
        img = cv2.imread(path)
        mask = cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE)
        if img is None or mask is None or mask.shape != img.shape[:2]:
            raise ValueError(f'{path} / {mask_path}: unreadable or of '
                             'different sizes')
        views['image'].append(img)
        bg = img.copy()
        bg[mask > 0] = 0
        views['background'].append(bg)
        shield = img.copy()
        shield[np.isin(mask, clothes)] = 0
        views['shielded'].append(shield)
        pid, outfit, cam = NAME.match(osp.basename(path)).groups()[:3]
        labels.append((int(pid), int(outfit), int(cam)))
    lab = torch.tensor(labels)
    return dict(
        views=views,
        pid=lab[:, 0],
        clothes=lab[:, 0] * 1000 + lab[:, 1],
        cam=lab[:, 2],
        files=files)


def nn_same_pid(feats: torch.Tensor, pid: torch.Tensor, cam: torch.Tensor,
                clothes: Optional[torch.Tensor] = None) -> Dict[str, float]:
    """How often the nearest other-camera (other-clothes) image is the
    same person, and the chance rate of that."""
    sim = feats @ feats.t()
    banned = cam[:, None] == cam[None, :]
    if clothes is not None:
        banned |= clothes[:, None] == clothes[None, :]
    sim.masked_fill_(banned, float('-inf'))
    same = ((pid[:, None] == pid[None, :]) & ~banned).sum(1)
    # as the metric's valid queries: only images with a possible match
    has = same > 0
    if not bool(has.any()):
        raise ValueError('no image has a same-person candidate under this '
                         'rule')
    hit = (pid[sim.argmax(1)] == pid)[has].float().mean()
    chance = (same[has] / (~banned).sum(1)[has]).float().mean()
    return dict(rate=float(hit), chance=float(chance))


def probe(model, data: dict, batch_size: int = 64) -> Dict[str, float]:
    """The numbers of the module doc for :func:`load_views` data."""
    feats = {
        k: F.normalize(
            torch.as_tensor(
                np.asarray(encode_images(model, v, batch_size=batch_size)))
            .float(),
            dim=1)
        for k, v in data['views'].items()
    }
    img = feats['image']
    n = len(img)
    gram = img @ img.t()
    out = dict(
        num_images=n,
        mean_cos_between_images=float(
            gram[~torch.eye(n, dtype=torch.bool)].mean()))
    mu = img.mean(0)
    centred = {k: F.normalize(v - mu, dim=1) for k, v in feats.items()}
    for view in ('background', 'shielded'):
        out[f'centred_cos_{view}'] = float(
            (centred['image'] * centred[view]).sum(1).mean())
    for name, f in (('', img), ('background_only_', feats['background'])):
        cc = nn_same_pid(f, data['pid'], data['cam'])
        out[f'{name}cross_camera_nn_same_pid'] = cc['rate']
        out[f'{name}cross_camera_nn_chance'] = cc['chance']
        cc = nn_same_pid(f, data['pid'], data['cam'], data['clothes'])
        out[f'{name}cloth_changing_nn_same_pid'] = cc['rate']
        out[f'{name}cloth_changing_nn_chance'] = cc['chance']
    out.update(prompt_separation(model))
    return out


@torch.no_grad()
def prompt_separation(model) -> Dict[str, float]:
    """Mean off-diagonal cosine of the identity (and clothes) prompts'
    text features; empty for models without prompts."""
    out = {}

    def offdiag(t: torch.Tensor) -> float:
        t = F.normalize(t.float(), dim=1)
        g = t @ t.t()
        return float(g[~torch.eye(len(g), dtype=torch.bool)].mean())

    if getattr(model, 'id_prompt', None) is not None:
        out['prompt_cos_identity'] = offdiag(
            model.id_prompt(model.text_encoder, chunk_size=64))
    if getattr(model, 'cfm', None) is not None:
        out['prompt_cos_clothes'] = offdiag(
            model.cfm.clothes_features(model.text_encoder))
    return out


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    model = load_model(args)
    model.eval()
    # load_model pointed the config's loaders at --data-root
    root = model.cfg.test_dataloader.dataset.data_root
    data = load_views(root, args.split, args.max_images, args.clothes_labels)
    out = probe(model, data, args.batch_size)
    width = max(len(k) for k in out)
    for key, value in out.items():
        print(f'{key:<{width}}  {value:.3f}' if isinstance(value, float) else
              f'{key:<{width}}  {value}')
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == '__main__':
    main()
