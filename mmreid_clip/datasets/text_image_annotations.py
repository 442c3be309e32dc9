"""Reading and validating the annotation file of a text-image dataset
(:class:`~.text_image_dataset.TextImageDataset`): the JSON list, each
entry's fields and types, confined image paths, and the bad-sample policy
(raise, or record a skip) for what fails.
"""
import json
import os
import os.path as osp

from .bad_samples import AnnotationError


class TextImageAnnotationMixin:
    """The annotation-file part of ``TextImageDataset``: it reads the class
    attributes ``DATASET_NAME``, ``DEFAULT_ANN_FILES``, ``PATH_KEY``,
    ``SPLITS`` and ``LAYOUT`` and the dataset's ``ann_file``, ``data_root``,
    ``data_prefix``, ``allow_outside_root``, ``on_bad_sample`` and ``skipped``.
    """

    def _default_ann_file(self, data_root: str) -> str:
        if not self.DEFAULT_ANN_FILES:
            raise ValueError(f'{type(self).__name__} needs ann_file (it has '
                             'no standard annotation file name)')
        for name in self.DEFAULT_ANN_FILES:
            if osp.isfile(osp.join(data_root or '', name)):
                return name
        # none exists: keep the first, the error names all of them
        return self.DEFAULT_ANN_FILES[0]

    def _missing_ann_file_message(self) -> str:
        names = ' or '.join(self.DEFAULT_ANN_FILES) or 'the annotation file'
        return (f'{self.DATASET_NAME}: annotation file {self.ann_file!r} not '
                f'found (data_root={self.data_root!r}; expected {names}). '
                f'Expected layout: {self.LAYOUT}. See README.md, '
                '"Preparing datasets".')

    def _read_json(self) -> list:
        path = self.ann_file
        if not path or not osp.isfile(path):
            raise FileNotFoundError(self._missing_ann_file_message())
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise AnnotationError(
                f'{path}: not valid JSON: {e.msg} at line {e.lineno}, column '
                f'{e.colno}') from e
        except UnicodeDecodeError as e:
            raise AnnotationError(f'{path}: not UTF-8 text: {e}') from e
        except RecursionError:
            raise AnnotationError(
                f'{path}: JSON nested too deeply to be an annotation file '
                '(expected a list of flat entries)') from None
        if not isinstance(data, list):
            keys = (f' with keys {sorted(data)[:8]}'
                    if isinstance(data, dict) else '')
            raise AnnotationError(
                f'{path}: expected a JSON list with one entry per image, got '
                f'a {type(data).__name__}{keys}')
        self._check_format(data)
        return data

    def _check_format(self, entries: list) -> None:
        """Hook for whole-file checks before entries are parsed.

        Args:
            entries (list): The decoded JSON list.
        """

    @staticmethod
    def _describe(entry: dict, path_key: str) -> str:
        parts = []
        if 'id' in entry:
            parts.append(f'id={entry["id"]!r}')
        if path_key in entry:
            parts.append(f'{path_key}={entry[path_key]!r}')
        return f' ({", ".join(parts)})' if parts else ''

    def _parse_entry(self, index: int, entry) -> dict:
        """Validate one entry; return its split, path, id and captions.

        Entry-level problems raise :class:`AnnotationError`; bad captions
        are reported through :meth:`_reject` (raised, or dropped under
        ``on_bad_sample='skip'``), so the returned captions are the valid
        ones.
        """
        file = self.ann_file
        if not isinstance(entry, dict):
            raise AnnotationError(
                f'{file}: entry #{index} is a {type(entry).__name__}, '
                f'expected an object with split, captions, {self.PATH_KEY} '
                'and id')
        where = f'{file}: entry #{index}{self._describe(entry, self.PATH_KEY)}'
        for key in ('split', 'captions', self.PATH_KEY, 'id'):
            if key not in entry:
                hint = ''
                other = {'file_path': 'img_path', 'img_path': 'file_path'}
                if key == self.PATH_KEY and other.get(key) in entry:
                    hint = (f'; it has {other[key]!r} instead: is this the '
                            f'annotation file of another dataset?')
                raise AnnotationError(
                    f'{where} lacks the field {key!r} (fields: '
                    f'{sorted(entry)}){hint}')
        split, captions = entry['split'], entry['captions']
        path, pid = entry[self.PATH_KEY], entry['id']
        if not isinstance(split, str):
            raise AnnotationError(f'{where}: "split" must be a string, got '
                                  f'{type(split).__name__}')
        if split not in self.SPLITS:
            raise AnnotationError(
                f'{where}: unknown split {split!r}; {self.DATASET_NAME} has '
                f'{", ".join(self.SPLITS)}')
        if not isinstance(path, str) or not path.strip():
            raise AnnotationError(
                f'{where}: "{self.PATH_KEY}" must be a non-empty string, got '
                f'{path!r}')
        # bool is an int subclass; a true/false id is a broken file
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise AnnotationError(f'{where}: "id" must be an integer, got '
                                  f'{type(pid).__name__} {pid!r}')
        if not -2**63 <= pid < 2**63:
            raise AnnotationError(
                f'{where}: "id" {pid} is out of range (ids must fit in 64 '
                'bits)')
        path = self._confined(path, where)
        if not isinstance(captions, list):
            raise AnnotationError(
                f'{where}: "captions" must be a list of strings, got '
                f'{type(captions).__name__}')
        valid = []
        for j, caption in enumerate(captions):
            if not isinstance(caption, str):
                self._reject(f'{where}: caption {j} must be a string, got '
                             f'{type(caption).__name__}')
            elif not caption.strip():
                self._reject(
                    f'{where}: caption {j} is empty or only whitespace')
            else:
                valid.append(caption)
        return dict(split=split, path=path, pid=pid, captions=valid)

    def _confined(self, path: str, where: str) -> str:
        """``path`` normalised, refused when it leaves the image folder."""
        norm = osp.normpath(path)
        outside = (osp.isabs(norm) or norm == os.pardir
                   or norm.startswith(os.pardir + os.sep))
        if outside and not self.allow_outside_root:
            raise AnnotationError(
                f'{where}: "{self.PATH_KEY}" {path!r} points outside the '
                f'image folder {osp.abspath(self.data_prefix["img_path"])} '
                '(an absolute path or one climbing out with ..). Fix the '
                'entry, or pass allow_outside_root=True if the images '
                'really are elsewhere')
        return norm

    def _reject(self, message: str) -> None:
        """Raise :class:`AnnotationError`, or record a load-time skip."""
        if self.on_bad_sample == 'error':
            raise AnnotationError(message)
        self.skipped.append(message)
