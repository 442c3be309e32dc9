"""Data samplers. Random sampling over pairs is mmengine's ``DefaultSampler``;
see :mod:`.identity_sampler` for P x K identity-balanced sampling."""
from .identity_sampler import IdentityBalancedSampler, dataset_pids

__all__ = ['IdentityBalancedSampler', 'dataset_pids']
