from .ranking import (DEFAULT_MEMORY_BUDGET, JunkFn, QueryRanks,
                      auto_chunk_size, rank_queries, summarize)

__all__ = [
    'DEFAULT_MEMORY_BUDGET', 'JunkFn', 'QueryRanks', 'auto_chunk_size',
    'rank_queries', 'summarize'
]
