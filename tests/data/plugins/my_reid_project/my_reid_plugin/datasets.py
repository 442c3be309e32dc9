"""A text-image dataset in the common JSON-list layout, train/test only."""
from mmreid_clip.datasets import TextImageDataset
from mmreid_clip.registry import DATASETS


@DATASETS.register_module()
class MyPedes(TextImageDataset):
    """Captioned pedestrian images with ``image`` as the path field.

    Layout::

        my-pedes/
          captions.json   # [{"split", "captions", "image", "id"}, ...]
          imgs/...

    Args: see :class:`TextImageDataset`.
    """

    DATASET_NAME = 'MyPedes'
    DEFAULT_ANN_FILES = ('captions.json', )
    PATH_KEY = 'image'
    SPLITS = ('train', 'test')
    LAYOUT = ('my-pedes/captions.json (a list of {split, captions, image, '
              'id}) and my-pedes/imgs/...')
