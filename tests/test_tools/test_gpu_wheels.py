""".dev_scripts/gpu_wheels.py and the wheel step of gpu_session.sh: the
wheels a bare GPU machine needs, and their installation before a session.
Nothing is downloaded here."""
import configparser
import os
import os.path as osp
import subprocess

import pytest
from helpers.tool_loader import load_tool

gpu_wheels = load_tool('.dev_scripts/gpu_wheels.py')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _setup_pins():
    cfg = configparser.ConfigParser()
    cfg.read(osp.join(ROOT, 'setup.cfg'))
    pins = {}
    for line in cfg['options']['install_requires'].split('\n'):
        if '==' in line:
            name, version = line.strip().split('==')
            pins[gpu_wheels._norm(name)] = version
    return pins


def test_plan_fetches_what_the_image_lacks_at_the_tested_versions():
    fetch, provided = gpu_wheels.plan(
        gpu_wheels.closure(stop=gpu_wheels.DEVICE_PROVIDES))
    pins = dict(p.split('==') for p in fetch)
    setup = _setup_pins()
    for name in ('mmengine', 'mmcv-lite', 'mmpretrain'):
        assert pins[name] == setup[name]  # the versions tested here
    assert 'open-clip-torch' in pins and 'ftfy' in pins
    # the image's own builds are used, never replaced by ours
    assert {'torch', 'torchvision', 'numpy', 'numba'} <= provided
    assert not set(pins) & gpu_wheels.DEVICE_PROVIDES
    assert not set(pins) & set(gpu_wheels.NOT_NEEDED)


def test_closure_stops_at_the_image_and_names_what_is_missing():
    full = gpu_wheels.closure()
    pruned = gpu_wheels.closure(stop=gpu_wheels.DEVICE_PROVIDES)
    assert set(pruned) < set(full)  # torch's CUDA wheels are not walked
    assert 'torch' in pruned and 'filelock' not in pruned
    with pytest.raises(RuntimeError, match='no-such-dist-xyz'):
        gpu_wheels.closure('no-such-dist-xyz')


FAKE_PYTHON = """#!/bin/sh
# records each call (arguments, PYTHONPATH, the AOTAutograd cache switch);
# `-c` exits with $FAKE_RC_C, `-m pytest` with $FAKE_RC_PYTEST
echo "ARGS $* PYTHONPATH=$PYTHONPATH" \
    "AUTOGRAD_CACHE=${TORCHINDUCTOR_AUTOGRAD_CACHE-unset}" >> "$FAKE_LOG"
case "$1 $2" in
    -c*) exit "${FAKE_RC_C:-0}";;
    "-m pytest") exit "${FAKE_RC_PYTEST:-0}";;
esac
exit 0
"""


def _run_session(tmp_path, rc_c: int, with_wheels: bool, rc_pytest: int = 0,
                 **extra_env: str):
    fake = tmp_path / 'python'
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    if with_wheels:
        (wheels / 'mmengine-0.10.7-py3-none-any.whl').write_text('')
    log = tmp_path / 'log'
    env = dict(os.environ, PYTHON=str(fake), WHEELS=str(wheels),
               GPU_SITE=str(tmp_path / 'site'), FAKE_LOG=str(log),
               FAKE_RC_C=str(rc_c), FAKE_RC_PYTEST=str(rc_pytest))
    env.pop('PYTHONPATH', None)
    env.pop('TORCHINDUCTOR_AUTOGRAD_CACHE', None)
    env.update(extra_env)
    proc = subprocess.run(
        ['bash', osp.join(ROOT, '.dev_scripts', 'gpu_session.sh'),
         str(tmp_path / 'out'), '--quick'],
        env=env, capture_output=True, text=True, timeout=60)
    return proc, log.read_text().splitlines()


def test_session_installs_the_wheels_before_it_starts(tmp_path):
    proc, calls = _run_session(tmp_path, rc_c=0, with_wheels=True)
    assert proc.returncode == 0, proc.stderr
    site = str(tmp_path / 'site')
    install = calls[0]
    assert '-m pip install' in install and '--no-index --no-deps' in install
    assert f'--target {site}' in install and 'mmengine-0.10.7' in install
    session = [c for c in calls if 'gpu_session.py' in c]
    assert len(session) == 1 and '--quick' in session[0]
    assert f'PYTHONPATH={site}' in session[0]
    # the CUDA-only tests run before the session
    tests = [i for i, c in enumerate(calls) if '-m pytest' in c]
    assert len(tests) == 1 and 'test_ranking.py' in calls[tests[0]]
    assert tests[0] < calls.index(session[0])


def test_session_without_wheels_installs_nothing(tmp_path):
    proc, calls = _run_session(tmp_path, rc_c=0, with_wheels=False)
    assert proc.returncode == 0, proc.stderr
    assert not any('pip install' in c for c in calls)
    assert any('gpu_session.py' in c for c in calls)


def test_session_stops_when_the_packages_do_not_import(tmp_path):
    proc, calls = _run_session(tmp_path, rc_c=1, with_wheels=False)
    assert proc.returncode == 3
    assert 'gpu_wheels.py' in proc.stderr
    assert not any('gpu_session.py' in c for c in calls)
    assert not any('pytest' in c for c in calls)


def test_failing_device_tests_do_not_cost_the_figures(tmp_path):
    proc, calls = _run_session(tmp_path, rc_c=0, with_wheels=False,
                               rc_pytest=1)
    assert proc.returncode == 0
    assert 'tests failed on this machine' in proc.stderr
    assert any('gpu_session.py' in c for c in calls)


def test_session_turns_the_autograd_cache_off_unless_told(tmp_path):
    # torch 2.11 (the GPU image) segfaulted in AOTAutograd's cache save
    # during the compile phase (gpu_session.sh); the session runs without it
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    proc, calls = _run_session(tmp_path / 'a', rc_c=0, with_wheels=False)
    session = [c for c in calls if 'gpu_session.py' in c]
    assert proc.returncode == 0 and session
    assert session[0].endswith('AUTOGRAD_CACHE=0')
    proc, calls = _run_session(tmp_path / 'b', rc_c=0, with_wheels=False,
                               TORCHINDUCTOR_AUTOGRAD_CACHE='1')
    session = [c for c in calls if 'gpu_session.py' in c]
    assert session[0].endswith('AUTOGRAD_CACHE=1')
