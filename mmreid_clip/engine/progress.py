"""A one-line progress bar for interactive terminals, silent in logs.

Training, testing, the stage-1 feature cache and gallery indexing draw a
bar on ``stderr`` when it is a terminal (and on the main process only);
redirected to a file or a pipe (CI, ``nohup``, ``tee`` into a log) nothing
is drawn, so logs hold only the LoggerHook's lines. ``MMREID_PROGRESS=1``
forces the bar, ``MMREID_PROGRESS=0`` switches it off.
"""
import os
import sys
import time
from typing import Iterable, Iterator, Optional, TypeVar

__all__ = ['ProgressLine', 'interactive', 'progress']

T = TypeVar('T')


def interactive(stream=None) -> bool:
    """Whether to draw progress bars on ``stream`` (default stderr)."""
    forced = os.environ.get('MMREID_PROGRESS')
    if forced is not None and forced.strip() != '':
        return forced.strip().lower() not in ('0', 'false', 'no', 'off')
    try:
        from mmengine.dist import get_rank
        if get_rank() != 0:
            return False
    except Exception:  # noqa: BLE001 - no distributed set-up at all
        pass
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _hms(seconds: float) -> str:
    seconds = int(max(seconds, 0) + 0.5)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f'{h}:{m:02d}:{s:02d}' if h else f'{m:02d}:{s:02d}'


class ProgressLine:
    """One redrawn line: ``desc |#####     | 45/120 [00:12<00:20, 3.5 it/s]``.

    Does nothing unless ``enabled``. Redraws at most every ``min_interval``
    seconds; :meth:`clear` wipes the line (before a log line is printed)
    and the next :meth:`update` draws it again.

    Args:
        total (int, optional): Steps, when known.
        desc (str): Text before the bar.
        enabled (bool, optional): Default :func:`interactive`.
        stream: Default ``sys.stderr``.
        min_interval (float): Seconds between redraws.
    """

    def __init__(self,
                 total: Optional[int] = None,
                 desc: str = '',
                 enabled: Optional[bool] = None,
                 stream=None,
                 min_interval: float = 0.2) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = interactive(self.stream) if enabled is None else enabled
        self.total = total
        self.desc = desc
        self.count = 0
        self.min_interval = min_interval
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._shown = False

    def text(self, width: int = 100) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.count / elapsed if elapsed > 0 else 0.0
        speed = (f'{rate:.2f} it/s' if rate >= 1 or rate == 0 else
                 f'{1 / rate:.2f} s/it')
        if self.total:
            left = (self.total - self.count) / rate if rate > 0 else 0
            stats = (f' {self.count}/{self.total} [{_hms(elapsed)}<'
                     f'{_hms(left)}, {speed}]')
            room = max(10, min(30, width - len(self.desc) - len(stats) - 4))
            done = int(room * min(self.count / self.total, 1.0))
            bar = '#' * done + ' ' * (room - done)
            return f'{self.desc} |{bar}|{stats}'
        return f'{self.desc} {self.count} [{_hms(elapsed)}, {speed}]'

    def draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        try:
            width = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            width = 100
        line = self.text(width)[:max(width - 1, 20)]
        self.stream.write('\r' + line + '\033[K')
        self.stream.flush()
        self._shown = True

    def update(self, n: int = 1) -> None:
        self.count += n
        self.draw(force=self.total is not None and self.count >= self.total)

    def clear(self) -> None:
        """Wipe the line (e.g. before a log line goes to the terminal)."""
        if self.enabled and self._shown:
            self.stream.write('\r\033[K')
            self.stream.flush()
            self._shown = False

    def close(self) -> None:
        self.clear()


def progress(iterable: Iterable[T],
             total: Optional[int] = None,
             desc: str = '',
             enabled: Optional[bool] = None) -> Iterator[T]:
    """Yield from ``iterable`` with a :class:`ProgressLine` (interactive
    terminals only), wiped when done."""
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    line = ProgressLine(total, desc, enabled)
    try:
        for item in iterable:
            yield item
            line.update()
    finally:
        line.close()
