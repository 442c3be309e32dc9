# default_runtime.py with TensorBoard logging on top of the JSON logs.
# Needs the tensorboard package: pip install -e ".[tensorboard]".
#
# Use it in place of default_runtime.py in a config's _base_:
#   _base_ = ['../_base_/datasets/synth_pedes.py',
#             '../_base_/runtime_tensorboard.py']
# Scalars (losses, lr, metrics) go to <work_dir>/<timestamp>/vis_data/ as
# TensorBoard event files next to scalars.json (still read by
# tools/analysis/plot_logs.py):
#   tensorboard --logdir work_dirs/
# A config that already inherits default_runtime.py (through a model config)
# cannot list this file beside it (mmengine refuses duplicate keys among
# bases); set the visualizer line below in that config instead.
_base_ = ['./default_runtime.py']

visualizer = dict(vis_backends=[
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
])
