from .ranking import (QueryRanks, auto_chunk_size, rank_queries,
                      summarize)

__all__ = ['QueryRanks', 'auto_chunk_size', 'rank_queries', 'summarize']
