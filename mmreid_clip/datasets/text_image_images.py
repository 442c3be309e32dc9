"""The image files of a text-image dataset
(:class:`~.text_image_dataset.TextImageDataset`): missing files checked
at load time, and an image that fails to load at access time (raised, or
counted and logged as a train skip).
"""
import os.path as osp
from typing import List

from .bad_samples import raise_or_skip_bad_image


class TextImageFileChecksMixin:
    """The image-file part of ``TextImageDataset``: it reads ``DATASET_NAME``,
    ``LAYOUT``, ``MISSING_FILES_HINT``, ``NUM_MISSING_SHOWN``,
    ``NUM_SKIPS_LOGGED`` and the dataset's ``ann_file``, ``split``,
    ``on_bad_sample``, ``test_mode``, ``num_bad_images`` and
    ``_image_entries``, and reports through ``_reject``.
    """

    def _check_images(self, image_rows: List[dict],
                      img_dir: str) -> List[dict]:
        """Raise on missing image files, or drop them (``'skip'``).

        Returns:
            list[dict]: The rows whose image exists.
        """
        missing = [r for r in image_rows if not osp.isfile(r['img_path'])]
        if not missing:
            return image_rows
        if self.on_bad_sample == 'skip':
            for r in missing:
                self._reject(
                    f'{self.ann_file}: entry #{r["index"]} (id={r["pid"]}): '
                    f'image {r["img_path"]} does not exist; its '
                    f'{len(r["captions"])} captions are dropped with it')
            gone = {id(r) for r in missing}
            return [r for r in image_rows if id(r) not in gone]
        shown = '\n  '.join(f'entry #{r["index"]} (id={r["pid"]}): '
                            f'{r["img_path"]}'
                            for r in missing[:self.NUM_MISSING_SHOWN])
        folder = ('' if osp.isdir(img_dir) else
                  f' The image folder {img_dir} does not exist.')
        hint = f' {self.MISSING_FILES_HINT}' if self.MISSING_FILES_HINT else ''
        raise FileNotFoundError(
            f'{self.ann_file}: {len(missing)} of {len(image_rows)} images of '
            f'split {self.split!r} are missing, e.g.\n  {shown}\n'
            f'Expected layout: {self.LAYOUT}.{folder}{hint} Pass '
            'check_files=False to skip this check, or on_bad_sample=\'skip\' '
            'to drop these images (counted and logged).')

    def _bad_image(self, idx: int, info: dict, problem: str,
                   err: Exception) -> None:
        """Raise :class:`BadImageError`, or count and log a train skip."""
        image_id = info.get('image_id')
        entry = (
            self._image_entries[image_id] if isinstance(image_id, int)
            and 0 <= image_id < len(self._image_entries) else None)
        where = (f'{self.DATASET_NAME} {self.split}: item {idx} (image_id='
                 f'{image_id}, pid={info.get("pid")}' +
                 (f', annotation entry #{entry} of {self.ann_file}'
                  if entry is not None else '') + ')')
        message = (f'{where}: image {info["img_path"]}: {problem} '
                   f'[{type(err).__name__}: {err}]')
        raise_or_skip_bad_image(self, message, err, self.NUM_SKIPS_LOGGED)
