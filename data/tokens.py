"""
Tokens: the text side of a sample, and where the image goes in it.

The idea. The LLM reads one sequence per sample: a prompt with N placeholder positions for the
visual tokens, then (when training) the answer and eos. Everything the step needs is computed here,
where the data enters (a DataLoader worker, or generate), so the forward reads tensors only:
    prompt    [bos] <image>×N question "\n"          (a chat model: its own template around the same)
    input_ids  prompt ids [+ answer ids + eos], −1 at the N visual positions, padded (right for
               training, left for generation); position ids count real tokens only
    answer_pos the positions whose hidden state predicts an answer token or eos, and answer_ids those
               tokens: the LM head reads only these (model.py), the loss is their cross-entropy.
Several posed frames: 'Frame 1:' <image>×N ' Frame 2:' <image>×N ... question (frame_marker).
Follow-up questions (a sample's 'turns', training only): ... question answer <eos> question2 "\n"
answer2 <eos> ..., the loss on every answer and its eos (conversation; LLaVA's multi-turn data).

Tokenizers. A real LLM brings its own. The tiny LLM trained from scratch gets a small BPE trained
on the question corpus (bpe_tokenizer: words with their leading space are tokens, digits one by
one, as in Llama-style tokenizers), or one token per character (char_tokenizer). Worked number:
"How far from the camera is the red table? Answer the depth of its centre in metres." is 83
characters, 19 BPE tokens; with 64 visual tokens (128 px, 16 px patches) its prompt is 1 + 64 + 19
+ 1 = 85 positions, and the answer "4.27" adds 4 digit-level tokens and eos.
Shapes: B batch, L sequence, A answer positions, N visual tokens per frame, F frames.
"""
import string

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from camera_embed import camera_text, validate_K

IMAGE = '<image>'                 # placeholder in the prompt text; its positions get the visual tokens
FRAME = 'Frame {}:'                # before each frame's visual tokens when a sample has several
SPECIALS = ['<pad>', '<bos>', '<eos>', '<unk>', IMAGE]
CHARS = string.digits + string.ascii_letters + string.punctuation + ' \n'


# ----------------------------------------------------------------------------- tokenizers

def char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character (digits, letters, punctuation, space, newline) plus SPECIALS;
    anything else is <unk>. A real `tokenizers` object: save_pretrained / AutoTokenizer work."""
    vocab = {t: i for i, t in enumerate(SPECIALS + list(CHARS))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token='<unk>'))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r'[\s\S]'), behavior='isolated')  # every char
    tok.decoder = decoders.Fuse()                 # join without spaces
    tok.add_special_tokens(SPECIALS)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token='<pad>', bos_token='<bos>',
                                   eos_token='<eos>', unk_token='<unk>')


def bpe_tokenizer(corpus: list[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A small BPE trained on `corpus` (deterministic): a word with its leading space is pre-split
    from digits and other characters, so "How far is the red table?" is 6 tokens, not 25, and
    numbers are written digit by digit, as Llama-style tokenizers (SmolLM2's too) write them.
    Every character of CHARS is in the alphabet: any ASCII text encodes (unseen words as pieces)
    and decodes back exactly."""
    tok = Tokenizer(models.BPE(unk_token='<unk>'))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r' ?[A-Za-z]+|[\s\S]'), behavior='isolated')
    tok.decoder = decoders.Fuse()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                                        initial_alphabet=list(CHARS), show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token='<pad>', bos_token='<bos>',
                                   eos_token='<eos>', unk_token='<unk>')


def build_tokenizer(cfg):
    """The LLM's own tokenizer (cfg: model.ModelConfig, llm and gguf_file), a pad token added where
    it has none; the character tokenizer for the tiny LLM built from a config."""
    if not cfg.llm:
        return char_tokenizer()
    tok = AutoTokenizer.from_pretrained(cfg.llm, **(dict(gguf_file=cfg.gguf_file) if cfg.gguf_file else {}))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def digit_token_ids(tok) -> torch.Tensor:
    """Token ids of '0'..'9' (10,): single tokens in the character and BPE tokenizers here and in
    Llama-style ones; anything else cannot carry the digit loss."""
    ids = tok.convert_tokens_to_ids(list(string.digits))
    if len(set(ids)) != 10 or tok.unk_token_id in ids:
        raise ValueError(f'digit_loss needs the ten digits as single tokens; the tokenizer gives {ids}')
    return torch.tensor(ids)


