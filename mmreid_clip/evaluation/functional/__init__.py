from .ranking import (DEFAULT_MEMORY_BUDGET, RANK_BACKENDS, JunkFn,
                      LabelJunkFn, QueryRanks, auto_chunk_size,
                      rank_queries, summarize)
from .reranking import (DEFAULT_RERANK_MAX_ITEMS, RERANK_CONVENTIONS,
                        k_reciprocal_rerank)

__all__ = [
    'DEFAULT_MEMORY_BUDGET', 'RANK_BACKENDS', 'JunkFn', 'LabelJunkFn',
    'QueryRanks', 'auto_chunk_size',
    'rank_queries', 'summarize', 'DEFAULT_RERANK_MAX_ITEMS',
    'RERANK_CONVENTIONS', 'k_reciprocal_rerank'
]
