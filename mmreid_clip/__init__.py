"""mmreid_clip: a registry-driven model zoo for CLIP-based person ReID."""
from .version import __version__

__all__ = ['__version__']
