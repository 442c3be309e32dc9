"""The v1 generators' outputs, byte for byte.

Regenerates a small but representative set of SynthPedes and SynthCC
datasets (every file: images, masks, annotations, attributes, README,
manifest) and compares the SHA-256 of each file with
``tests/data/synth/v1_digests.json``.

Provenance of the reference digests: they were produced by the *old*
generators, ``mmreid_clip/datasets/synth/`` at commit 3da6f44 (SynthPedes
and SynthCC generator versions 1.0.0), just before the code moved into the
``mmreid_synth`` package, by :func:`generate_case` below. At the move, the
studies' v1 datasets (both tools' defaults, seed 0), SynthCC's ``small``
preset and six other variants were also regenerated with the new code and
compared file by file with the old code's: 19,363 files, all identical.

A failure means a generator's output changed. That is allowed only with a
new ``GENERATOR_VERSION``: then keep the v1 output reproducible (or the
studies that used it reproducible some other way), and record new digests
for the new version from the new code (``python
tests/test_synth/test_v1_digests.py``, which writes the JSON).
"""
import hashlib
import json
import os
import os.path as osp
import sys
from types import ModuleType
from typing import Dict

import pytest

import mmreid_synth

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REFERENCE = osp.join(ROOT, 'tests', 'data', 'synth', 'v1_digests.json')

#: name -> (generator, arguments). Chosen to reach the branches of both
#: renderers in about two seconds: SynthPedes at 128 x 64 with every view
#: direction (4 images per id) and enough people for most attributes, and
#: at a tall 384 x 128 (the frame-fitting branch) with 3 captions; SynthCC
#: with the test-suite's small plan, and with other parameters and image
#: size on every scene.
CASES: Dict[str, tuple] = {
    'pedes-seed0':
    ('pedes',
     dict(seed=0, train_ids=12, val_ids=2, test_ids=4, images_per_id=4)),
    'pedes-tall-seed7': ('pedes',
                         dict(
                             seed=7,
                             train_ids=3,
                             val_ids=1,
                             test_ids=2,
                             images_per_id=5,
                             img_size=[384, 128],
                             captions_per_image=3)),
    'cc-small-seed0': ('cc',
                       dict(
                           seed=0,
                           train_ids=3,
                           test_ids=4,
                           frames_per_camera=2,
                           num_cameras=4)),
    'cc-custom-seed5': ('cc',
                        dict(
                            seed=5,
                            train_ids=4,
                            test_ids=3,
                            outfits_per_id=2,
                            cameras_per_outfit=2,
                            frames_per_camera=1,
                            num_cameras=6,
                            img_size=[192, 96])),
}


def file_digests(root: str) -> Dict[str, str]:
    """``{relative path: sha256 of the bytes}`` of every file under
    ``root`` (computed here, not by the code under test)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                rel = osp.relpath(path, root).replace(os.sep, '/')
                out[rel] = hashlib.sha256(f.read()).hexdigest()
    return dict(sorted(out.items()))


def generate_case(package: ModuleType, name: str, root: str) -> None:
    """Generate case ``name`` under ``root`` with ``package`` (a module
    exposing ``generate_synth_pedes`` and ``generate_synth_cc``)."""
    kind, kwargs = CASES[name]
    if kind == 'pedes':
        package.generate_synth_pedes(root, **kwargs)
    else:
        package.generate_synth_cc(root, **kwargs)


def _reference() -> dict:
    with open(REFERENCE, encoding='utf-8') as f:
        return json.load(f)


def test_reference_matches_cases_and_versions():
    ref = _reference()
    assert set(ref['cases']) == set(CASES)
    for name, (kind, kwargs) in CASES.items():
        # the arguments recorded with the digests are the ones run here
        assert ref['cases'][name]['generator'] == kind
        assert ref['cases'][name]['kwargs'] == kwargs
    assert ref['versions'] == dict(
        SynthPedes=mmreid_synth.GENERATOR_VERSION,
        SynthCC=mmreid_synth.SYNTH_CC_VERSION), (
            'a generator version changed: record digests for it (see the '
            'module docstring)')


@pytest.mark.parametrize('name', sorted(CASES))
def test_output_is_byte_identical_to_v1(tmp_path, name):
    expected = _reference()['cases'][name]['files']
    root = str(tmp_path / name)
    generate_case(mmreid_synth, name, root)
    got = file_digests(root)
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    changed = sorted(k for k in set(got) & set(expected)
                     if got[k] != expected[k])
    assert not (missing or extra or changed), (
        f'{name}: {len(changed)} changed, {len(missing)} missing, '
        f'{len(extra)} extra of {len(expected)} files; first changed: '
        f'{changed[:5]}, missing: {missing[:5]}, extra: {extra[:5]}')


def write_reference(package: ModuleType, path: str, provenance: str) -> None:
    """Generate every case with ``package`` and write the digests."""
    import tempfile
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kind, kwargs) in CASES.items():
            root = osp.join(tmp, name)
            generate_case(package, name, root)
            cases[name] = dict(
                generator=kind, kwargs=kwargs, files=file_digests(root))
    versions = dict(
        SynthPedes=package.GENERATOR_VERSION,
        SynthCC=package.SYNTH_CC_VERSION)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(
            dict(provenance=provenance, versions=versions, cases=cases),
            f,
            indent=1)
        f.write('\n')


if __name__ == '__main__':
    # only for a new generator version: see the module docstring
    write_reference(mmreid_synth, sys.argv[1] if len(sys.argv) > 1 else
                    REFERENCE, 'mmreid_synth (state the commit)')
