from .bnneck_head import BNNeckHead
from .cfm_head import CFM
from .id_head import SharedIDHead
from .ifp_head import IFP
from .prompt_learner import PromptLearner

__all__ = ['SharedIDHead', 'BNNeckHead', 'PromptLearner', 'CFM', 'IFP']
