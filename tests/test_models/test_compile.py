"""``compile_encoders``: the retrievers' encoders under ``torch.compile``.

Dynamo traces the encoders (``backend='eager'`` runs the captured graphs
without code generation, so a test takes seconds; inductor's generated code
was checked by hand on clip-micro: features within 6e-7 of eager). The
losses and gradients of a training step, and the checkpoint keys, must be
those of the eager model.
"""
import copy

import pytest
import torch
from helpers.micro_models import (CCAF, CFINE, ccaf_batch, cfine_batch,
                                  ready_ccaf)

from mmreid_clip.models.utils import compile_submodules
from mmreid_clip.registry import MODELS
from mmreid_clip.utils import register_all_modules

register_all_modules()

COMPILE = dict(backend='eager', fullgraph=False)


def pair(cfg):
    """An eager and a compiled model with the same weights."""
    torch.manual_seed(0)
    eager = MODELS.build(copy.deepcopy(cfg))
    compiled = MODELS.build(dict(copy.deepcopy(cfg),
                                 compile_encoders=COMPILE))
    for name in ('image_encoder', 'text_encoder'):
        assert getattr(compiled, name)._compiled_call_impl is not None
        assert getattr(eager, name)._compiled_call_impl is None
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    compiled.load_state_dict(eager.state_dict())
    return eager, compiled


def test_cfine_step_is_the_eager_step():
    eager, compiled = pair(CFINE)
    grads = []
    for model in (eager, compiled):
        torch._dynamo.reset()
        data = model.data_preprocessor(cfine_batch(), True)
        losses = model.loss(data['inputs'], data['data_samples'])
        total = sum(v for k, v in losses.items() if 'loss' in k)
        total.backward()
        grads.append({
            k: p.grad.clone()
            for k, p in model.named_parameters() if p.grad is not None
        })
        losses_of = {k: float(v.detach()) for k, v in losses.items()}
        if model is eager:
            reference = losses_of
    assert losses_of == pytest.approx(reference, rel=1e-6, abs=1e-6)
    assert grads[0].keys() == grads[1].keys()
    for key in grads[0]:
        torch.testing.assert_close(grads[1][key], grads[0][key],
                                   rtol=1e-5, atol=1e-6, msg=key)


def test_ccaf_stage2_step_is_the_eager_step():
    """Both CFM optimizers and the encoder step: the logged losses and the
    updated parameters match the eager model's."""
    logs, states = [], []
    for model in pair(CCAF):
        torch._dynamo.reset()
        model, ow = ready_ccaf(model)
        model.begin_stage2(0)
        for _ in range(2):
            log = model.train_step(ccaf_batch(), ow)
        logs.append({k: float(v) for k, v in log.items()})
        states.append(model.state_dict())
    assert logs[1] == pytest.approx(logs[0], rel=1e-6, abs=1e-6)
    for key, value in states[0].items():
        if value.is_floating_point():
            torch.testing.assert_close(states[1][key], value, rtol=1e-5,
                                       atol=1e-6, msg=key)


def test_a_boolean_is_refused_with_the_fix():
    with pytest.raises(TypeError, match=r'as a dict \(e.g. dict\(\)\)'):
        compile_submodules(torch.nn.Module(), True)


def test_only_existing_encoders_are_compiled():
    model = torch.nn.Module()
    model.image_encoder = torch.nn.Linear(2, 2)
    assert compile_submodules(model, dict(backend='eager')) == (
        'image_encoder', )
    assert compile_submodules(model, None) == ()
