"""An mmreid_clip plugin: importing the package registers its parts."""
from .backbones import TinyConvEncoder
from .datasets import MyPedes
from .losses import LevelInfoNCELoss
from .necks import MeanPoolNeck

__all__ = ['TinyConvEncoder', 'MyPedes', 'LevelInfoNCELoss', 'MeanPoolNeck']
