from .id_head import SharedIDHead

__all__ = ['SharedIDHead']
