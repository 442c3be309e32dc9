"""Acceptance probes of a cloth-changing ReID dataset with LIP masks in the
LTCC layout (SynthCC v2's, also usable on v1 and on LTCC with masks):
what hand-crafted features of the pixels, the background, the clothes and
the identity cues can retrieve, under the benchmark's own protocol.

    python tools/analysis/synth_cc_probe.py data/synth-cc-v2/LTCC_ReID \\
        [--patch 8] [--chance-draws 50] [--json out.json]

Every number is computed from the files (images, masks, names) as the
``LTCC`` class reads them (``with_mask=True``), no generator attribute is
used. Retrieval numbers are ``ReIDMetric`` with the LTCC preset (general:
same person and camera removed; cloth-changing: also same person and
clothes removed; all queries, those without a positive skipped), in
percent, on the features below (cosine of L2-normalised features, as for a
model; each feature is centred on the mean over the evaluated images
first). "Person mask" = label > 0; "clothes" = the LIP clothes set that
CCAF's ``ShieldClothes`` blanks by default (``'lip'``: 1, 3-12).

Features:

* ``raw-pixel``: the image area-downsampled to 16 x 8, RGB (384 values);
* ``background (hist)``: a 4 x 4 x 4 joint RGB histogram (square-rooted)
  of the background pixels, i.e. outside the person mask dilated by one
  pixel (edge pixels mix person and background);
* ``background (grid)``: the mean RGB of those pixels in each cell of an
  8 x 4 grid (a cell without any: the image's background mean);
* ``clothes-only``: 6 x 6 x 6 joint RGB histograms (square-rooted) of the
  clothes pixels of the upper body (labels 1, 3-7, 10, 11; its top and
  bottom halves apart) and of the lower body (8, 9, 12), concatenated;
* ``identity-cue-only``: read through the masks, never from clothes
  pixels: median RGB of the face (13), of bare arms and legs (14-17; the
  face's when fewer than 6 pixels), of the hair (2; the face's when
  bald) and of the shoes (18, 19); the head's height (2, 13) over the
  person's, the hair's share of the head and the hair's length over the
  person's height. Each value is standardised over the evaluated images,
  the three shape values weighted 0.5.

Numbers (criteria of SynthCC v2 in brackets, checked with ``--check``):

* framing: person pixels [>= 45%], person pixels left in the shielding
  view, i.e. person and not clothes [>= 15%], images with the hair
  visible (>= 16 pixels) [>= 80%], head height in pixels, and the mean
  number of whole ``patch x patch`` patches (and of 16 x 16 ones) that
  are at least half identity-cue pixels (person, not clothes);
* cameras: of the queries' raw-pixel (background) top-1 among the other
  people's gallery images, the share from the query's own camera, and the
  same with every test image as a query against all the others (three
  times the queries: about 1.3 points of noise instead of 2.3) [raw-pixel,
  every image: <= its chance + 5, chance being about 1 / number of
  cameras: the camera does not draw the top-1]; and a nearest-class-mean
  camera classifier on the mean colour of the top 20% of rows
  (leave-one-out over the test images);
* retrieval on the test split of every feature, with chance: the exact
  expected R@1 of a random ranking, and the standard deviation of R@1 and
  the mean mAP over ``--chance-draws`` random-feature rankings
  [background: R@1 <= chance + 2 in both modes;
  clothes-only: general R@1 >= 80, cloth-changing R@1 <= chance + 3;
  identity-cue-only: cloth-changing R@1 >= 80];
* the clothes shortcut of the train split: outfits per identity
  [3-4], the mean share of an identity's images per outfit (largest
  first) [about 60 / 25 / 15], and the clothes-only R@1 of every train
  image against the other train images (general rule) [>= 90: outfits
  identify their wearer].
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch

sys.path.insert(0,
                osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmreid_clip.datasets import LTCC  # noqa: E402
from mmreid_clip.datasets.transforms import \
    resolve_clothes_labels  # noqa: E402
from mmreid_clip.evaluation.functional import (  # noqa: E402
    rank_queries, summarize)
from mmreid_clip.evaluation.metrics import ReIDMetric  # noqa: E402

CLOTHES = resolve_clothes_labels('lip')
UPPER = (1, 3, 4, 5, 6, 7, 10, 11)
LOWER = (8, 9, 12)
FEATURES = ('raw-pixel', 'background (hist)', 'background (grid)',
            'clothes-only', 'identity-cue-only')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data_root', help='the LTCC_ReID folder')
    parser.add_argument(
        '--patch', type=int, default=8, help='patch size of the model')
    parser.add_argument(
        '--chance-draws',
        type=int,
        default=50,
        help='random rankings averaged for the chance mAP')
    parser.add_argument('--json', help='also write the numbers here')
    parser.add_argument(
        '--check',
        action='store_true',
        help='exit with status 1 when a SynthCC v2 criterion fails')
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------
# reading


def load_split(data_root: str, split: str) -> Dict[str, object]:
    """Images, masks and labels of a split, read by the LTCC class."""
    ds = LTCC(data_root=data_root, split=split, with_mask=True)
    items = [ds.get_data_info(i) for i in range(len(ds))]
    images, masks = [], []
    for it in items:
        img = cv2.imread(it['img_path'], cv2.IMREAD_COLOR)
        mask = cv2.imread(it['mask_path'], cv2.IMREAD_GRAYSCALE)
        if img is None or mask is None or mask.shape != img.shape[:2]:
            raise ValueError(f'{it["img_path"]} / {it["mask_path"]}: '
                             'unreadable or of different sizes')
        images.append(np.ascontiguousarray(img[:, :, ::-1]))  # RGB
        masks.append(mask)
    return dict(
        images=images,
        masks=masks,
        pid=np.array([it['pid'] for it in items], np.int64),
        camid=np.array([it['camid'] for it in items], np.int64),
        clothes_id=np.array([it['clothes_id'] for it in items], np.int64),
        subset=np.array([it.get('subset', split) for it in items]))


# ---------------------------------------------------------------------------
# features


def _hist(pixels: np.ndarray, bins: int) -> np.ndarray:
    """Square-rooted, L1-normalised joint RGB histogram (zeros if empty)."""
    out = np.zeros(bins**3)
    if len(pixels):
        q = np.minimum(pixels.astype(np.int64) * bins // 256, bins - 1)
        idx = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
        out = np.bincount(idx, minlength=bins**3) / len(pixels)
    return np.sqrt(out)


def _median(pixels: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    if len(pixels) < 6:
        return fallback
    return np.median(pixels, axis=0) / 255.0


def background_pixels(mask: np.ndarray) -> np.ndarray:
    """Pixels outside the person mask dilated by one pixel."""
    person = cv2.dilate((mask > 0).astype(np.uint8), np.ones((3, 3), np.uint8))
    return person == 0


def raw_feature(img: np.ndarray) -> np.ndarray:
    return cv2.resize(
        img, (8, 16), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()


def background_features(img: np.ndarray, mask: np.ndarray) -> tuple:
    bg = background_pixels(mask)
    pix = img[bg]
    mean = pix.mean(0) if len(pix) else np.zeros(3)
    h, w = mask.shape
    cells = []
    for r in range(8):
        for c in range(4):
            sl = (slice(r * h // 8,
                        (r + 1) * h // 8), slice(c * w // 4, (c + 1) * w // 4))
            m = bg[sl]
            cells.append(img[sl][m].mean(0) if m.any() else mean)
    return _hist(pix, 4), np.concatenate(cells)


def clothes_feature(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Colour histograms of the upper clothes' top and bottom halves and
    of the lower clothes."""
    upper = np.isin(mask, UPPER)
    rows = np.flatnonzero(upper.any(1))
    mid = (rows[0] + rows[-1] + 1) // 2 if len(rows) else 0
    top = upper.copy()
    top[mid:] = False
    return np.concatenate([
        _hist(img[top], 6),
        _hist(img[upper & ~top], 6),
        _hist(img[np.isin(mask, LOWER)], 6)
    ])


