"""Optimizer wrappers of the engine: the CPU bf16 autocast wrapper."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmreid_clip.engine.optimizers import CPUAutocastOptimWrapper

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_cpu_autocast_wrapper_runs_bf16():
    model = torch.nn.Linear(4, 2)
    wrapper = CPUAutocastOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().sum())
    with pytest.raises(ValueError, match='bfloat16'):
        CPUAutocastOptimWrapper(
            dtype='float16',
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


def test_old_compat_import_path_is_the_same_class():
    from mmreid_clip.compat import CPUAutocastOptimWrapper as old
    assert old is CPUAutocastOptimWrapper


def test_registered_after_importing_the_package_alone():
    # A fresh interpreter: the registry's own ``locations`` must find the
    # wrapper, not an import of mmreid_clip.compat done elsewhere.
    code = (
        'import sys, mmreid_clip\n'
        'from mmreid_clip.registry import OPTIM_WRAPPERS\n'
        'assert "mmreid_clip.compat" not in sys.modules\n'
        'cls = OPTIM_WRAPPERS.get("CPUAutocastOptimWrapper")\n'
        'print(cls.__module__)\n')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    out = subprocess.run([sys.executable, '-c', code],
                         cwd=ROOT,
                         env=env,
                         capture_output=True,
                         text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        'mmreid_clip.engine.optimizers.cpu_autocast_optim_wrapper'
    ]
