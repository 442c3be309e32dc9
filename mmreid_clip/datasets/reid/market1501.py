"""Market-1501 (Zheng et al., "Scalable Person Re-identification: A
Benchmark", ICCV 2015)."""
import re

from mmreid_clip.registry import DATASETS
from .base import StandardReIDDataset


@DATASETS.register_module()
class Market1501(StandardReIDDataset):
    """Market-1501: 1,501 identities from 6 cameras, DPM-detected boxes.

    Layout (the release archive ``Market-1501-v15.09.15.zip``, unchanged)::

        Market-1501-v15.09.15/
          bounding_box_train/0002_c1s1_000451_03.jpg  # train
          query/0001_c1s1_001051_00.jpg               # queries
          bounding_box_test/0000_c1s1_000151_01.jpg   # gallery
          bounding_box_test/-1_c1s1_000401_03.jpg     # junk
          gt_bbox/ gt_query/ (not read)

    A name is ``PPPP_cCsS_FFFFFF_BB.jpg``: pid, camera (1-6), sequence,
    frame, box index. pid ``-1`` marks junk images (left out, counted) and
    pid ``0000`` distractors (DPM false alarms, kept in the gallery as
    negatives); both occur only in ``bounding_box_test/``. ``camid`` is the
    camera number minus 1 (0-5). Other files in the folders (e.g.
    ``Thumbs.db``) are ignored.

    Standard split (checked with ``check_counts=True``):

    ============ ==================== ========== ===========================
    subset       folder               identities images
    ============ ==================== ========== ===========================
    train        bounding_box_train   751        12,936
    query        query                750        3,368
    gallery      bounding_box_test    751 (750   15,913 (of 19,732 files:
                                      + pid 0)   3,819 junk left out)
    ============ ==================== ========== ===========================

    Splits: ``'train'`` and ``'test'`` (query items, then gallery items).
    Evaluate with ``ReIDMetric(settings='market1501')``.

    Args: see :class:`StandardReIDDataset`.
    """

    DATASET_NAME = 'Market-1501'
    LAYOUT = ('Market-1501-v15.09.15/{bounding_box_train,query,'
              'bounding_box_test}/PPPP_cCsS_FFFFFF_BB.jpg (pid, camera, '
              'sequence, frame, box), e.g. 0002_c1s1_000451_03.jpg')
    NUM_CAMERAS = 6
    DISTRACTOR_PID = 0
    NAME_RE = re.compile(r'(?P<pid>-1|\d+)_c(?P<cam>\d+)s\d+_\d+_\d+')
    PATTERN = ('PPPP_cCsS_FFFFFF_BB.jpg (pid, camera, sequence, frame, '
               'box), e.g. 0002_c1s1_000451_03.jpg')
    SOURCES = {
        'train': (('bounding_box_train', 'train'), ),
        'test': (('query', 'query'), ('bounding_box_test', 'gallery')),
    }
    EXPECTED_IMAGES = {
        'bounding_box_train': 12936,
        'query': 3368,
        'bounding_box_test': 15913,
    }
    EXPECTED_JUNK = {'bounding_box_test': 3819}
    EXPECTED_IDS = {'train': 751, 'query': 750, 'gallery': 751}
