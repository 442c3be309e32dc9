from .reid_runner import ReIDRunner
from .two_stage_loop import TwoStageEpochBasedTrainLoop

__all__ = ['ReIDRunner', 'TwoStageEpochBasedTrainLoop']
