"""mmreid_clip/evaluation/metrics/args.py: the metrics' argument checks."""
import numpy as np
import pytest
import torch

from mmreid_clip.evaluation import ReIDMetric, TextImageRetrievalMetric
from mmreid_clip.evaluation.metrics.args import as_int, check_ranking_args


@pytest.mark.parametrize('value', [
    3, np.int64(3), np.array(3), np.array([3]),
    torch.tensor(3), torch.tensor([3]), 3.0, np.float32(3.0)
])
def test_as_int_accepts_integral_scalars(value):
    out = as_int(value, 'pid')
    assert out == 3 and type(out) is int


@pytest.mark.parametrize('value, shown', [
    (True, 'True'), (np.bool_(False), 'False'), (torch.tensor(True), 'True'),
    ('3', "'3'"), (b'3', "b'3'"), (2.5, '2.5'), (float('nan'), 'nan'),
    (torch.tensor(2.5), '2.5'), (None, 'None'), (object, 'object'),
])
def test_as_int_rejects_what_only_converts(value, shown):
    # the error names the argument and shows the value
    with pytest.raises(ValueError,
                       match=rf'image_id must be an integer, got .*{shown}'):
        as_int(value, 'image_id')


@pytest.mark.parametrize('value', [torch.tensor([1, 2]), np.zeros((2, 1)),
                                   torch.zeros(0)])
def test_as_int_rejects_arrays_of_other_sizes(value):
    with pytest.raises(ValueError, match=r'camid must be a single integer, '
                       r'got an array of shape'):
        as_int(value, 'camid')


def test_check_ranking_args():
    assert check_ranking_args(5, None) == (5, )
    assert check_ranking_args([1, 10], 4) == (1, 10)
    with pytest.raises(ValueError, match='topk'):
        check_ranking_args([], None)
    with pytest.raises(ValueError, match='chunk_size'):
        check_ranking_args(1, 0)


def test_both_metrics_reject_a_bool_pid():
    """The text-image metric used to turn ``pid=True`` into identity 1."""
    feat = torch.ones(4)
    tipr = TextImageRetrievalMetric()
    with pytest.raises(ValueError, match='pid must be an integer, got True'):
        tipr.process(None, [dict(pid=True, image_id=0, caption_id=0,
                                 img_feat=feat, text_feat=feat)])
    with pytest.raises(ValueError, match="image_id must be an integer, got"
                       " '0'"):
        tipr.process(None, [dict(pid=1, image_id='0', caption_id=0,
                                 img_feat=feat, text_feat=feat)])
    reid = ReIDMetric()
    with pytest.raises(ValueError, match='pid must be an integer, got True'):
        reid.process(None, [dict(pid=True, camid=0, subset='query',
                                 img_feat=feat)])
