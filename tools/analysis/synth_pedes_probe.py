"""How much SynthPedes v2's near-duplicate families confuse a matcher that
reads the global appearance only, and how visible their differences are.

    python tools/analysis/synth_pedes_probe.py data/synth-pedes-v2 \\
        [--split test] [--draws 20] [--detail-images 200] [--json out.json]

Every number is text-to-image retrieval with the project's ranking
(:func:`mmreid_clip.evaluation.functional.rank_queries`, CUHK-PEDES
protocol: every caption of the split is a query, every image once in the
gallery, a positive is an image of the caption's identity), unless it says
otherwise:

* **chance**: the R@1 of a random ranking (positives / gallery size).
* **oracle, global only**: reads each caption back
  (:func:`mmreid_synth.pedes_v2_captions.read_caption`) and scores an image
  +1 for every global attribute the caption names and the image shows
  (gender, the top's colours, the lower garment and its colour, hair
  colour), -1 for every contradiction. A perfect reader of the global
  appearance, blind to the details.
* **oracle, detail-aware**: the same plus the backpack and every local
  detail (bag, shoes, headwear, chest mark, eyewear, scarf, watch, hair
  style), an image's *visible* details only.
* **pixels, global colour**: the caption's top and lower-garment colour
  words against the image's median colours in two boxes on the figure
  (CIE Lab distance to the named colour): a crude real matcher of global
  colour.

The oracles' scores are integers with many ties, broken at random
(``--draws`` rankings averaged; equal scores would otherwise be ordered by
gallery index, which puts the lower id first). For each matcher it also
reports the share of the query's *family members* whose best image ranks
above the query's identity (0.5 is a coin flip between near-duplicates),
and the same share over the identities of other families.

Two image-side checks: **image-to-image global colour** retrieval (each
image against all others, same colour boxes): R@1 and whether the top hit
is the identity, a family member or another person; and **detail pixels**:
one member re-rendered in the same frame with a family member's value of
one varying detail (no camera effects), the number of output pixels that
change (max channel difference > 24), per slot.
"""
import argparse
import json
import os.path as osp
import sys
from collections import defaultdict
from typing import Any, Dict, List, Optional

import numpy as np
import torch

sys.path.insert(0,
                osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmreid_clip.evaluation.functional import (  # noqa: E402
    rank_queries, summarize)
from mmreid_synth.pedes_v2_captions import read_caption  # noqa: E402
from mmreid_synth.pedes_v2_people import (  # noqa: E402
    GLOBAL_KEYS,
    sample_family,
    sample_view_v2,
    swap_detail,
    visible_details)
from mmreid_synth.pedes_v2_render import render_view_v2  # noqa: E402
from mmreid_synth.pedestrian import COLOURS  # noqa: E402

DETAIL_KEYS = ('backpack', 'bag', 'shoes', 'headwear', 'mark', 'eyewear',
               'scarf', 'watch', 'hair')
#: Pixels that change by more than this (max over channels, 0-255) count
#: as showing a detail.
DIFF_THRESHOLD = 24


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='a SynthPedes v2 dataset folder')
    parser.add_argument('--split', default='test')
    parser.add_argument(
        '--draws',
        type=int,
        default=20,
        help='random tie-breaks averaged for the oracles')
    parser.add_argument(
        '--detail-images',
        type=int,
        default=200,
        help='images re-rendered for the detail-pixel check (0: skip)')
    parser.add_argument('--seed', type=int, default=0, help='tie-breaks')
    parser.add_argument('--json', help='also write the numbers here')
    return parser.parse_args(argv)


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def load_split(root: str, split: str) -> Dict[str, Any]:
    """Queries (captions) and gallery (images) of one split, with what
    each caption says and what each image shows."""
    with open(osp.join(root, 'reid_raw.json'), encoding='utf-8') as f:
        entries = [e for e in json.load(f) if e['split'] == split]
    with open(osp.join(root, 'synth_attributes.json'), encoding='utf-8') as f:
        attrs = json.load(f)
    if not str(attrs.get('generator_version', '')).startswith('2.'):
        raise ValueError(f'{root} is not a SynthPedes v2 dataset '
                         f'(generator {attrs.get("generator_version")})')
    images = {r['file_path']: r for r in attrs['images']}
    family_of = {
        int(pid): int(fid)
        for fid, fam in attrs['families'].items()
        for pid in fam['pids']
    }
    gallery = [images[e['file_path']] for e in entries]
    queries = [(c, e['id']) for e in entries for c in e['captions']]
    return dict(
        attrs=attrs,
        gallery=gallery,
        gallery_pids=np.array([g['id'] for g in gallery]),
        query_pids=np.array([pid for _, pid in queries]),
        captions=[c for c, _ in queries],
        family_of=family_of)