# ----------------------------------------------------------------------------- prompts and batches

def prompt_ids(tok, question: str, n_image: int, frames: int = 1) -> list[int]:
    """Token ids of one prompt; -1 marks the n_image visual positions. A chat model gets its own
    template (user turn = image + question); the tiny one '<bos><image>question\\n'. frames > 1:
    n_image is the visual tokens of one frame, and each frame's run follows its marker FRAME
    ('Frame 1:', 'Frame 2:', ...; frame_marker)."""
    if tok.chat_template:
        text = tok.apply_chat_template([{'role': 'user', 'content': IMAGE + question}],
                                       tokenize=False, add_generation_prompt=True)
    else:
        text = tok.bos_token + IMAGE + question + '\n'
    pre, post = (tok(part, add_special_tokens=False).input_ids for part in text.split(IMAGE, 1))
    if frames <= 1:
        return pre + [-1] * n_image + post
    visual = []
    for k in range(frames):                                  # each frame: its marker, then its tokens
        visual += tok(frame_marker(k), add_special_tokens=False).input_ids + [-1] * n_image
    return pre + visual + post


def frame_marker(k: int) -> str:
    """The text before frame k's visual tokens: 'Frame 1:' (then ' Frame 2:', ...). Text, not a learned
    index embedding: no new weights, any number of frames, and a pretrained LLM reads it as it is;
    the camera-blind baseline gets the same separation, so the comparison is about the pose alone."""
    return ('' if k == 0 else ' ') + FRAME.format(k + 1)


def pad_batch(seqs: list[list[int]], labels: list[list[int]], pad_id: int, left: bool, length: int = 0):
    """Pad to `length` (at least the longest sequence; left for generation, right for training).
    Returns ids (B, L), labels (B, L) with -100 where no loss, attention mask (B, L), position ids (B, L)."""
    L = max(length, max(len(s) for s in seqs))

    def pad(seq, value):
        fill = [value] * (L - len(seq))
        return fill + seq if left else seq + fill

    ids = torch.tensor([pad(s, pad_id) for s in seqs])
    lab = torch.tensor([pad(s, -100) for s in labels])
    attn = torch.tensor([pad([1] * len(s), 0) for s in seqs])
    pos = (attn.cumsum(1) - 1).clamp(min=0)       # positions count real tokens only
    return ids, lab, attn, pos


def round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def questions_with_camera(questions, K, image_hw, size: int) -> list[str]:
    """Each question after its camera as text (camera_embed.camera_text), K (B, 3, 3) of image_hw
    pixels written for the size×size pixels the model reads (the camera-as-text baseline)."""
    (H, W), S = image_hw, size
    K = torch.diag(torch.tensor([S / W, S / H, 1.0])) @ torch.as_tensor(K, dtype=torch.float32).cpu()   # (B, 3, 3)
    return [camera_text(k) + q for k, q in zip(K, questions)]


ANSWER_BUCKET = 8   # with bucketed lengths, answer positions are padded to a multiple of this too


