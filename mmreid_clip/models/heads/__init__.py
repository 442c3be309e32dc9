from .bnneck_head import BNNeckHead
from .id_head import SharedIDHead
from .prompt_learner import PromptLearner

__all__ = ['SharedIDHead', 'BNNeckHead', 'PromptLearner']
