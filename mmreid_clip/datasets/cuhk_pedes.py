"""CUHK-PEDES (Li et al., "Person Search with Natural Language Description",
CVPR 2017), read from the original ``reid_raw.json``."""
from mmreid_clip.registry import DATASETS
from .text_image_dataset import AnnotationError, TextImageDataset


@DATASETS.register_module()
class CUHKPEDES(TextImageDataset):
    """CUHK-PEDES: 11,003 / 1,000 / 1,000 identities in train / val / test.

    Layout::

        CUHK-PEDES/
          reid_raw.json  # [{split, captions, file_path, processed_tokens,
                         #   id}]
          imgs/cam_a/... imgs/cam_b/... imgs/CUHK01/... imgs/CUHK03/...
          imgs/Market/... imgs/test_query/... imgs/train_query/...

    ``id`` is 1-based; the train split is remapped to ``0..C-1`` (which is
    ``id - 1`` on the official file, as in IRRA and CFine). The val and test
    splits keep the file's ids. ``caption_all.json``, the other annotation
    file of the release, has no ``split`` field and is rejected with a
    message naming the file that is needed. The per-split files written by
    CFine's preprocessing (``train_reid.json``, ...) have the same fields
    and can be passed as ``ann_file``.

    Args: see :class:`TextImageDataset`; ``ann_file`` defaults to
    ``reid_raw.json``.
    """

    DATASET_NAME = 'CUHK-PEDES'
    DEFAULT_ANN_FILES = ('reid_raw.json', )
    PATH_KEY = 'file_path'
    SPLITS = ('train', 'val', 'test')
    LAYOUT = ('CUHK-PEDES/reid_raw.json and CUHK-PEDES/imgs/... (imgs/cam_a, '
              'imgs/cam_b, imgs/CUHK01, imgs/CUHK03, imgs/Market, '
              'imgs/test_query, imgs/train_query), with file_path relative '
              'to imgs/')
    MISSING_FILES_HINT = (
        'Some CUHK-PEDES copies lack the train_query, test_query, Market '
        'and CUHK01 folders; ask the authors for the complete image set.')

    def _check_format(self, entries: list) -> None:
        """Reject ``caption_all.json``: same entries minus ``split``."""
        dicts = [e for e in entries if isinstance(e, dict)]
        looks_like_caption_all = (
            dicts and all('split' not in e for e in dicts)
            and all({'file_path', 'id', 'captions'} <= set(e) for e in dicts))
        if looks_like_caption_all:
            raise AnnotationError(
                f'{self.ann_file} looks like CUHK-PEDES caption_all.json: '
                'its entries have file_path, id and captions but no "split" '
                'field. CUHKPEDES needs reid_raw.json (the same entries with '
                'the train/val/test split of the benchmark); put it at '
                f'{self.data_root or "."}/reid_raw.json or pass its path as '
                'ann_file.')
