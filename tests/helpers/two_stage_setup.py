"""A small CLIP-ReID / CCAF set-up for the two-stage loop tests.

Micro CLIP (patch 8), 64x32 images, a SynthCC of 8 training identities;
shared by ``test_engine/test_two_stage_loop.py`` and the multi-process
tests in ``test_engine/test_two_stage_ddp.py`` (whose worker processes
import :func:`ddp_worker` from here).
"""
import json
import os
import os.path as osp
from typing import List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'configs/ccaf/ccaf_clip-tiny_synthcc-tiny.py')
BASELINE = osp.join(ROOT,
                    'configs/ccaf/ccaf_clip-tiny_synthcc-tiny_ablation-'
                    'baseline.py')
IFP_ONLY = osp.join(ROOT,
                    'configs/ccaf/ccaf_clip-tiny_synthcc-tiny_ablation-'
                    'ifp.py')

SMALL = dict(
    train_ids=8,
    test_ids=4,
    outfits_per_id=2,
    cameras_per_outfit=2,
    frames_per_camera=2,
    num_cameras=4)

# transforms that draw random numbers: a process draws them in the order of
# the items it loads, so one process and two see different augmentations
RANDOM_TRANSFORMS = ('RandomFlip', 'JointRandomCrop', 'RandomCrop',
                     'RandomErasing', 'TransformBroadcaster')


def small_cfg(base: str, data_root: str, work_dir: str,
              max_epochs: int = 2, augment: bool = True,
              small: Optional[dict] = None):
    """The config ``base`` shrunk to the micro CLIP and the small SynthCC.

    Args:
        augment: Keep the training pipeline's random transforms.
        small: The SynthCC sizes the data was generated with (``SMALL``).
    """
    small = small or SMALL
    from mmengine.config import Config

    from mmreid_clip.compat import apply_patches
    from mmreid_clip.utils import fit_loader_options, register_all_modules
    register_all_modules()
    apply_patches()  # safe checkpoint loading, as tools/train.py does
    cfg = Config.fromfile(base)
    # 64x32 inputs for the micro CLIP (patch 8): resize the 128x64 images
    for loader in ('train_dataloader', 'stage1_dataloader',
                   'test_dataloader', 'val_dataloader'):
        ds = cfg[loader].dataset
        ds.data_root = data_root
        for t in ds.pipeline:
            if t['type'] == 'Resize':
                t['scale'] = (32, 64)
            if t['type'] in ('JointRandomCrop', 'RandomCrop'):
                t['crop_size'] = (64, 32)
        if not augment and loader == 'train_dataloader':
            ds.pipeline = [
                t for t in ds.pipeline if t['type'] not in RANDOM_TRANSFORMS
            ]
        cfg[loader].num_workers = 0
        # as setup_runtime does (these runners skip it)
        fit_loader_options(cfg[loader])
    cfg.train_dataloader.batch_size = 16
    cfg.train_dataloader.sampler.batch_size = 16
    m = cfg.model
    m.image_encoder.update(arch='clip-micro', pretrained=None,
                           img_size=(64, 32))
    m.text_encoder.update(arch='clip-micro', pretrained=None)
    m.head.in_channels = (64, 48)
    m.num_classes = small['train_ids']
    if m.get('num_clothes'):
        m.num_clothes = small['train_ids'] * small['outfits_per_id']
    cfg.train_cfg.update(max_epochs=max_epochs, stage1_epochs=1,
                         stage1_batch_size=16, val_interval=1, val_begin=2)
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=3)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    return cfg


def run_and_record(cfg, out: str, resume_from: Optional[str] = None) -> None:
    """Train ``cfg``, validate, and write what the tests compare to
    ``out`` (``.pth``: parameters, buffers, per-iteration losses and the
    final metrics)."""
    import torch
    from mmengine.runner import Runner
    if resume_from:
        cfg.resume = True
        cfg.load_from = resume_from
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val_loop.run()
    model = getattr(runner.model, 'module', runner.model)
    hub = runner.message_hub
    losses = {}
    for key in hub.log_scalars:
        if key.startswith('train/loss'):
            values, _ = hub.get_scalar(key).data
            losses[key] = [float(v) for v in values]
    torch.save(
        dict(
            state={k: v.detach().clone()
                   for k, v in model.state_dict().items()},
            losses=losses,
            metrics={k: float(v)
                     for k, v in metrics.items()}), out)


def ddp_worker(rank: int, world: int, port: int, spec_json: str) -> None:
    """One process of a gloo run (``torch.multiprocessing`` target).

    ``spec_json``: ``base``, ``data_root``, ``work_dir``, ``out`` (a
    ``{rank}`` placeholder), ``max_epochs``, ``augment``, ``resume_from``
    and ``cfg_options`` (dotted key -> value, merged last).
    """
    import torch
    import torch.distributed as dist

    from mmreid_clip.utils import finish_distributed
    spec = json.loads(spec_json)
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        cfg = small_cfg(spec['base'], spec['data_root'], spec['work_dir'],
                        spec['max_epochs'], spec['augment'])
        cfg.merge_from_dict(spec.get('cfg_options') or {})
        cfg.launcher = 'pytorch'
        cfg.env_cfg.dist_cfg = dict(backend='gloo')
        run_and_record(cfg, spec['out'].format(rank=rank),
                       spec.get('resume_from'))
        # as tools/train.py ends (barrier, settle, teardown): a gloo rank
        # torn down at once sometimes aborted after a successful run
        # (docs/reliability.md §7)
        finish_distributed()
    finally:
        if dist.is_initialized():  # after an error: no barrier to hang in
            dist.destroy_process_group()


def run_processes(world: int, base: str, data_root: str, work_dir: str,
                  out: str, max_epochs: int = 2, augment: bool = False,
                  resume_from: Optional[str] = None,
                  cfg_options: Optional[dict] = None) -> List[str]:
    """Run :func:`ddp_worker` on ``world`` gloo processes; the out files."""
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    spec = json.dumps(
        dict(
            base=base,
            data_root=data_root,
            work_dir=work_dir,
            out=out,
            max_epochs=max_epochs,
            augment=augment,
            resume_from=resume_from,
            cfg_options=cfg_options))
    mp.start_processes(
        ddp_worker, args=(world, port, spec), nprocs=world,
        start_method='spawn')
    return [out.format(rank=r) for r in range(world)]