def cue_feature(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Identity cues read through the mask (no clothes pixel)."""
    face = _median(img[mask == 13], np.full(3, 0.5))
    skin = _median(img[np.isin(mask, (14, 15, 16, 17))], face)
    hair = _median(img[mask == 2], face)
    shoes = _median(img[np.isin(mask, (18, 19))], np.full(3, 0.5))
    rows = np.flatnonzero((mask > 0).any(1))
    height = float(rows[-1] - rows[0] + 1) if len(rows) else 1.0
    head_rows = np.flatnonzero(np.isin(mask, (2, 13)).any(1))
    hair_rows = np.flatnonzero((mask == 2).any(1))
    top = rows[0] if len(rows) else 0
    n_hair, n_face = (mask == 2).sum(), (mask == 13).sum()
    shape = [
        (head_rows[-1] - head_rows[0] + 1) / height if len(head_rows) else 0,
        n_hair / max(1, n_hair + n_face),
        (hair_rows[-1] + 1 - top) / height if len(hair_rows) else 0,
    ]
    return np.concatenate([face, skin, hair, shoes, shape])


#: Weight of each identity-cue value after standardisation.
CUE_WEIGHTS = np.array([1.0] * 12 + [0.5] * 3)


def compute_features(data: dict) -> Dict[str, np.ndarray]:
    """Every feature of :data:`FEATURES`, ``N x D`` each, centred."""
    feats = {k: [] for k in FEATURES}
    for img, mask in zip(data['images'], data['masks']):
        feats['raw-pixel'].append(raw_feature(img))
        hist, grid = background_features(img, mask)
        feats['background (hist)'].append(hist)
        feats['background (grid)'].append(grid)
        feats['clothes-only'].append(clothes_feature(img, mask))
        feats['identity-cue-only'].append(cue_feature(img, mask))
    out = {}
    for k, v in feats.items():
        x = np.asarray(v, np.float64)
        x = x - x.mean(0)
        if k == 'identity-cue-only':
            x = x / (x.std(0) + 1e-6) * CUE_WEIGHTS
        out[k] = x
    return out


# ---------------------------------------------------------------------------
# evaluation


def reid_metric(feats: np.ndarray,
                data: dict,
                subsets: Optional[np.ndarray] = None) -> Dict[str, float]:
    """``ReIDMetric`` (LTCC preset) of ``feats``: general and cc R@1 /
    mAP."""
    metric = ReIDMetric(settings='ltcc', topk=(1, ))
    subsets = data['subset'] if subsets is None else subsets
    metric.process(None, [
        dict(
            img_feat=torch.from_numpy(f).float(),
            pid=int(p),
            camid=int(c),
            clothes_id=int(o),
            subset=str(s)) for f, p, c, o, s in zip(
                feats, data['pid'], data['camid'], data['clothes_id'], subsets)
    ])
    return metric.compute_metrics(metric.results)


def chance(data: dict, draws: int, seed: int = 0) -> Dict[str, float]:
    """Chance levels: the exact expected R@1 of a random ranking
    (positives / non-junk gallery items, averaged over the valid
    queries), the standard deviation of R@1 and the mean mAP over
    ``draws`` random-feature rankings."""
    q = data['subset'] == 'query'
    g = data['subset'] == 'gallery'
    out = {}
    for mode, key in (('general', 'general'), ('cloth-changing', 'cc')):
        same_pid = data['pid'][q][:, None] == data['pid'][g][None, :]
        junk = same_pid & (
            data['camid'][q][:, None] == data['camid'][g][None, :])
        if mode == 'cloth-changing':
            junk |= same_pid & (
                data['clothes_id'][q][:, None]
                == data['clothes_id'][g][None, :])
        pos = (same_pid & ~junk).sum(1)
        valid = pos > 0
        out[f'{key}/R@1'] = float(100 * (pos[valid] /
                                         (~junk).sum(1)[valid]).mean())
    rng = np.random.default_rng(seed)
    draws_ = {
        f'{k}/{m}': []
        for k in ('general', 'cc')
        for m in ('R@1', 'mAP')
    }
    for _ in range(draws):
        m = reid_metric(rng.standard_normal((len(data['pid']), 32)), data)
        for key in draws_:
            draws_[key].append(m[key])
    for key, v in draws_.items():
        if key.endswith('mAP'):
            out[key] = float(np.mean(v)) if v else float('nan')
        else:  # how far a feature without information strays from chance
            out[f'{key}_std'] = float(np.std(v)) if v else float('nan')
    return out


def camera_top1(feats: np.ndarray,
                data: dict,
                every_image: bool = False) -> Dict[str, float]:
    """Share of queries whose top-1 among the other people's gallery
    images is from the query's camera (``rank_queries`` with cameras as
    labels, same-person items as junk), and its chance. With
    ``every_image``, every image of the split is a query against all the
    others (three times the queries: a tighter estimate)."""
    q = data['subset'] == 'query'
    g = data['subset'] == 'gallery'
    if every_image:
        q = g = np.ones_like(q)
    qf = torch.nn.functional.normalize(torch.from_numpy(feats[q]).float())
    gf = torch.nn.functional.normalize(torch.from_numpy(feats[g]).float())
    qp, gp = torch.from_numpy(data['pid'][q]), torch.from_numpy(data['pid'][g])
    qc, gc = data['camid'][q], data['camid'][g]
    ranks = rank_queries(
        qf,
        gf,
        torch.from_numpy(qc),
        torch.from_numpy(gc),
        junk_fn=lambda rows: qp[rows, None] == gp[None, :])
    rate = summarize(ranks, (1, ))['R@1']
    other = data['pid'][q][:, None] != data['pid'][g][None, :]
    same_cam = qc[:, None] == gc[None, :]
    base = 100 * ((other & same_cam).sum(1) / other.sum(1)).mean()
    return dict(rate=float(rate), chance=float(base))


def camera_from_top_rows(data: dict) -> Dict[str, float]:
    """Leave-one-out nearest-class-mean camera classifier on the mean
    colour of the top 20% of rows, over every image of the split."""
    x = np.array([
        img[:max(1, img.shape[0] // 5)].reshape(-1, 3).mean(0)
        for img in data['images']
    ])
    cams = data['camid']
    labels = np.unique(cams)
    sums = np.array([x[cams == c].sum(0) for c in labels])
    counts = np.array([(cams == c).sum() for c in labels])
    hits = 0
    for i in range(len(x)):
        k = np.searchsorted(labels, cams[i])
        s, n = sums.copy(), counts.copy().astype(np.float64)
        s[k] -= x[i]
        n[k] -= 1
        means = s / np.maximum(n, 1)[:, None]
        hits += labels[np.argmin(((means - x[i])**2).sum(1))] == cams[i]
    return dict(
        rate=float(100 * hits / len(x)),
        chance=float(100 * counts.max() / counts.sum()))


def framing(data: dict, patch: int) -> Dict[str, float]:
    """Person and identity-cue pixels, hair visibility, head size and the
    whole patches of identity cues."""
    person, kept, hair, head, cue_p, cue_16 = [], [], [], [], [], []
    for mask in data['masks']:
        p = mask > 0
        cue = p & ~np.isin(mask, CLOTHES)
        person.append(p.mean())
        kept.append(cue.mean())
        hair.append((mask == 2).sum() >= 16)
        rows = np.flatnonzero(np.isin(mask, (1, 2, 13)).any(1))
        head.append(rows[-1] - rows[0] + 1 if len(rows) else 0)
        for size, out in ((patch, cue_p), (16, cue_16)):
            h, w = (mask.shape[0] // size) * size, (mask.shape[1] //
                                                    size) * size
            blocks = cue[:h, :w].reshape(h // size, size, w // size,
                                         size).mean((1, 3))
            out.append((blocks >= 0.5).sum())
    return {
        'person_pct': 100 * float(np.mean(person)),
        'shield_person_pct': 100 * float(np.mean(kept)),
        'hair_visible_pct': 100 * float(np.mean(hair)),
        'head_height_px': float(np.mean(head)),
        'cue_patches': float(np.mean(cue_p)),
        'cue_patches_16': float(np.mean(cue_16)),
    }


def shortcut(train: dict) -> Dict[str, object]:
    """Outfits per training identity, image shares per outfit and the
    clothes-only R@1 of train images against each other."""
    per_id: Dict[int, List[int]] = {}
    for pid in np.unique(train['pid']):
        c = train['clothes_id'][train['pid'] == pid]
        per_id[int(pid)] = sorted(
            np.bincount(c)[np.unique(c)].tolist(), reverse=True)
    n_outfits = [len(v) for v in per_id.values()]
    shares = {}
    for n in sorted(set(n_outfits)):
        rows = np.array(
            [np.array(v) / sum(v) for v in per_id.values() if len(v) == n])
        shares[str(n)] = [round(100 * s, 1) for s in rows.mean(0)]
    # every train image as a query against the other train images
    n = len(train['pid'])
    both = {
        k: np.concatenate([v, v]) if isinstance(v, np.ndarray) else v + v
        for k, v in train.items() if k in ('pid', 'camid', 'clothes_id')
    }
    subsets = np.array(['query'] * n + ['gallery'] * n)
    feats = np.array([
        clothes_feature(img, mask)
        for img, mask in zip(train['images'], train['masks'])
    ])
    feats = feats - feats.mean(0)
    m = reid_metric(np.concatenate([feats, feats]), both, subsets)
    return dict(
        outfits_per_id={
            str(k): n_outfits.count(k)
            for k in sorted(set(n_outfits))
        },
        share_by_rank=shares,
        train_clothes_r1=m['general/R@1'])


def probe(data_root: str,
          patch: int = 8,
          chance_draws: int = 50) -> Dict[str, object]:
    """Every number of the module doc."""
    test = load_split(data_root, 'test')
    train = load_split(data_root, 'train')
    feats = compute_features(test)
    out: Dict[str, object] = dict(
        num_query=int((test['subset'] == 'query').sum()),
        num_gallery=int((test['subset'] == 'gallery').sum()),
        num_train=len(train['pid']),
        num_cameras=int(len(np.unique(test['camid']))),
        patch=patch)
    out['framing'] = framing(test, patch)
    out['chance'] = chance(test, chance_draws)
    out['retrieval'] = {k: reid_metric(v, test) for k, v in feats.items()}
    out['camera'] = {
        'raw-pixel top-1':
        camera_top1(feats['raw-pixel'], test),
        'raw-pixel top-1, every image':
        camera_top1(feats['raw-pixel'], test, every_image=True),
        'background (hist) top-1':
        camera_top1(feats['background (hist)'], test),
        'top-rows colour classifier':
        camera_from_top_rows(test),
    }
    out['shortcut'] = shortcut(train)
    out['criteria'] = criteria(out)
    return out


def criteria(out: dict) -> List[dict]:
    """SynthCC v2's acceptance criteria on :func:`probe`'s numbers."""
    fr, ch, rt = out['framing'], out['chance'], out['retrieval']
    cam = out['camera']['raw-pixel top-1, every image']
    sc = out['shortcut']
    rows = [
        ('person pixels >= 45%', fr['person_pct'], fr['person_pct'] >= 45),
        ('shielding view keeps >= 15% person pixels', fr['shield_person_pct'],
         fr['shield_person_pct'] >= 15),
        ('hair visible in >= 80% of images', fr['hair_visible_pct'],
         fr['hair_visible_pct'] >= 80),
    ]
    for k in ('background (hist)', 'background (grid)'):
        for mode in ('general', 'cc'):
            v = rt[k][f'{mode}/R@1']
            rows.append((f'{k} {mode} R@1 <= chance + 2 '
                         f'({ch[f"{mode}/R@1"]:.1f} + 2)', v, v
                         <= ch[f'{mode}/R@1'] + 2))
    rows += [
        (f'raw-pixel top-1 (every image) from its camera <= chance + 5 '
         f'({cam["chance"]:.1f} + 5)', cam['rate'], cam['rate']
         <= cam['chance'] + 5),
        ('clothes-only general R@1 >= 80', rt['clothes-only']['general/R@1'],
         rt['clothes-only']['general/R@1'] >= 80),
        (f'clothes-only cc R@1 <= chance + 3 ({ch["cc/R@1"]:.1f} + 3)',
         rt['clothes-only']['cc/R@1'], rt['clothes-only']['cc/R@1']
         <= ch['cc/R@1'] + 3),
        ('identity-cue-only cc R@1 >= 80', rt['identity-cue-only']['cc/R@1'],
         rt['identity-cue-only']['cc/R@1'] >= 80),
        ('train: 3-4 outfits per identity',
         min(int(k) for k in sc['outfits_per_id']), set(sc['outfits_per_id'])
         <= {'3', '4'}),
        ('train: clothes-only R@1 >= 90 (outfits identify their wearer)',
         sc['train_clothes_r1'], sc['train_clothes_r1'] >= 90),
    ]
    return [dict(name=n, value=float(v), passed=bool(p)) for n, v, p in rows]


def report(out: dict) -> str:
    """The numbers as text."""
    fr, ch = out['framing'], out['chance']
    lines = [
        f'test: {out["num_query"]} queries, {out["num_gallery"]} gallery '
        f'images, {out["num_cameras"]} cameras; train: {out["num_train"]} '
        'images',
        '',
        'framing',
        f'  person pixels                      {fr["person_pct"]:6.1f} %',
        f'  shielding view: person pixels kept {fr["shield_person_pct"]:6.1f}'
        ' %',
        f'  hair visible (>= 16 px)            {fr["hair_visible_pct"]:6.1f}'
        ' % of images',
        f'  head height                        {fr["head_height_px"]:6.1f} px',
        f'  identity-cue patches per image     {fr["cue_patches"]:6.1f} '
        f'(patch {out["patch"]}; patch 16: {fr["cue_patches_16"]:.1f})'
        if out['patch'] != 16 else
        f'  identity-cue patches per image     {fr["cue_patches"]:6.1f} '
        '(patch 16)',
        '',
        'retrieval (ReIDMetric, LTCC protocol)   general R@1   mAP'
        '   cc R@1    mAP',
        f'  chance (random ranking)              {ch["general/R@1"]:8.1f} '
        f'{ch["general/mAP"]:6.1f} {ch["cc/R@1"]:8.1f} {ch["cc/mAP"]:6.1f}',
        f'    (R@1 std over random rankings)     {ch["general/R@1_std"]:8.1f}'
        f'        {ch["cc/R@1_std"]:8.1f}',
    ]
    for k, m in out['retrieval'].items():
        lines.append(f'  {k:<36} {m["general/R@1"]:8.1f} '
                     f'{m["general/mAP"]:6.1f} {m["cc/R@1"]:8.1f} '
                     f'{m["cc/mAP"]:6.1f}')
    lines += ['', 'cameras                                 rate  chance']
    for k, v in out['camera'].items():
        lines.append(f'  {k:<36} {v["rate"]:6.1f} {v["chance"]:7.1f}')
    sc = out['shortcut']
    lines += [
        '', 'train split (clothes shortcut)',
        '  identities by number of outfits    ' +
        ', '.join(f'{k}: {v}' for k, v in sc['outfits_per_id'].items()),
        '  image share per outfit (mean %)    ' +
        '; '.join(f'{k} outfits: ' + '/'.join(f'{s:.0f}' for s in v)
                  for k, v in sc['share_by_rank'].items()),
        f'  clothes-only R@1, train vs train   {sc["train_clothes_r1"]:6.1f}',
        '', 'criteria (SynthCC v2)'
    ]
    for c in out['criteria']:
        lines.append(f'  [{"pass" if c["passed"] else "FAIL"}] '
                     f'{c["name"]}: {c["value"]:.1f}')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    out = probe(args.data_root, args.patch, args.chance_draws)
    print(report(out))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1)
    if args.check and not all(c['passed'] for c in out['criteria']):
        sys.exit(1)
    return out


if __name__ == '__main__':
    main()
