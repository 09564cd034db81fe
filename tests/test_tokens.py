"""
Guards tokens.py: the character tokenizer and the question-corpus BPE round-trip every text exactly
and survive save_pretrained; the BPE is word-level on questions, digit-level on numbers and
deterministic; a prompt puts the visual positions (−1) right after bos.

    python -m pytest tests/test_tokens.py -q
"""
from data import synthetic
from data.tokens import bpe_tokenizer, char_tokenizer, prompt_ids


def test_char_tokenizer_round_trips_and_saves(tmp_path):
    tok = char_tokenizer()
    text = 'red box 0.41 -1.12 3.27\nWhere? (x, y) = [a_b]'
    ids = tok(text, add_special_tokens=False).input_ids
    assert len(ids) == len(text) and tok.decode(ids) == text
    assert tok.unk_token_id in tok('é', add_special_tokens=False).input_ids
    ids = prompt_ids(tok, 'Hi?', n_image=3)
    assert ids == [tok.bos_token_id, -1, -1, -1] + tok('Hi?\n', add_special_tokens=False).input_ids
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text).input_ids == tok(text).input_ids and again.eos_token == '<eos>'


def test_bpe_tokenizer_is_word_level_on_questions_digit_level_on_numbers_and_exact(tmp_path):
    tok = bpe_tokenizer(synthetic.tokenizer_corpus())
    q = synthetic.PHRASES['depth'][0].format(a='red table')
    assert len(tok(q, add_special_tokens=False).input_ids) < len(q) / 3             # words, not characters
    for text in ('7.91', 'red table 0.41 -1.12 3.27\nblue sofa 1.00', 'An unseen word: refrigerator!', q):
        ids = tok(text, add_special_tokens=False).input_ids
        assert tok.decode(ids) == text and tok.unk_token_id not in ids
    digits = tok('12.34', add_special_tokens=False).input_ids
    assert tok.convert_ids_to_tokens(digits) == list('12.34')                      # one token per digit
    assert tok.get_vocab() == bpe_tokenizer(synthetic.tokenizer_corpus()).get_vocab()   # deterministic
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer
    assert AutoTokenizer.from_pretrained(tmp_path)(q).input_ids == tok(q).input_ids
