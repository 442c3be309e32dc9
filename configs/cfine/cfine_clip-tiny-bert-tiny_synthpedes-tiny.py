# Tiny CFine with the paper's text side (a from-scratch BERT and a WordPiece
# vocabulary learnt from the SynthPedes training captions), on CPU:
#   python tools/dataset_converters/build_wordpiece_vocab.py \
#       data/synth-pedes data/synth-pedes/vocab.txt
#   python tools/train.py \
#       configs/cfine/cfine_clip-tiny-bert-tiny_synthpedes-tiny.py
_base_ = ['./cfine_clip-tiny_synthpedes-tiny.py']
vocab_file = 'data/synth-pedes/vocab.txt'
model = dict(
    text_encoder=dict(
        _delete_=True,
        type='BertTextEncoder',
        # 256 wide to match the image tower's projected tokens for MGF
        config=dict(
            hidden_size=256,
            num_hidden_layers=4,
            num_attention_heads=4,
            intermediate_size=1024,
            max_position_embeddings=128),
        vocab_file=vocab_file,
        output_attn=True),
    text_global='cls')
text_pipeline = [
    dict(
        type='TokenizeCaption',
        tokenizer=dict(
            type='BertWordPieceTokenizer',
            vocab_file=vocab_file,
            context_length=100),
        truncation='keep_eot'),
]
train_dataloader = dict(dataset=dict(text_pipeline=text_pipeline))
val_dataloader = dict(dataset=dict(text_pipeline=text_pipeline))
test_dataloader = dict(dataset=dict(text_pipeline=text_pipeline))
