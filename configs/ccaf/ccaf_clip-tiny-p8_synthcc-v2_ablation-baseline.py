# Ablation row "CLIP-ReID baseline" on SynthCC v2 (pre-registered study,
# README.md): no IFP, no CFM, no masks.
_base_ = ['./ccaf_clip-tiny-p8_synthcc-v2.py']
model = dict(type='CLIPReID', ifp=None, cfm=None, num_clothes=None)
optim_wrapper = dict(prompt=dict(modules=['id_prompt']), clothes_prompt=None)
train_dataloader = dict(
    dataset=dict(with_mask=False, pipeline={{_base_.train_pipeline_nomask}}))
stage1_dataloader = dict(
    dataset=dict(with_mask=False, pipeline={{_base_.stage1_pipeline_nomask}}))