# ---------------------------------------------------------------------------
# oracle scores


def oracle_scores(said: List[Dict[str, Any]], shown: List[Dict[str, Any]],
                  keys: List[str]) -> np.ndarray:
    """``Q x G`` integer scores: +1 per named and shown attribute that
    agrees, -1 per one that does not (vectorised per key)."""
    q, g = len(said), len(shown)
    score = np.zeros((q, g), np.int32)
    for key in keys:
        if key == 'upper':
            colours = sorted({c
                              for s in said
                              for c in s.get(key, ())}
                             | {c
                                for s in shown
                                for c in s[key]})
            bit = {c: 1 << i for i, c in enumerate(colours)}
            cq = np.array([sum(bit[c] for c in s.get(key, ())) for s in said],
                          np.int64)
            gq = np.array([sum(bit[c] for c in s[key]) for s in shown],
                          np.int64)
            named = (cq > 0)[:, None]
            agree = (cq[:, None] & ~gq[None, :]) == 0
            score += np.where(named, np.where(agree, 1, -1), 0)
            continue
        # value ids: 0 = visibly absent (None), -1 = not named / not shown
        vocab: Dict[Any, int] = {None: 0}

        def vid(v: Any) -> int:
            return vocab.setdefault(_key(v), len(vocab))

        cq = np.array([vid(s[key]) if key in s else -1 for s in said])
        gq = np.array([vid(s[key]) if key in s else -1 for s in shown])
        both = (cq[:, None] > 0) & (gq[None, :] >= 0)
        if key == 'hair_colour':  # bald / hidden hair has no colour
            both &= gq[None, :] > 0
        agree = cq[:, None] == gq[None, :]
        if key == 'backpack':
            # "a backpack" (front view, colour unseen): any backpack
            yes = np.array([s.get(key) == 'yes' for s in said])[:, None]
            agree |= yes & (gq[None, :] > 0)
        score += np.where(both, np.where(agree, 1, -1), 0)
    return score


def family_confusion(scores: np.ndarray, data: Dict[str, Any]) -> tuple:
    """Mean share of the query's family members (and of other families'
    identities) whose best image scores above the identity's best."""
    qp, gp, fam = data['query_pids'], data['gallery_pids'], data['family_of']
    pids = np.unique(gp)
    col = {p: np.flatnonzero(gp == p) for p in pids}
    best = np.stack([scores[:, col[p]].max(1) for p in pids], 1)  # Q x P
    index = {p: i for i, p in enumerate(pids)}
    true_best = best[np.arange(len(qp)), [index[p] for p in qp]]
    above = best > true_best[:, None]
    pfam = np.array([fam[int(p)] for p in pids])
    qfam = np.array([fam[int(p)] for p in qp])
    same = (pfam[None, :] == qfam[:, None]) & (pids[None, :] != qp[:, None])
    other = pfam[None, :] != qfam[:, None]
    sib = [above[i, same[i]].mean() for i in range(len(qp)) if same[i].any()]
    non = [above[i, other[i]].mean() for i in range(len(qp))]
    return float(np.mean(sib)), float(np.mean(non))


def rank_summary(scores: np.ndarray, data: Dict[str, Any], draws: int,
                 seed: int, jitter: float) -> Dict[str, float]:
    """R@1/5/10, mAP and the family shares of a score matrix, averaged
    over ``draws`` random tie-breaks (noise below ``jitter``)."""
    rng = np.random.default_rng(seed)
    acc: Dict[str, List[float]] = defaultdict(list)
    for _ in range(max(1, draws)):
        s = scores + rng.uniform(0, jitter, scores.shape)
        ranks = rank_queries(
            scores=torch.from_numpy(s),
            query_labels=torch.from_numpy(data['query_pids']),
            gallery_labels=torch.from_numpy(data['gallery_pids']))
        summary = summarize(ranks, (1, 5, 10))
        for k in ('R@1', 'R@5', 'R@10', 'mAP'):
            acc[k].append(summary[k])
        sib, non = family_confusion(s, data)
        acc['family_above'].append(100.0 * sib)
        acc['others_above'].append(100.0 * non)
    return {k: float(np.mean(v)) for k, v in acc.items()}


# ---------------------------------------------------------------------------
# pixels


def _lab(rgb: np.ndarray) -> np.ndarray:
    """``N x 3`` RGB (0-255) -> CIE Lab."""
    import cv2
    x = np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(x, cv2.COLOR_RGB2LAB).reshape(-1, 3)


#: Boxes (figure-height fractions: y0, y1, half-width) of the top and of
#: the lower garment.
BOXES = dict(upper=(0.22, 0.40, 0.05), lower=(0.58, 0.70, 0.06))


