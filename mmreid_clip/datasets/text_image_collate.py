"""Collate function for batches mixing image, text and pair items."""
from typing import List, Sequence

import torch

from mmreid_clip.registry import FUNCTIONS


def _stack(tensors: List[torch.Tensor], owners: List[int],
           key: str) -> torch.Tensor:
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        detail = ', '.join(f'item {i}: {tuple(t.shape)}'
                           for i, t in list(zip(owners, tensors))[:6])
        raise ValueError(
            f'text_image_collate: cannot stack {key} of different shapes '
            f'({detail}); resize every image to one size (Resize with a '
            'fixed scale) and use one context_length per dataset')
    return torch.stack(tensors)


@FUNCTIONS.register_module()
def text_image_collate(data_batch: Sequence[dict]) -> dict:
    """Collate packed text-image items (``docs/design.md``).

    Images of the items that have one are stacked in item order, likewise
    texts; every data sample is kept in item order. The k-th image row thus
    belongs to the k-th sample whose ``has_image`` is True, which is how the
    retrievers put features back on their samples.

    Registered in mmengine's root ``FUNCTIONS``, where the Runner looks up
    ``collate_fn=dict(type='text_image_collate')``.

    Args:
        data_batch (Sequence[dict]): Outputs of ``PackTextImageInputs``.

    Returns:
        dict: ``{'inputs': {'images': uint8 [Ni, 3, H, W],
        'texts': int64 [Nt, L]}, 'data_samples': list[DataSample]}``; a key
        of ``inputs`` is absent when no item has that modality.

    Raises:
        ValueError: An empty batch, or tensors of different shapes.
    """
    if len(data_batch) == 0:
        raise ValueError('text_image_collate: empty batch')
    images, image_owners = [], []
    texts, text_owners = [], []
    samples = []
    for i, item in enumerate(data_batch):
        inputs = item['inputs']
        if 'images' in inputs:
            images.append(inputs['images'])
            image_owners.append(i)
        if 'texts' in inputs:
            texts.append(inputs['texts'])
            text_owners.append(i)
        samples.append(item['data_samples'])
    batch_inputs = {}
    if images:
        batch_inputs['images'] = _stack(images, image_owners, 'images')
    if texts:
        batch_inputs['texts'] = _stack(texts, text_owners, 'texts')
    return dict(inputs=batch_inputs, data_samples=samples)
