"""Small synthetic-data plans shared by the tests that generate data."""

#: A SynthCC v2 plan small enough to generate twice in a test (a few
#: seconds): ``generate_synth_cc_v2(root, seed=..., **MINI_CC_V2)``.
MINI_CC_V2 = dict(
    size='tiny',
    train_ids=2,
    test_ids=2,
    train_images_per_id=8,
    frames_per_camera=1,
    num_scenes=4)
