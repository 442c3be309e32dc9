"""Host reads of tensor values in the training steps (GPU synchronisations).

On a GPU every read of a device value (``bool(t)``, ``int(t)``,
``t.item()``, ``t.tolist()``) makes the host wait for the queued kernels.
The steps of CLIP-ReID / CCAF and CFine may read values only in their
input checks, and those stop after the first calls on accelerator tensors
(``mmreid_clip/models/utils/value_checks.py``). These tests count every read
made from library code during a step, with the checks used up and CPU
tensors treated as accelerator ones; torch's optimizers are not counted
(their step counters are host tensors).
"""
import collections
import contextlib
import copy
import os.path as osp
import traceback

import pytest
import torch
from helpers.micro_models import (CCAF, CFINE, W, ccaf_batch, cfine_batch,
                                  ready_ccaf)
from mmengine.optim import build_optim_wrapper

from mmreid_clip.models.utils.value_checks import ValueCheck, value_checks
from mmreid_clip.registry import MODELS
from mmreid_clip.utils import register_all_modules

register_all_modules()

READS = ('__bool__', '__int__', '__float__', '__index__', 'item', 'tolist')
COUNTED = ('mmreid_clip', 'mmpretrain', 'mmengine')


@contextlib.contextmanager
def counting_reads():
    """Count value reads by caller ``(file, line)`` in library code."""
    calls = collections.Counter()
    originals = {name: getattr(torch.Tensor, name) for name in READS}

    def counted(name):

        def read(self, *args, **kwargs):
            frame = traceback.extract_stack(limit=2)[0]
            path = frame.filename.replace(osp.sep, '/')
            if any(f'/{pkg}/' in path for pkg in COUNTED):
                calls[(path.rsplit('/', 3)[-2:], frame.lineno,
                       name).__repr__()] += 1
            return originals[name](self, *args, **kwargs)

        return read

    for name in READS:
        setattr(torch.Tensor, name, counted(name))
    try:
        yield calls
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)


def ccaf_model():
    torch.manual_seed(0)
    return ready_ccaf(MODELS.build(copy.deepcopy(CCAF)))


def stage1_batch():
    g = torch.Generator().manual_seed(2)
    feats = torch.randn(8, W, generator=g)
    return dict(stage=1, pids=torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]),
                feat_id=feats, feat_clothes=feats.flip(0),
                clothes_ids=torch.arange(8))


def reads_of(step, warm_up: int = 2):
    """Reads during one call of ``step`` after ``warm_up`` calls, with one
    checked call per site and CPU tensors treated as a GPU's."""
    with value_checks(calls=1, always_on_cpu=False):
        for _ in range(warm_up):
            step()
        with counting_reads() as calls:
            step()
    return dict(calls)


def test_ccaf_steps_read_no_values_after_the_checks():
    model, ow = ccaf_model()
    assert reads_of(lambda: model.train_step(stage1_batch(), ow)) == {}
    model.begin_stage2(0)
    assert reads_of(lambda: model.train_step(ccaf_batch(), ow)) == {}


def test_cfine_step_reads_no_values_after_the_checks():
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(CFINE))
    ow = build_optim_wrapper(model,
                             dict(optimizer=dict(type='AdamW', lr=1e-4)))
    assert reads_of(lambda: model.train_step(cfine_batch(), ow)) == {}


def test_the_first_calls_are_checked():
    """The same step with the checks fresh does read (so the counter sees
    reads, and the checks run)."""
    model, ow = ccaf_model()
    model.begin_stage2(0)
    with value_checks(calls=1, always_on_cpu=False):
        with counting_reads() as calls:
            model.train_step(ccaf_batch(), ow)
    assert sum(calls.values()) > 0


def test_budget_rule():
    check = ValueCheck()
    cpu = torch.zeros(1)
    with value_checks(calls=2, always_on_cpu=True):
        assert all(check.due(cpu) for _ in range(5))
    with value_checks(calls=2, always_on_cpu=False):
        assert [check.due(cpu) for _ in range(4)] == [True, True, False,
                                                      False]
    with value_checks(calls=None, always_on_cpu=False):
        assert check.due(cpu)


def test_a_bad_label_is_still_caught_after_the_checks():
    """Past the checked calls, an identity beyond num_classes still stops
    the step (the host-side check of the metainfo, and the loss's own
    index check)."""
    model, ow = ccaf_model()
    model.begin_stage2(0)
    batch = ccaf_batch()
    batch['data_samples'][3].set_metainfo(dict(pid=4))
    with value_checks(calls=0, always_on_cpu=False):
        with pytest.raises(ValueError, match=r'pid values 0..4 outside'):
            model.train_step(batch, ow)
