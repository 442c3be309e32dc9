# CCAF (arXiv 2406.09198): the CLIP-ReID model plus IFP and CFM, every
# reconstructed choice (docs/methods/ccaf.md §12) a config entry here.
_base_ = ['./clip-reid_vit-b16.py']
model = dict(
    type='CCAF',
    num_clothes=None,
    ifp=dict(
        type='IFP',
        # reconstructed choice (ccaf.md §12 row 9): per-identity centroid MSE
        # on BN(f12), BN(fp), weight 1;
        # detach_target=True makes the shielding branch a stop-grad teacher
        i2i_loss=dict(
            type='CentroidAlignLoss', detach_target=False, loss_weight=1.0),
        i2i_keys=('bn_f12', 'bn_fp'),
        shield_id_tri=True,  # reconstructed choice, ccaf.md §12 row 10
        shield_i2t=False,
        prompt_view='shield_images',  # GCATP: prompts on shielding images
        # BN statistics over raw + shielding images as one batch; 'raw'
        # keeps them those of raw images (docs/methods/fidelity.md)
        bn_stats='joint'),
    cfm=dict(
        type='CFM',
        prompt=dict(
            type='PromptLearner',
            template='A photo of a {} clothes.',
            num_ctx=4),
        mode='adv',  # ccaf.md §12 row 11; 'proj' = variant B
        scale=16.0,
        stage1_loss=dict(type='SupConLoss', temperature=1.0),
        examine_loss=dict(type='mmpretrain.CrossEntropyLoss',
                          loss_weight=1.0),
        adv_loss=dict(
            type='ClothesAdversarialLoss', epsilon=0.1, loss_weight=1.0),
        proj_loss=dict(type='ClothesOrthogonalLoss', loss_weight=1.0),
        start_epoch=0,  # reconstructed choice, ccaf.md §12 row 12
        examine_every=1,
        inner_steps=1,
        # examined features: fp, which lives in the clothes prompts' text
        # space; ('f12', 'fp') also examines f12 through a learnt adapter
        # (then add 'cfm.adapters' to optim_wrapper.clothes_prompt.modules)
        feature_keys=('fp', ),
        # adversary on the clothes features from before the examiner's
        # update ('post': re-encoded after it, as CAL's classifier)
        adversary='pre'))
