"""Standard image person ReID datasets (Market-1501, MSMT17,
DukeMTMC-reID, Occluded-Duke), the benchmarks of CLIP-ReID; see
:class:`StandardReIDDataset`."""
from .base import CountMismatchError, StandardReIDDataset
from .dukemtmc import DukeMTMCReID
from .market1501 import Market1501
from .msmt17 import MSMT17
from .occluded_duke import OccludedDuke

__all__ = [
    'CountMismatchError', 'DukeMTMCReID', 'MSMT17', 'Market1501',
    'OccludedDuke', 'StandardReIDDataset'
]
