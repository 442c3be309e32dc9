# CLIP-ReID ViT-B/16 + SIE + OLP on MSMT17, evaluated with k-reciprocal
# re-ranking as the official README's re-ranked MSMT17 numbers: k1 = 50,
# k2 = 15, lambda = 0.3 with the k-reciprocal authors' *released* re-ranking
# code (convention='released': each distance row divided by its maximum,
# float16 steps, strict 2/3 test; the paper's equations give other numbers).
# The pool holds 11,659 queries + 82,161 gallery images = 93,820 items,
# above the default max_items; the re-ranked query x gallery matrix alone
# takes 3.8 GB of memory.
#   python tools/test.py \
#       configs/clip_reid/clip-reid_vit-b16_msmt17_sie-olp_rerank.py CKPT
_base_ = ['./clip-reid_vit-b16_msmt17_sie-olp.py']
test_evaluator = dict(
    rerank=dict(
        k1=50, k2=15, lambda_value=0.3, convention='released',
        max_items=100000))
# validation during training stays without re-ranking (cheap)
