"""Occluded-Duke (Miao, Wu, Liu, Ding, Yang, "Pose-Guided Feature Alignment
for Occluded Person Re-Identification", ICCV 2019), a re-split of
DukeMTMC-reID."""
from mmreid_clip.registry import DATASETS
from .dukemtmc import DukeMTMCReID


@DATASETS.register_module()
class OccludedDuke(DukeMTMCReID):
    """Occluded-Duke: DukeMTMC-reID images re-split so that every query
    and about 10% of the gallery images show an occluded person.

    Layout: the ``Occluded_Duke/`` folder that the authors' script
    ``convert_duke_to_occduke.py`` writes from ``DukeMTMC-reID.zip``, with
    DukeMTMC-reID's folders and names (``PPPP_cC_fFFFFFFF.jpg``, cameras
    1-8, ``camid`` = camera number minus 1)::

        Occluded_Duke/
          bounding_box_train/0001_c2_f0046182.jpg
          query/...
          bounding_box_test/...

    Standard split (checked with ``check_counts=True``):

    ========= ================== ========== =======
    subset    folder             identities images
    ========= ================== ========== =======
    train     bounding_box_train 702        15,618
    query     query              519        2,210
    gallery   bounding_box_test  1,110      17,661
    ========= ================== ========== =======

    Splits: ``'train'`` and ``'test'`` (query items, then gallery items).
    Evaluate with ``ReIDMetric(settings='occluded_duke')``.

    Args: see :class:`StandardReIDDataset`.
    """

    DATASET_NAME = 'Occluded-Duke'
    LAYOUT = ('Occluded_Duke/{bounding_box_train,query,bounding_box_test}/'
              'PPPP_cC_fFFFFFFF.jpg (pid, camera, frame), written by '
              'convert_duke_to_occduke.py from DukeMTMC-reID.zip')
    EXPECTED_IMAGES = {
        'bounding_box_train': 15618,
        'query': 2210,
        'bounding_box_test': 17661,
    }
    EXPECTED_IDS = {'train': 702, 'query': 519, 'gallery': 1110}
