from .two_stage_loop import TwoStageEpochBasedTrainLoop

__all__ = ['TwoStageEpochBasedTrainLoop']
