# CUHK-PEDES as CFine's official code feeds it (docs/methods/cfine.md §2):
# 224x224 bicubic squash + flip, BERT WordPiece captions of 100 tokens,
# random pairs, batch 32. Images are decoded and resized with Pillow, as the
# official torchvision pipeline does: Pillow's bicubic resize antialiases
# when it shrinks, OpenCV's does not (up to 15 intensity levels apart on a
# 330x120 JPEG; docs/methods/fidelity.md).
_base_ = ['./cuhk_pedes.py']
img_size = (224, 224)
text_pipeline = [
    dict(
        type='TokenizeCaption',
        tokenizer=dict(
            type='BertWordPieceTokenizer',
            vocab_file='checkpoints/bert-base-uncased/vocab.txt',
            context_length=100),
        # as the official code: a caption over 100 pieces keeps its 99
        # first pieces after [CLS] and loses [SEP] (CFine reads [CLS])
        truncation='drop_eot'),
]
train_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='Resize', scale=(224, 224), interpolation='bicubic',
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='Resize', scale=(224, 224), interpolation='bicubic',
         backend='pillow'),
]
train_dataloader = dict(
    batch_size=32,
    drop_last=True,
    dataset=dict(pipeline=train_pipeline, text_pipeline=text_pipeline))
val_dataloader = dict(
    dataset=dict(pipeline=test_pipeline, text_pipeline=text_pipeline))
test_dataloader = dict(
    dataset=dict(pipeline=test_pipeline, text_pipeline=text_pipeline))
