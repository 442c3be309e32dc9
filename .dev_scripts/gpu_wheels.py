"""Wheels that a bare GPU machine needs to run ``gpu_session.sh``.

The GPU machines this project borrows (``docs/benchmarks.md``, "One
prepared GPU session") start from an image with torch, numpy, numba,
transformers, timm and the scientific stack, but without the OpenMMLab
packages or open_clip, and reach no package index. This script finds the
distributions that this environment's ``mmreid_clip`` needs (the closure
of its install requirements, versions as installed here), leaves out those
the image provides (:data:`DEVICE_PROVIDES`), and downloads the rest as
wheels for the machine's Python (3.12, x86-64 Linux) into ``.whl/`` (git
ignores it)::

    python .dev_scripts/gpu_wheels.py [--dest .whl] [--python-version 3.12]
    python .dev_scripts/gpu_wheels.py --list      # what it would fetch

``gpu_session.sh`` installs every ``.whl/*.whl`` into ``/tmp/site`` with
``--no-deps`` before it starts (``carry=['.whl']`` sends them along), and
stops at once, naming the module, when an import still fails.

Whatever the image lacks is fetched, so a new dependency travels without
an edit here. ``tests/test_tools/test_gpu_wheels.py`` checks the plan (the
OpenMMLab pins of ``setup.cfg``, the image's torch / numpy / numba kept)
and that ``gpu_session.sh`` installs the wheels before it starts; the
wheels were tried once on an overlay of this environment without them
(``docs/benchmarks.md``). A dependency with compiled code needs a wheel
for CPython 3.12: ``pip download`` fails, naming it, when none exists.
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
from importlib import metadata
from typing import Dict, List, Set, Tuple

#: Distributions of the GPU machines' image ('cuda' image, package list
#: read on 2026-11-17) that mmreid_clip's closure reaches, plus
#: transformers / tokenizers (the ``bert`` extra, CFine's text tower) and
#: triton (``torch.compile``): the image's versions are used as they are
#: (torch 2.11, numpy 2.5 there), and their own requirements are not
#: followed.
DEVICE_PROVIDES = frozenset({
    'click', 'einops', 'huggingface-hub', 'markdown', 'matplotlib', 'numba',
    'numpy', 'opencv-python-headless', 'packaging', 'pillow', 'pyyaml',
    'regex', 'rich', 'safetensors', 'setuptools', 'timm', 'tokenizers',
    'torch', 'torchvision', 'tqdm', 'transformers', 'triton', 'zipp',
})

#: Closure members that are not fetched although the image lacks them,
#: each with the reason.
NOT_NEEDED = {
    # the image's opencv-python-headless provides the same cv2 module
    'opencv-python': 'cv2 comes from the image\'s opencv-python-headless',
    # the project itself travels as the working tree
    'mmreid-clip': 'the working tree',
}

#: The machine's platform tags, newest first (pip matches each exactly).
PLATFORMS = ('manylinux_2_28_x86_64', 'manylinux_2_27_x86_64',
             'manylinux_2_17_x86_64', 'manylinux2014_x86_64',
             'manylinux1_x86_64')


def _norm(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r'[-_.]+', '-', name).lower()


def _requirements(dist: metadata.Distribution) -> List[str]:
    """Names of ``dist``'s unconditional requirements and of those whose
    environment marker holds here (no extras)."""
    from packaging.requirements import Requirement
    names = []
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({'extra': ''}):
            continue
        names.append(_norm(req.name))
    return names


def closure(root: str = 'mmreid-clip',
            stop: frozenset = frozenset()) -> Dict[str, str]:
    """Every installed distribution ``root`` needs, by normalised name, with
    its installed version (``root`` included). The requirements of a name
    in ``stop`` are not followed (the image's own packages bring theirs).

    Raises:
        RuntimeError: a requirement is not installed here, so its version
            cannot be pinned (run ``make install`` first).
    """
    found: Dict[str, str] = {}
    todo = [_norm(root)]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(
                f'{name!r} (needed by {root}) is not installed in '
                f'{sys.executable}: run `make install` first') from None
        found[name] = dist.version
        if name not in stop:
            todo.extend(_requirements(dist))
    return found


def plan(needed: Dict[str, str]) -> Tuple[List[str], Set[str]]:
    """Split a closure into ``name==version`` pins to fetch and the names
    the image provides (:data:`NOT_NEEDED` in neither)."""
    fetch, provided = [], set()
    for name, version in sorted(needed.items()):
        if name in NOT_NEEDED:
            continue
        if name in DEVICE_PROVIDES:
            provided.add(name)
        else:
            fetch.append(f'{name}=={version}')
    return fetch, provided


def download(pins: List[str], dest: str, python_version: str) -> None:
    """``pip download`` the pinned wheels, binary only, for the machine."""
    os.makedirs(dest, exist_ok=True)
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps',
           '--only-binary=:all:', '--python-version', python_version,
           '--implementation', 'cp', '-d', dest]
    for tag in PLATFORMS:
        cmd += ['--platform', tag]
    subprocess.run(cmd + pins, check=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dest', default='.whl')
    parser.add_argument('--python-version', default='3.12')
    parser.add_argument('--list', action='store_true',
                        help='print the pins and fetch nothing')
    args = parser.parse_args(argv)
    fetch, provided = plan(closure(stop=DEVICE_PROVIDES))
    print('from the image:', ' '.join(sorted(provided)))
    print('to fetch:', ' '.join(fetch))
    if not args.list:
        download(fetch, args.dest, args.python_version)
        print(f'{len(fetch)} wheels in {osp.abspath(args.dest)}; '
              "send them with run(carry=['.whl'], ...)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
