"""
A Qwen2.5-VL base folder built offline: random weights of a chosen shape, a small BPE tokenizer with
Qwen's special tokens and chat template, and Qwen's own image processor, so that pretrained/qwen_vl.py
runs (and is tested, and timed on a GPU) where no hub is reachable.

    python -m pretrained.qwen_offline OUT                 # tiny: 64 wide, 2 + 2 layers, CPU seconds
    python -m pretrained.qwen_offline OUT --shape 3b      # Qwen2.5-VL-3B's shape (random), for a GPU

What is Qwen's and what is not. The model class, its vision tower (14 px patches, 2x2 merger, window
attention), M-RoPE and the processor's smart resize are transformers' Qwen2.5-VL code, unchanged.
The tokenizer is a byte-level BPE trained on the question corpus (a few hundred tokens, not 151,643)
with Qwen's specials at their roles: <|endoftext|> pads, <|im_start|>/<|im_end|> frame a turn
(<|im_end|> is eos), <|vision_start|><|image_pad|><|vision_end|> hold an image, whose <|image_pad|>
the processor repeats once per merged token. The chat template is Qwen2.5-VL's for an image and text
turn (with its default system prompt). The image processor is Qwen2-VL's (its mean/std, bicubic
resize and 28 px factor), with min/max pixels chosen small so a 32-64 px image is a 2x2 merged grid.
(Qwen2_5_VLProcessor, which joins the two, needs torchvision for videos; pretrained/qwen_vl.py uses
the two parts.)
Worked number: a 64x64 image with min_pixels = max_pixels = 56·56 resizes to 56x56: a 4x4 patch grid,
2x2 = 4 merged tokens, so the prompt holds 4 <|image_pad|> tokens.
"""
import argparse
import os

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (PreTrainedTokenizerFast, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
                          Qwen2VLImageProcessorPil)

SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|vision_end|>',
            '<|vision_pad|>', '<|image_pad|>', '<|video_pad|>']
# Qwen2.5-VL's template for turns of text and images (its video and tool branches left out)
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

# (text config, vision config) overrides of transformers' defaults; a shape with a vocab_size keeps it
# (the embedding's true cost) though the offline tokenizer uses only its first few hundred rows
QWEN_VIT = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, window_size=112,
                fullatt_block_indexes=[7, 15, 23, 31])          # Qwen2.5-VL-3B/7B's vision tower
SHAPES = {
    'tiny': (dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, rope_parameters={'rope_type': 'default', 'rope_theta': 1e6,
                                                          'mrope_section': [2, 3, 3]}),
             dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                  window_size=56, fullatt_block_indexes=[1])),
    # Qwen/Qwen2.5-0.5B-Instruct's LLM (896 x 24, 14 heads, 2 K/V) with Qwen2.5-VL's ViT: no such
    # released model, a GPU check that fits 8 ranks' CPU copies in 128 GB
    '0.5b': (dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, vocab_size=151936, rope_parameters={'rope_type': 'default', 'rope_theta': 1e6,
                                                                             'mrope_section': [8, 12, 12]}),
             dict(QWEN_VIT, out_hidden_size=896)),
    # Qwen/Qwen2.5-VL-3B-Instruct's config.json: LLM 2048 x 36 (16 heads, 2 K/V), ViT 1280 x 32
    '3b': (dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                num_key_value_heads=2, vocab_size=151936, rope_parameters={'rope_type': 'default', 'rope_theta': 1e6,
                                                                           'mrope_section': [16, 24, 24]}),
           dict(QWEN_VIT, out_hidden_size=2048)),
}


def offline_tokenizer(corpus: list[str], vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """A byte-level BPE (as Qwen's) trained on corpus, with Qwen's special tokens; eos <|im_end|>,
    pad <|endoftext|>. Deterministic for a given corpus."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token='<|im_end|>', pad_token='<|endoftext|>',
                                   additional_special_tokens=SPECIALS[1:])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def image_processor(min_pixels: int = 56 * 56, max_pixels: int = 56 * 56) -> Qwen2VLImageProcessorPil:
    """Qwen2-VL's image processor (saved as Qwen2VLImageProcessor; the PIL backend needs no torchvision);
    min/max pixels bound the resized image's area."""
    return Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)


def random_base(path: str, shape: str = 'tiny', corpus: list[str] | None = None, seed: int = 0,
                min_pixels: int = 56 * 56, max_pixels: int = 56 * 56, tie: bool = True) -> str:
    """Write a random Qwen2.5-VL of SHAPES[shape] with the offline tokenizer and processor to path."""
    if shape not in SHAPES:
        raise ValueError(f'unknown shape {shape!r}; choose from {sorted(SHAPES)}')
    if corpus is None:
        from data.synthetic import tokenizer_corpus
        corpus = tokenizer_corpus()
    tok = offline_tokenizer(corpus)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    text, vision = SHAPES[shape]
    config = Qwen2_5_VLConfig(
        text_config=dict({'vocab_size': len(tok), **text}, bos_token_id=None, eos_token_id=ids['<|im_end|>'],
                         pad_token_id=ids['<|endoftext|>']),
        vision_config=vision, image_token_id=ids['<|image_pad|>'], video_token_id=ids['<|video_pad|>'],
        vision_start_token_id=ids['<|vision_start|>'], vision_end_token_id=ids['<|vision_end|>'],
        tie_word_embeddings=tie)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids['<|im_end|>']
    model.generation_config.pad_token_id = ids['<|endoftext|>']
    model.save_pretrained(path)
    tok.save_pretrained(path)
    image_processor(min_pixels, max_pixels).save_pretrained(path)
    return path


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('out')
    p.add_argument('--shape', default='tiny', choices=sorted(SHAPES))
    p.add_argument('--pixels', type=int, default=56 * 56, help='min and max pixels of the resized image')
    a = p.parse_args()
    print(random_base(a.out, a.shape, min_pixels=a.pixels, max_pixels=a.pixels))
