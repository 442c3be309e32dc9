# CCAF: CLIP-ReID's two stages plus the clothes prompts (reconstructed
# choice, docs/methods/ccaf.md §12 row 14): learnt with the identity prompts in
# stage 1, then updated by
# their own constant-lr "examiner" optimizer in stage 2 (CFM step A).
_base_ = ['./clip-reid_two-stage_120e-60e.py']
optim_wrapper = dict(
    prompt=dict(modules=['id_prompt', 'cfm.clothes_prompt']),
    clothes_prompt=dict(
        modules=['cfm.clothes_prompt'],
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=3.5e-4, weight_decay=1e-4)))
# mmengine wants a scheduler per optimizer: the examiner's lr is constant
param_scheduler = dict(clothes_prompt=[
    dict(type='ConstantLR', factor=1.0, by_epoch=True)
])
