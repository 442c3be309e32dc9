"""RSTPReid (Zhu et al., "DSSL: Deep Surroundings-person Separation Learning
for Text-based Person Retrieval", ACM MM 2021)."""
from mmreid_clip.registry import DATASETS
from .text_image_dataset import TextImageDataset


@DATASETS.register_module()
class RSTPReid(TextImageDataset):
    """RSTPReid: 3,701 / 200 / 200 identities, 5 images each, 2 captions.

    Layout::

        RSTPReid/
          data_captions.json   # [{id, img_path, captions, split}]
          imgs/...

    The path field is ``img_path`` (not ``file_path``), relative to
    ``imgs/``.

    Args: see :class:`TextImageDataset`; ``ann_file`` defaults to
    ``data_captions.json``.
    """

    DATASET_NAME = 'RSTPReid'
    DEFAULT_ANN_FILES = ('data_captions.json', )
    PATH_KEY = 'img_path'
    SPLITS = ('train', 'val', 'test')
    LAYOUT = ('RSTPReid/data_captions.json and RSTPReid/imgs/..., with '
              'img_path relative to imgs/')
