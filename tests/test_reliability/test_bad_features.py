"""NaN features and scores give the same named error on every ranking
backend (docs/reliability.md, "Bad features")."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmreid_clip.evaluation.functional.ranking import rank_queries

BACKENDS = ['torch', 'numba']


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('where', ['query', 'gallery_positive',
                                   'gallery_negative'])
def test_nan_features_name_the_query(backend, where):
    """A NaN in a query's features, or in a gallery item (a positive or
    not), is a ValueError naming the queries: the numba kernel used to
    divide by a zero rank."""
    torch.manual_seed(0)
    query, gallery = torch.randn(4, 8), torch.randn(10, 8)
    q_labels, g_labels = torch.arange(4), torch.arange(10) % 4
    if where == 'query':
        query[1, 0] = math.nan
        expected = r'\(1 of them: query 1\)'
    elif where == 'gallery_positive':
        gallery[1, 3] = math.nan  # label 1: a positive of query 1
        expected = r'\(4 of them: query 0, 1, 2, 3\)'
    else:
        gallery[6, 3] = math.nan
        expected = r'\(4 of them'
    with pytest.raises(ValueError, match=r'NaN scores for queries 0\.\.3 '
                       + expected + '.*check the features'):
        rank_queries(query, gallery, q_labels, g_labels, backend=backend)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    num_query=st.integers(1, 5),
    num_gallery=st.integers(1, 12),
    nan_cells=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 11)),
                       min_size=1, max_size=4),
    labels=st.lists(st.integers(0, 3), min_size=17, max_size=17),
    chunk=st.integers(1, 5))
def test_any_nan_score_is_the_same_error_on_both_backends(
        num_query, num_gallery, nan_cells, labels, chunk):
    gen = torch.Generator().manual_seed(num_query * 100 + num_gallery)
    scores = torch.rand(num_query, num_gallery, generator=gen)
    for q, g in nan_cells:
        scores[q % num_query, g % num_gallery] = math.nan
    q_labels = labels[:num_query]
    g_labels = labels[5:5 + num_gallery]
    messages = []
    for backend in BACKENDS:
        with pytest.raises(ValueError, match='NaN scores') as err:
            rank_queries(scores=scores, query_labels=q_labels,
                         gallery_labels=g_labels, chunk_size=chunk,
                         backend=backend)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