def image_colours(root: str, gallery: List[dict]) -> np.ndarray:
    """``G x 2 x 3`` median RGB of each image's upper / lower box."""
    from PIL import Image
    out = np.zeros((len(gallery), 2, 3), np.float32)
    for i, rec in enumerate(gallery):
        with Image.open(osp.join(root, 'imgs', rec['file_path'])) as im:
            img = np.asarray(im.convert('RGB'), np.float32)
        h, w = img.shape[:2]
        fig = rec['figure']
        for j, (y0, y1, hw) in enumerate(BOXES.values()):
            ya = int(np.clip(round(fig['top'] + y0 * fig['py']), 0, h - 1))
            yb = int(np.clip(round(fig['top'] + y1 * fig['py']), ya + 1, h))
            xa = int(np.clip(round(fig['cx'] - hw * fig['px']), 0, w - 1))
            xb = int(np.clip(round(fig['cx'] + hw * fig['px']), xa + 1, w))
            out[i, j] = np.median(img[ya:yb, xa:xb].reshape(-1, 3), 0)
    return out


def _lab_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lab distance with lightness at half weight (exposure varies more
    than hue across the cameras)."""
    d = a - b
    return np.sqrt(0.25 * d[..., 0]**2 + d[..., 1]**2 + d[..., 2]**2)


def pixel_text_scores(said: List[Dict[str, Any]],
                      colours: np.ndarray) -> np.ndarray:
    """``Q x G``: minus the distance between the named top / lower colours
    and the measured ones."""
    names = list(COLOURS)
    proto = _lab(np.array([COLOURS[n] for n in names], np.float32))
    measured = _lab(colours.reshape(-1, 3)).reshape(-1, 2, 3)
    # distance of every measured box to every named colour: G x 2 x C
    dist = _lab_dist(measured[:, :, None, :], proto[None, None, :, :])
    index = {n: i for i, n in enumerate(names)}
    scores = np.zeros((len(said), len(colours)), np.float64)
    for q, s in enumerate(said):
        up = [index[c] for c in s.get('upper', ())]
        if up:
            scores[q] -= dist[:, 0, up].min(1)
        lower = s.get('lower')
        if lower and lower[1] in index:
            scores[q] -= dist[:, 1, index[lower[1]]]
        elif up and 'lower' not in s:
            scores[q] -= dist[:, 1, up].min(1)  # a dress
    return scores


def image_to_image(colours: np.ndarray, data: Dict[str, Any]) -> dict:
    """Each image against all other images by its two box colours."""
    lab = _lab(colours.reshape(-1, 3)).reshape(-1, 2, 3)
    d = _lab_dist(lab[:, None], lab[None]).sum(-1)
    gp = data['gallery_pids']
    n = len(gp)
    eye = torch.eye(n, dtype=torch.bool)
    ranks = rank_queries(
        scores=torch.from_numpy(-d),
        query_labels=torch.from_numpy(gp),
        gallery_labels=torch.from_numpy(gp),
        junk_fn=lambda rows: eye[rows])
    summary = summarize(ranks, (1, ))
    d[np.arange(n), np.arange(n)] = np.inf
    top = d.argmin(1)
    fam = np.array([data['family_of'][int(p)] for p in gp])
    same_id = gp[top] == gp
    same_fam = (fam[top] == fam) & ~same_id
    return {
        'R@1':
        summary['R@1'],
        'top1_identity':
        100.0 * float(same_id.mean()),
        'top1_family_member':
        100.0 * float(same_fam.mean()),
        'top1_other':
        100.0 * float((~same_id & ~same_fam).mean()),
        'chance_identity':
        100.0 * float(np.mean([(gp == p).sum() - 1 for p in gp]) / (n - 1)),
        'chance_family_member':
        100.0 * float(
            np.mean([((fam == f) & (gp != p)).sum()
                     for p, f in zip(gp, fam)]) / (n - 1)),
    }


def detail_pixels(data: Dict[str, Any], limit: int) -> Dict[str, dict]:
    """Output pixels that change when one varying detail takes a family
    member's value, per slot (first ``limit`` gallery images)."""
    attrs = data['attrs']
    seed = attrs['seed']
    people = {}
    for fam in attrs['families'].values():
        pids = fam['pids']
        for person in sample_family(seed, range(pids[0], pids[-1] + 1)):
            people[person.pid] = person
    areas: Dict[str, List[int]] = defaultdict(list)
    for rec in data['gallery'][:limit]:
        person = people[rec['id']]
        fam = attrs['families'][str(person.family)]['pids']
        other = people[fam[(fam.index(person.pid) + 1) % len(fam)]]
        view = sample_view_v2(seed, person, rec['view']['index'])
        assert view.to_dict() == rec['view'], 'dataset and code disagree'
        img_size = tuple(attrs['img_size'])
        a = render_view_v2(person, view, img_size, seed, effects=False)
        for slot in person.varying:
            swapped = swap_detail(person, other, slot)
            if (slot not in visible_details(person, view)
                    and slot not in visible_details(swapped, view)):
                continue  # neither value shows in this view
            b = render_view_v2(swapped, view, img_size, seed, effects=False)
            diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(-1)
            areas[slot].append(int((diff > DIFF_THRESHOLD).sum()))
    out = {}
    for slot, values in sorted(areas.items()):
        v = np.asarray(values)
        out[slot] = dict(
            n=len(v),
            median_px=float(np.median(v)),
            p10_px=float(np.percentile(v, 10)),
            share_zero=100.0 * float((v == 0).mean()))
    return out