def encode_batch(tok, batch: dict, n_image: int, camera_text_size: int = 0, left: bool = False,
                 pad_to: int = 1) -> dict:
    """Tokenise a batch where data enters (a DataLoader worker, or generate), so that forward reads
    tensors only and never waits on the host. batch: data.collate's (images, K, question [, answer,
    c2w]). K and c2w are validated here, once (camera_embed.validate_K), not in every forward.
      input_ids (B, L)       prompt [+ answer + eos]; -1 at the n_image visual positions; L rounded
                             up to a multiple of pad_to (a few fixed lengths: one compiled graph each)
      attention_mask, position_ids (B, L)
      answer_pos (B, A)      with answers: the positions whose next token is an answer token or eos,
      answer_ids (B, A)      and those tokens (-100 where a shorter answer is padded; its position 0)
    camera_text_size > 0: the questions get their camera as text first (questions_with_camera)."""
    images, questions, answers, K = batch['images'], list(batch['question']), batch.get('answer'), batch['K']
    frames = images.shape[1] if images.dim() == 5 else 1         # (B, F, 3, H, W): F posed frames each
    if images.dim() == 5 and K.dim() == 4 and not camera_text_size:   # checked as B·F images, one prompt each
        images, K = images.flatten(0, 1), K.flatten(0, 1)                # (B·F, 3, H, W), (B·F, 3, 3)
    if images.dim() != 4 or images.shape[1] != 3 or tuple(K.shape) != (images.shape[0], 3, 3):
        raise ValueError(f'need images (B, 3, H, W) and K (B, 3, 3) of one batch size B (or (B, F, 3, H, W) and '
                         f'(B, F, 3, 3) without camera text), got images {tuple(batch["images"].shape)} and K '
                         f'{tuple(batch["K"].shape)}')
    K = validate_K(K)
    if batch.get('c2w') is not None and not torch.isfinite(torch.as_tensor(batch['c2w'])).all():
        raise ValueError('c2w contains non-finite values')
    if len(questions) != images.shape[0] // frames or (answers is not None and len(answers) != len(questions)):
        raise ValueError(f'{images.shape[0] // frames} images, {len(questions)} questions'
                         + ('' if answers is None else f' and {len(answers)} answers') + ': need one each')
    if camera_text_size:
        questions = questions_with_camera(questions, K, images.shape[-2:], camera_text_size)
    prompts = [prompt_ids(tok, q, n_image, frames) for q in questions]
    turns = batch.get('turns') or [[] for _ in questions]
    if any(turns) and (answers is None or tok.chat_template):
        raise ValueError('follow-up questions (turns) need answers (training) and the tiny tokenizer (no chat template)')
    if answers is None:
        seqs, labels = prompts, [[-100] * len(p) for p in prompts]
    else:
        seqs, labels = zip(*(conversation(tok, p, [(None, a), *t]) for p, a, t in zip(prompts, answers, turns)))
    L = round_up(max(len(s) for s in seqs), pad_to)
    ids, labels, attn, pos = pad_batch(seqs, labels, tok.pad_token_id, left, L)
    out = dict(input_ids=ids, attention_mask=attn, position_ids=pos)
    if answers is not None:
        where = [(row[1:] != -100).nonzero().flatten() for row in labels]   # t: the state at t predicts t + 1
        A = round_up(max(len(w) for w in where), ANSWER_BUCKET if pad_to > 1 else 1)
        at = torch.zeros(len(seqs), A, dtype=torch.long)                  # (B, A)
        target = torch.full((len(seqs), A), -100, dtype=torch.long)       # (B, A)
        for b, w in enumerate(where):
            at[b, :len(w)] = w
            target[b, :len(w)] = labels[b, w + 1]
        out.update(answer_pos=at, answer_ids=target)
    return out


def conversation(tok, prompt: list[int], turns) -> tuple[list[int], list[int]]:
    """prompt + answer + eos [+ question + '\\n' + answer + eos ...] and its labels: the loss is on the
    answers and their eos only. turns = [(None, first answer), (follow-up question, answer), ...]: several
    questions about one sample in one sequence (LLaVA's multi-turn conversations; one vision pass)."""
    seq, labels = list(prompt), [-100] * len(prompt)
    for question, answer in turns:
        if question is not None:
            q = tok(question + '\n', add_special_tokens=False).input_ids
            seq, labels = seq + q, labels + [-100] * len(q)
        a = tok(answer, add_special_tokens=False).input_ids + [tok.eos_token_id]
        seq, labels = seq + a, labels + a
    return seq, labels
