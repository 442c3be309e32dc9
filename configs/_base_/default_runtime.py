# Runtime defaults shared by every config.
default_scope = 'mmreid_clip'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # keep the last checkpoints and the best one on the validation metric;
    # written to <name>.tmp and renamed, so a killed run never leaves a
    # truncated latest checkpoint (docs/reliability.md)
    checkpoint=dict(
        type='AtomicCheckpointHook',
        interval=1,
        max_keep_ckpts=3,
        save_best='auto',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # checkpoints carry the RNG state, so --resume repeats the random
    # augmentations of an uninterrupted run
    random_state=dict(type='RandomStateHook'),
    # a NaN/Inf loss stops training before the optimizer step
    # (action='skip' drops such steps instead)
    nonfinite_loss=dict(type='NonFiniteLossHook', action='raise'),
    # a loaded checkpoint that does not fit the model is reported by module
    # (tools/test.py makes any difference an error)
    checkpoint_match=dict(type='CheckpointMatchHook', strict=False),
    # identity classifiers must have as many classes as the training set
    # has identities: checked before the first iteration
    num_classes_check=dict(type='NumClassesCheckHook'),
    # several processes: buffers (BatchNorm statistics) averaged over the
    # ranks after every epoch, so all ranks validate, and the checkpoint
    # holds, one model (docs/reliability.md, "Distributed runs")
    sync_buffers=dict(type='SyncBuffersHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo on machines without CUDA
    dist_cfg=dict(backend='nccl'),
)

# LocalVisBackend writes <work_dir>/<timestamp>/vis_data/scalars.json, which
# tools/analysis/plot_logs.py plots. TensorBoard is opt-in (pip install -e
# ".[tensorboard]"): put '../_base_/runtime_tensorboard.py' in place of this
# file in _base_, or set in a config that inherits it
#   visualizer = dict(vis_backends=[dict(type='LocalVisBackend'),
#                                   dict(type='TensorboardVisBackend')])
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=True, window_size=20)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