# ---------------------------------------------------------------------------


def probe(root: str,
          split: str = 'test',
          draws: int = 20,
          detail_images: int = 200,
          seed: int = 0) -> Dict[str, Any]:
    """Run every check; returns the numbers (percent where a share)."""
    data = load_split(root, split)
    with open(osp.join(root, 'synth_manifest.json'), encoding='utf-8') as f:
        params = json.load(f)['params']
    data['attrs']['img_size'] = params['img_size']
    said = [read_caption(c) for c in data['captions']]
    shown = [{
        k: _key(v)
        for k, v in g['facts'].items()
    } for g in data['gallery']]
    gp, qp = data['gallery_pids'], data['query_pids']
    fam = data['family_of']
    sizes = [
        sum(fam[int(p)] == fam[int(q)] for p in np.unique(gp)) for q in qp
    ]
    out: Dict[str, Any] = dict(
        split=split,
        queries=len(qp),
        gallery=len(gp),
        identities=int(len(np.unique(gp))),
        families=int(len({fam[int(p)]
                          for p in gp})),
        mean_family_size_per_query=float(np.mean(sizes)),
        chance_R1=100.0 *
        float(np.mean([(gp == p).sum() / len(gp) for p in qp])),
        draws=draws)
    glob = oracle_scores(said, shown, list(GLOBAL_KEYS))
    full = oracle_scores(said, shown, list(GLOBAL_KEYS) + list(DETAIL_KEYS))
    out['oracle_global'] = rank_summary(glob, data, draws, seed, 0.5)
    out['oracle_detail'] = rank_summary(full, data, draws, seed, 0.5)
    colours = image_colours(root, data['gallery'])
    out['pixel_global'] = rank_summary(
        pixel_text_scores(said, colours), data, 1, seed, 1e-9)
    out['image_to_image_global'] = image_to_image(colours, data)
    if detail_images > 0:
        out['detail_pixels'] = detail_pixels(data, detail_images)
    return out


def report(r: Dict[str, Any]) -> List[str]:
    """The numbers as text, one line each."""
    lines = [
        f'{r["split"]}: {r["queries"]} caption queries x {r["gallery"]} '
        f'images, {r["identities"]} identities in {r["families"]} families '
        f'(a query\'s family: {r["mean_family_size_per_query"]:.2f} '
        'identities on average)',
        f'chance R@1 {r["chance_R1"]:.2f}',
    ]
    for key, name in (('oracle_global', 'oracle, global only'),
                      ('oracle_detail', 'oracle, detail-aware'),
                      ('pixel_global', 'pixels, global colour')):
        m = r[key]
        lines.append(
            f'{name:<22} R@1 {m["R@1"]:6.2f}  R@5 {m["R@5"]:6.2f}  R@10 '
            f'{m["R@10"]:6.2f}  mAP {m["mAP"]:6.2f}  | family members above '
            f'the identity {m["family_above"]:5.1f}%, other identities '
            f'above {m["others_above"]:5.1f}%')
    i2i = r['image_to_image_global']
    lines.append(
        f'image-to-image global colour: R@1 {i2i["R@1"]:.2f}; top hit is '
        f'the identity {i2i["top1_identity"]:.1f}% (chance '
        f'{i2i["chance_identity"]:.1f}%), a family member '
        f'{i2i["top1_family_member"]:.1f}% (chance '
        f'{i2i["chance_family_member"]:.1f}%), another person '
        f'{i2i["top1_other"]:.1f}%')
    if 'detail_pixels' in r:
        parts = [
            f'{slot} {v["median_px"]:.0f} (p10 {v["p10_px"]:.0f}, n '
            f'{v["n"]})' for slot, v in r['detail_pixels'].items()
        ]
        lines.append('detail pixels (median changed output pixels when a '
                     'family member\'s value is swapped in): ' +
                     ', '.join(parts))
    return lines


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    result = probe(args.root, args.split, args.draws, args.detail_images,
                   args.seed)
    for line in report(result):
        print(line)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
