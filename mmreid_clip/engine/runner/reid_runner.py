"""MMEngine's Runner with a short, honest start-up on the console."""
import logging
import os.path as osp
import sys
from collections import OrderedDict

import torch
from mmengine.runner import Runner, find_latest_checkpoint
from mmengine.utils.dl_utils import collect_env

from mmreid_clip.registry import RUNNERS

#: Console messages of mmengine's start-up kept for the log file only:
#: prefixes of the message text.
FILE_ONLY_PREFIXES = (
    'Config:\n',
    'Hooks will be executed in the following order',
    'paramwise_options -- ',
    'Distributed training is not used, all SyncBatchNorm',
    '"FileClient" will be deprecated',
    '"HardDiskBackend" is the alias of "LocalBackend"',
    '\n' + '-' * 60 + '\nSystem environment:',
)
#: Logged by the open_clip builder when a tower has no pretrained weights.
_RANDOM_INIT = 'random initialisation'


class _ConsoleFilter(logging.Filter):
    """Keep the file-only start-up messages off the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, 'file_only', False):
            return False
        return not str(record.msg).startswith(FILE_ONLY_PREFIXES)


class _CheckpointFollows(logging.Filter):
    """Say, on the "random initialisation" lines of the model build, that a
    checkpoint loaded afterwards replaces those weights."""

    def __init__(self, checkpoint: str) -> None:
        super().__init__()
        self.checkpoint = checkpoint

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        if msg.endswith(_RANDOM_INIT):
            record.msg = (f'{msg}, replaced by the checkpoint loaded next '
                          f'({self.checkpoint})')
        return True


def device_line(world_size: int, threads: bool = True) -> str:
    """The device this process computes on, said plainly."""
    out = f'{world_size} process' + ('es' if world_size > 1 else '')
    if threads:
        out += f', {torch.get_num_threads()} torch CPU threads'
    if torch.cuda.is_available():
        idx = torch.cuda.current_device()
        return (f'cuda:{idx} ({torch.cuda.get_device_name(idx)}; '
                f'{torch.cuda.device_count()} visible), {out}')
    return f'cpu (no CUDA device), {out}'


@RUNNERS.register_module()
class ReIDRunner(Runner):
    """``Runner`` whose console start-up fits on a screen.

    The console gets a short summary (versions, the device actually used,
    the torch thread count, the seed, where the config and the log are
    written); the full environment report, the config, the hook order and
    mmengine's per-parameter optimizer options go to the log file in the
    work dir only (the config is also dumped there as a ``.py`` file). With
    ``verbose = True`` (``tools/train.py --verbose``) the console gets
    everything, as with mmengine's ``Runner``. The device line names the
    device used ("cpu (no CUDA device), 1 process") instead of mmengine's
    "GPU number: 1". When a checkpoint is loaded after the model is built,
    the builder's "random initialisation" lines say so.

    ``tools/train.py`` and ``tools/test.py`` build this runner;
    ``runner_type = 'ReIDRunner'`` in a config selects it elsewhere.
    """

    #: Show the full start-up on the console.
    verbose = False

    def build_logger(self, log_level='INFO', log_file=None, **kwargs):
        logger = super().build_logger(log_level, log_file, **kwargs)
        checkpoint = self._checkpoint_to_load()
        for handler in logger.handlers:
            for f in list(handler.filters):
                if isinstance(f, (_ConsoleFilter, _CheckpointFollows)):
                    handler.removeFilter(f)
            if checkpoint:
                handler.addFilter(_CheckpointFollows(checkpoint))
            is_console = (isinstance(handler, logging.StreamHandler)
                          and not isinstance(handler, logging.FileHandler))
            if is_console and not self.verbose:
                handler.addFilter(_ConsoleFilter())
        return logger

    def _checkpoint_to_load(self):
        cfg = self.cfg
        if cfg.get('load_from'):
            return cfg.get('load_from')
        if cfg.get('resume'):
            return find_latest_checkpoint(self._work_dir)
        return None

    def _log_env(self, env_cfg: dict) -> None:
        env = collect_env()
        runtime_env = OrderedDict()
        runtime_env.update(env_cfg)
        runtime_env.update(self._randomness_cfg)
        runtime_env['seed'] = self._seed
        runtime_env['Distributed launcher'] = self._launcher
        runtime_env['Distributed training'] = self._distributed
        runtime_env['Device'] = device_line(self._world_size)
        dash = '-' * 60
        self.logger.info('\n' + dash + '\nSystem environment:\n    ' +
                         '\n    '.join(f'{k}: {v}' for k, v in env.items()) +
                         '\n\nRuntime environment:\n    ' +
                         '\n    '.join(f'{k}: {v}'
                                       for k, v in runtime_env.items()) +
                         '\n' + dash + '\n')
        if self.cfg._cfg_dict:
            self.logger.info(f'Config:\n{self.cfg.pretty_text}')
        if self.verbose:
            return
        from mmreid_clip.utils.setup_env import THREADS_NOTE
        import mmengine
        name = osp.basename(self.cfg.filename) if self.cfg.filename else ''
        lines = [
            f'Python {sys.version.split()[0]}, torch {torch.__version__}, '
            f'mmengine {mmengine.__version__}',
            f'Device: {device_line(self._world_size, threads=False)}',
        ]
        if THREADS_NOTE:
            lines.append(f'torch threads: {THREADS_NOTE[0]}')
        lines.append(f'Seed: {self._seed}; work dir: {self._work_dir}' +
                     (f' (config dumped as {name}; environment, config and '
                      'hooks in the .log file)' if name else ''))
        self.logger.info('\n  '.join(lines))
