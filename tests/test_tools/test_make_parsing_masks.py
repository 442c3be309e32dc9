"""tools/dataset_converters/make_parsing_masks.py: masks land where our
loaders read them, runs resume and redo bad masks, and the label mapping
gives back every LIP label the source label set can represent."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from helpers.synth_plans import MINI_CC_V2
from helpers.tool_loader import load_tool

tool = load_tool('tools/dataset_converters/make_parsing_masks.py')

#: The 18 labels of the SegFormer "clothes" parsers (ATR), in their order.
CLOTHES_LABELS = [
    'Background', 'Hat', 'Hair', 'Sunglasses', 'Upper-clothes', 'Skirt',
    'Pants', 'Dress', 'Belt', 'Left-shoe', 'Right-shoe', 'Face', 'Left-leg',
    'Right-leg', 'Left-arm', 'Right-arm', 'Bag', 'Scarf'
]
MINI = MINI_CC_V2  # a SynthCC v2 plan small enough for a fast test
PARSED = '{folder}-parsed'  # a fresh mask folder beside the true masks


def save_tiny_segformer(folder, labels):
    """A randomly initialised tiny SegFormer and its processor, saved."""
    from transformers import (SegformerConfig,
                              SegformerForSemanticSegmentation,
                              SegformerImageProcessor)
    config = SegformerConfig(
        hidden_sizes=[8, 16, 16, 16],
        depths=[1, 1, 1, 1],
        num_attention_heads=[1, 1, 1, 1],
        decoder_hidden_size=16,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i
                  for i, n in enumerate(labels)})
    torch.manual_seed(0)
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor(size={
        'height': 64,
        'width': 32
    }).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    from mmreid_synth.synth_cc_v2 import generate_synth_cc_v2
    root = str(tmp_path_factory.mktemp('parsing') / 'synth-cc')
    # seed 5: this small plan dresses someone in a coat, a LIP class the
    # 18-label set cannot express, so the accuracy figure is not trivially 1
    generate_synth_cc_v2(root, seed=5, **MINI)
    return root


@pytest.fixture(scope='module')
def clothes_model(tmp_path_factory):
    return save_tiny_segformer(
        tmp_path_factory.mktemp('segformer-clothes'), CLOTHES_LABELS)


def run(synth, model, *extra):
    return tool.main([
        synth, '--layout', 'synthcc', '--model', model, '--mask-dir',
        PARSED, '--batch-size', '7', *extra
    ])


def test_label_tables():
    # LIP is the identity, ATR covers the clothes parsers' 18 names
    lip = tool.build_lut(dict(enumerate(tool.LIP_CLASSES)))
    assert lip.tolist() == list(range(20))
    lut = tool.build_lut(dict(enumerate(CLOTHES_LABELS)))
    assert tool.detect_label_set(CLOTHES_LABELS) == 'ATR'
    assert dict(zip(CLOTHES_LABELS, lut.tolist()))['Belt'] == 9
    assert dict(zip(CLOTHES_LABELS, lut.tolist()))['Bag'] == 0
    # names match case- and punctuation-insensitively
    odd = ['background', 'UPPER_CLOTHES', 'left arm', 'Jumpsuits']
    assert tool.build_lut(dict(enumerate(odd))).tolist() == [0, 5, 14, 10]


def test_writes_masks_the_loaders_read(synth, clothes_model, tmp_path):
    from mmreid_clip.datasets.cloth_changing import LTCC
    preview = str(tmp_path / 'preview.jpg')
    summary = run(synth, clothes_model, '--preview', preview)
    jobs, _ = tool.list_jobs('synthcc', synth, mask_dir=PARSED)
    assert summary.total == len(jobs) > 0
    assert summary.written == len(jobs) and summary.num_failed == 0
    reachable = set(tool.build_lut(dict(enumerate(CLOTHES_LABELS))).tolist())
    base = osp.join(synth, 'LTCC_ReID')
    for job in jobs:
        # same name as the image, in <split>-parsed beside <split>
        folder, name = osp.split(osp.relpath(job.img_path, base))
        assert job.mask_path == osp.join(base, f'{folder}-parsed',
                                         osp.splitext(name)[0] + '.png')
        mask = cv2.imread(job.mask_path, cv2.IMREAD_UNCHANGED)
        img = cv2.imread(job.img_path)
        assert mask.dtype == np.uint8 and mask.shape == img.shape[:2]
        assert set(np.unique(mask).tolist()) <= reachable
    leftovers = [
        n for d in ('train', 'query', 'test')
        for n in os.listdir(osp.join(base, f'{d}-parsed'))
        if not n.endswith('.png')
    ]
    assert leftovers == []  # no temp files left behind
    umask = os.umask(0)
    os.umask(umask)  # masks get an ordinary file's mode, not mkstemp's 0600
    assert os.stat(jobs[0].mask_path).st_mode & 0o777 == 0o666 & ~umask
    # the real dataset class reads them
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadParsingMask', num_classes=20)
    ]
    for split in ('train', 'test'):
        ds = LTCC(
            data_root=base,
            split=split,
            with_mask=True,
            mask_dir=PARSED,
            pipeline=pipeline)
        item = ds[0]
        assert item['gt_seg_map'].shape == item['img'].shape[:2]
    assert len(LTCC(data_root=base, with_mask=True, mask_dir=PARSED)) + len(
        LTCC(data_root=base, split='test', with_mask=True,
             mask_dir=PARSED)) == len(jobs)
    sheet = cv2.imread(preview)
    assert sheet is not None and sheet.shape[0] > 128

    # resume: a second run skips everything
    again = run(synth, clothes_model)
    assert (again.skipped, again.written) == (len(jobs), 0)

    # a truncated mask and a mask of the wrong size are redone
    with open(jobs[0].mask_path, 'rb') as f:
        data = f.read()
    with open(jobs[0].mask_path, 'wb') as f:
        f.write(data[:len(data) // 2])
    cv2.imwrite(jobs[1].mask_path, np.zeros((5, 5), np.uint8))
    fixed = run(synth, clothes_model)
    assert (fixed.written, fixed.replaced_invalid) == (2, 2)
    assert fixed.skipped == len(jobs) - 2
    for job in jobs[:2]:
        assert tool.mask_problem(job.mask_path,
                                 cv2.imread(job.img_path).shape[:2]) is None
    # --overwrite redoes valid masks too
    assert run(synth, clothes_model, '--overwrite').written == len(jobs)


def test_unreadable_image_is_counted(tmp_path, clothes_model):
    tree = tmp_path / 'imgs'
    (tree / 'a' / 'b').mkdir(parents=True)
    cv2.imwrite(str(tree / 'a' / 'b' / 'x.jpg'),
                np.full((40, 20, 3), 100, np.uint8))
    cv2.imwrite(str(tree / 'y.png'), np.full((30, 16, 3), 50, np.uint8))
    (tree / 'broken.jpg').write_bytes(b'not an image')
    (tree / 'notes.txt').write_text('ignored')
    out = tmp_path / 'masks'
    summary = tool.main([
        str(tree), '--layout', 'folder', '--output',
        str(out), '--model', clothes_model
    ])
    assert (summary.written, summary.num_failed) == (2, 1)
    assert 'broken.jpg' in summary.line()
    assert cv2.imread(str(out / 'a' / 'b' / 'x.png'),
                      cv2.IMREAD_UNCHANGED).shape == (40, 20)
    assert cv2.imread(str(out / 'y.png'),
                      cv2.IMREAD_UNCHANGED).shape == (30, 16)


def test_prcc_mask_tree(tmp_path, clothes_model):
    # PRCC keeps masks in mask/<split>/... mirroring rgb/<split>/...
    from mmreid_clip.datasets.cloth_changing import PRCC
    root = tmp_path / 'prcc'
    img = np.full((48, 24, 3), 120, np.uint8)
    for pid in ('001', '002'):
        d = root / 'rgb' / 'train' / pid
        d.mkdir(parents=True)
        for cam in 'ABC':
            cv2.imwrite(str(d / f'{cam}_cropped_rgb001.jpg'), img)
        for cam in 'ABC':
            d = root / 'rgb' / 'test' / cam / pid
            d.mkdir(parents=True)
            cv2.imwrite(str(d / 'cropped_rgb001.jpg'), img)
    summary = tool.main(
        [str(root), '--layout', 'prcc', '--model', clothes_model])
    assert summary.written == 12 and summary.num_failed == 0
    assert (root / 'mask' / 'test' / 'C' / '002' / 'cropped_rgb001.png'
            ).is_file()
    assert len(PRCC(data_root=str(root), split='test', with_mask=True)) == 6
    assert len(PRCC(data_root=str(root), with_mask=True)) == 6
    with pytest.raises(ValueError, match='--output is for --layout folder'):
        tool.main([
            str(root), '--layout', 'prcc', '--model', clothes_model,
            '--output', str(tmp_path / 'elsewhere')
        ])
    with pytest.raises(FileNotFoundError):  # a named split must exist
        tool.main([
            str(root), '--layout', 'prcc', '--model', clothes_model,
            '--splits', 'val'
        ])


def _vc_clothes(root, img):
    for folder, pid in (('train', 1), ('train', 2), ('query', 3),
                        ('gallery', 3)):
        (root / folder).mkdir(exist_ok=True)
        cam = 3 if folder == 'gallery' else 2
        cv2.imwrite(str(root / folder / f'{pid:04d}-{cam:02d}-01-01.jpg'), img)
    return {'train': 2, 'test': 2}


def _deepchange(root, img):
    for folder in ('train-set', 'val-set-query', 'val-set-gallery',
                   'test-set-query', 'test-set-gallery'):
        (root / folder / 'sub').mkdir(parents=True)
        names = ['P00001_C01_D01_0001.jpg', 'sub/P00002_C02_D01_0002.jpg']
        for name in names:
            cv2.imwrite(str(root / folder / name), img)
        (root / f'{folder}-bbox.txt').write_text(
            ''.join(f'{n},{i}\n' for i, n in enumerate(names)))
    return {'train': 2, 'val': 4, 'test': 4}


@pytest.mark.parametrize('layout,make,cls_name',
                         [('vcclothes', _vc_clothes, 'VCClothes'),
                          ('deepchange', _deepchange, 'DeepChange')])
def test_other_layouts(tmp_path, clothes_model, layout, make, cls_name):
    from mmreid_clip.datasets import cloth_changing
    root = tmp_path / layout
    root.mkdir()
    sizes = make(root, np.full((40, 20, 3), 90, np.uint8))
    summary = tool.main(
        [str(root), '--layout', layout, '--model', clothes_model])
    assert summary.written == sum(sizes.values())
    assert summary.num_failed == 0
    cls = getattr(cloth_changing, cls_name)
    for split, size in sizes.items():
        assert len(cls(data_root=str(root), split=split,
                       with_mask=True)) == size


class FakeParser(torch.nn.Module):
    """A "model" whose logits are the true LIP masks of the images it is
    shown, written in a source label set through the inverse mapping."""

    def __init__(self, truth, labels, inverse, scale=1):
        super().__init__()
        self.truth, self.inverse, self.scale = truth, inverse, scale
        self.config = type('Config', (), {})()
        self.config.id2label = dict(enumerate(labels))

    def forward(self, pixel_values):
        logits = []
        for pixels in pixel_values:
            # the processor only rescales (1/255): recover the RGB bytes
            rgb = (pixels.permute(1, 2, 0) * 255).round().to(torch.uint8)
            src = self.inverse[self.truth[rgb.numpy().tobytes()]]
            one_hot = np.eye(len(self.config.id2label),
                             dtype=np.float32)[src].transpose(2, 0, 1)
            logits.append(torch.from_numpy(one_hot))
        logits = torch.stack(logits)
        if self.scale > 1:  # a model with a coarser output, like SegFormer
            logits = torch.nn.functional.avg_pool2d(logits, self.scale)
        return type('Output', (), {'logits': logits})()


def test_mapping_accuracy(synth, tmp_path):
    from transformers import SegformerImageProcessor
    jobs, _ = tool.list_jobs('synthcc', synth)  # the true masks
    truth = {
        tool.read_rgb(j.img_path).tobytes(): cv2.imread(
            j.mask_path, cv2.IMREAD_UNCHANGED)
        for j in jobs
    }
    lut = tool.build_lut(dict(enumerate(CLOTHES_LABELS)))
    # inverse of the table: the first source label of each LIP id; LIP
    # labels the set cannot express go to the source label an ATR model
    # would see there (a coat is 'Upper-clothes')
    inverse = np.zeros(20, np.int64)
    for lip in range(20):
        hits = np.flatnonzero(lut == lip)
        inverse[lip] = hits[0] if hits.size else -1
    representable = inverse >= 0
    fallback = {3: 'Left-arm', 7: 'Upper-clothes', 8: 'Left-leg',
                10: 'Upper-clothes'}
    for lip, name in fallback.items():
        assert not representable[lip]
        inverse[lip] = CLOTHES_LABELS.index(name)
    assert representable.sum() == 16
    processor = SegformerImageProcessor(do_resize=False, do_normalize=False)
    true_masks = [cv2.imread(j.mask_path, cv2.IMREAD_UNCHANGED) for j in jobs]
    expected = np.mean(
        np.concatenate([representable[m].ravel() for m in true_masks]))
    figures = {}
    for scale in (1, 4):
        parser = tool.Parser(
            FakeParser(truth, CLOTHES_LABELS, inverse, scale), processor)
        out_jobs = [
            tool.Job(j.img_path, str(tmp_path / f's{scale}' / f'{i}.png'))
            for i, j in enumerate(jobs)
        ]
        summary = tool.make_masks(out_jobs, parser, lut, batch_size=5)
        assert summary.written == len(jobs)
        agree = np.mean(
            np.concatenate([
                (cv2.imread(j.mask_path, cv2.IMREAD_UNCHANGED) == m).ravel()
                for j, m in zip(out_jobs, true_masks)
            ]))
        figures[scale] = agree
    print(f'\nmapping accuracy on SynthCC true masks: {figures[1]:.4f} of '
          f'pixels (representable in the 18-label set: {expected:.4f}); '
          f'from 1/4-resolution logits: {figures[4]:.4f}')
    assert 0.5 < expected < 1  # SynthCC has coats, ATR does not
    assert figures[1] == pytest.approx(expected, abs=1e-12)
    assert figures[4] >= expected - 0.06  # only boundaries blur


def test_unknown_labels_and_label_map(tmp_path, synth):
    with pytest.raises(ValueError) as err:
        tool.build_lut({0: 'Background', 1: 'Torso-skin', 2: 'LABEL_2'})
    assert "'Torso-skin' (id 1)" in str(err.value)
    assert "'LABEL_2' (id 2)" in str(err.value)
    assert "'Background'" not in str(err.value)
    # a checkpoint with labels of its own: an error, then --label-map
    labels = ['bg', 'person-top', 'Hair']
    model = save_tiny_segformer(tmp_path / 'custom', labels)
    args = [
        synth, '--layout', 'synthcc', '--model', model, '--mask-dir',
        '{folder}-custom', '--splits', 'train'
    ]
    with pytest.raises(ValueError, match="'bg' \\(id 0\\).*'person-top'"):
        tool.main(args)
    label_map = tmp_path / 'map.json'
    label_map.write_text(json.dumps({'BG': 0, 'person top': 'UpperClothes'}))
    summary = tool.main(args + ['--label-map', str(label_map)])
    assert summary.written > 0 and summary.num_failed == 0
    masks = osp.join(synth, 'LTCC_ReID', 'train-custom')
    values = set()
    for name in os.listdir(masks):
        values |= set(np.unique(cv2.imread(osp.join(masks, name), 0)))
    assert values <= {0, 5, 2}
    # a map key naming no label, or a value that is no LIP class, is named
    label_map.write_text(json.dumps({'bg': 0, 'pants?': 9}))
    with pytest.raises(ValueError, match="'pants\\?' names no label"):
        tool.main(args + ['--label-map', str(label_map)])
    label_map.write_text(json.dumps({'bg': 0, 'person-top': 'shirt'}))
    with pytest.raises(ValueError, match="key 'person-top'"):
        tool.main(args + ['--label-map', str(label_map)])
