"""Collate function for image ReID batches (one or more views per item)."""
from typing import Sequence

import torch

from mmreid_clip.registry import FUNCTIONS


@FUNCTIONS.register_module()
def reid_collate(data_batch: Sequence[dict]) -> dict:
    """Collate outputs of ``PackReIDInputs`` (the CC-ReID data contract).

    Every key of ``inputs`` (``images``, and ``shield_images`` /
    ``clothes_images`` when the pipeline builds them) is stacked in item
    order, so row k of every view belongs to ``data_samples[k]``. Unlike
    ``text_image_collate`` nothing is optional per item: a batch whose items
    carry different views is a pipeline mistake and raises.

    Registered in mmengine's root ``FUNCTIONS``, where the Runner looks up
    ``collate_fn=dict(type='reid_collate')``.

    Args:
        data_batch (Sequence[dict]): Packed items.

    Returns:
        dict: ``{'inputs': {key: Tensor[B, 3, H, W]}, 'data_samples':
        list[DataSample]}``.

    Raises:
        ValueError: An empty batch; items with different ``inputs`` keys;
            tensors of one key with different shapes or dtypes.
    """
    if len(data_batch) == 0:
        raise ValueError('reid_collate: empty batch')
    keys = list(data_batch[0]['inputs'])
    if not keys:
        raise ValueError('reid_collate: item 0 has no inputs')
    for i, item in enumerate(data_batch):
        if set(item['inputs']) != set(keys):
            extra = sorted(set(item['inputs']) - set(keys))
            lacking = sorted(set(keys) - set(item['inputs']))
            raise ValueError(
                f'reid_collate: item {i} has inputs {sorted(item["inputs"])}'
                f' but item 0 has {sorted(keys)} (item {i} adds {extra}, '
                f'lacks {lacking}); every item of a batch must go through '
                'the same pipeline')
    batch_inputs = {}
    for key in keys:
        tensors = [item['inputs'][key] for item in data_batch]
        for attr in ('shape', 'dtype'):
            seen = {}
            for i, t in enumerate(tensors):
                value = getattr(t, attr)
                seen.setdefault(tuple(value) if attr == 'shape' else value, i)
            if len(seen) > 1:
                detail = ', '.join(f'item {i}: {v}' for v, i in seen.items())
                raise ValueError(
                    f'reid_collate: cannot stack inputs[{key!r}] of '
                    f'different {attr}s ({detail}); resize every view to '
                    'one size (Resize with a fixed scale / a fixed crop)')
        batch_inputs[key] = torch.stack(tensors)
    return dict(
        inputs=batch_inputs,
        data_samples=[item['data_samples'] for item in data_batch])
