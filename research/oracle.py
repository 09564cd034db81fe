"""
Is it the seeing or the reasoning? The three multiple-choice questions of a posed-frame room
(rel_distance, rel_direction, appearance_order) asked of the LLM alone, with the room written
out in the prompt as exact text instead of frames, what a perfect perception would hand it:

    Map (metres, x across the room, z forward): blue stool 2.41 3.07; red bin 4.88 6.30.
    Frames: 1: blue stool; 2: blue stool, red bin; 3: red bin. Which of these is closest to ...

the object centres on the floor plan (x, z; every question is about the floor plan) and the frame
listing (views.frame_listing: which frame shows which object, left to right). Training is train.py's
recipe for the language side: the same tiny Llama (train.model_config), tokenizer (train.tiny_tokenizer),
AdamW, a warm-up and a cosine, batch 16, every askable choice of a room in one sequence (tokens.conversation).
The score on held-out rooms picks the option whose first token the model rates highest, against the
best constant answer (the most common one), with a 95 % bootstrap interval over rooms.

If the LLM beats the constant here, the choices are learnable by this LLM at this budget and what
the multi-frame model lacks is perception (which object is where); if not, the LLM is the bottleneck.
Two more rows: a pretrained LLM folder (--llm; zero-shot with --steps 0; a chat model is asked one
question per sequence, as train.py does), and the control (--leak), the answers written in the text
too, which the loop must teach as a look-up and a copy, or it is broken. --reasons: every answer shows
the two measurements that decide it first (train.py --reasons), and the pick ends a greedy answer.

    python -m research.oracle [--steps 2000] [--n 512] [--layers 2] [--room-objects 1,3]
    python -m research.oracle --llm runs/smollm2 --steps 0        # a pretrained LLM, zero-shot (tools.gguf)
    python -m research.oracle --leak --steps 300                  # the control: the answers in the text, copied
    python -m research.oracle --reasons                           # answers that show their measurements first
    python -m research.oracle --reasons --by-object               # ... and each object's frames after its name
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
from transformers import AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common.intervals import bootstrap, interval  # noqa: E402
from common.metrics import parse_answer, parse_name  # noqa: E402
from data import synthetic  # noqa: E402
from data.tokens import conversation, pad_batch, prompt_ids  # noqa: E402
from model import ModelConfig, build_llm  # noqa: E402
from multiframe import views  # noqa: E402
from multiframe.items import corpus, views_config  # noqa: E402
from multiframe.train_views import ViewsTrainConfig  # noqa: E402
import train  # noqa: E402

CHOICES = ('rel_distance', 'rel_direction', 'appearance_order')


def room_text(v: views.Views, by_object=False) -> str:
    """The seen objects' centres on the floor plan (x from the left wall, z forward from the first
    camera; metres, non-negative) and the frame listing. The words of the answers (left, right) are
    kept out of it: with 'x from the left wall' the control did not copy left/right in 1000 steps.
    by_object: the listing by object instead, 'Seen in: blue stool 1 2; red bin 2 3.', each object's
    first frame the token after its name (one look-up, where the frame listing needs two)."""
    seen = ' '.join(f'{o.name} {o.center[0] + v.room["left"]:.2f} {o.center[2]:.2f};' for o, _ in views.seen_objects(v))
    frames = '; '.join(f"{o.name} {' '.join(str(k + 1) for k in np.flatnonzero(v.seen[:, i]))}"
                       for i, o in enumerate(v.objects) if v.seen[:, i].any())
    listing = f'Seen in: {frames}' if by_object else f'Frames: {views.frame_listing(v)}'
    return f'Map (metres, x across the room, z forward): {seen[:-1]}. {listing}. '


def room_questions(split: str, i: int, cfg: views.ViewsConfig, leak=False, reasons=False, by_object=False) -> tuple:
    """(the room's text, [qa of every askable choice, in a random order]) of room i of a split
    (reasons: each answer shows its measurements first, views.with_reasons; by_object: room_text's).
    leak: the answers by task at the end of the text ('Answers: rel distance A; rel direction right;
    appearance order B.'): the control, a look-up and a copy the loop must teach in a few hundred steps."""
    seed = synthetic.scene_seed(split, i)
    v, _ = views.sample_views(seed, cfg)
    asked = [t for t in CHOICES if views.feasible(v, t)]
    qas = [views.ask(v, asked[j], seed, reasons) for j in np.random.default_rng([seed, synthetic.TASK_STREAM]).permutation(len(asked))]
    told = '; '.join(f"{t.replace('_', ' ')} {qa['answer']}" for t in CHOICES for qa in qas if qa['task'] == t)
    return room_text(v, by_object) + (f'Answers: {told}. ' if leak else ''), qas


def sequence(tok, text: str, qas: list) -> tuple[list, list]:
    """One room: its text and first question as train.py prompts (no image), then the others as
    follow-ups (a chat model: the first alone, as train.py); the loss on the answers."""
    turns = [(q['question'], q['answer']) for q in qas[1:]] if not tok.chat_template else []
    return conversation(tok, prompt_ids(tok, text + qas[0]['question'], 0), [(None, qas[0]['answer'])] + turns)


def fit(llm, tok, cfg: views.ViewsConfig, steps: int, batch: int = 16, lr: float = 1e-3, how=None, log=print):
    """AdamW on fresh training rooms every step: a linear warm-up (100 steps, fewer for short runs) times
    a cosine over the whole run to lr / 10 (optim.get_lr, train.py's, starts its cosine after the warm-up).
    how: room_questions' text options (leak, reasons, by_object)."""
    opt, how = torch.optim.AdamW(llm.parameters(), lr=lr, weight_decay=0.01), how or {}
    llm.train()
    for step in range(steps):
        seqs = [sequence(tok, *room_questions('train', step * batch + b, cfg, **how)) for b in range(batch)]
        ids, labels, attn, pos = pad_batch([s for s, _ in seqs], [lab for _, lab in seqs], tok.pad_token_id, False)
        t = min(1.0, (step + 1) / min(100, max(steps // 10, 1)))
        for g in opt.param_groups:
            g['lr'] = lr * t * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        loss = llm(input_ids=ids, attention_mask=attn, position_ids=pos, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(llm.parameters(), 1.0)
        opt.step()
        if step % 200 == 0 or step == steps - 1 or (step % 20 == 0 and tok.chat_template):
            log(f'step {step}: loss {loss.item():.3f}')


@torch.no_grad()
def score(llm, tok, cfg: views.ViewsConfig, n: int, how=None) -> dict:
    """{task: (model accuracy, constant accuracy, (lo, hi) of model − constant, questions, top pick)} on n
    held-out rooms. The pick: the option whose first token rates highest; with reasons, the choice that ends a
    greedy answer. top pick: the share of the questions given the model's most common pick (as a letter or a
    word), 1.0 for a model that answers one option whatever the room."""
    llm.eval()
    hits, how = {t: [] for t in CHOICES}, how or {}
    for i in range(n):
        text, qas = room_questions('test', i, cfg, **how)
        for qa in qas:
            ids = torch.tensor([prompt_ids(tok, text + qa['question'], 0)])
            if how.get('reasons'):
                out = llm.generate(ids, max_new_tokens=64, do_sample=False, eos_token_id=tok.eos_token_id,
                                   pad_token_id=tok.pad_token_id)[0, ids.shape[1]:]
                pick = parse_answer(qa['task'], tok.decode(out, skip_special_tokens=True))
                hits[qa['task']].append((pick == parse_name(qa['target']), qa['target'], pick))
                continue
            logits = llm(input_ids=ids).logits[0, -1]
            first = [tok(o, add_special_tokens=False).input_ids[0] for o in qa['options']]
            pick = qa['options'][int(torch.argmax(logits[first]))]
            hits[qa['task']].append((pick == qa['target'], qa['target'], parse_name(pick)))
    out = {}
    for t, rows in ((t, rows) for t, rows in hits.items() if rows):            # a task no room could ask: no row
        truth, picks = [a for _, a, _ in rows], [str(p) for _, _, p in rows]
        const = max(set(truth), key=truth.count)
        d = np.array([float(h) - float(a == const) for h, a, _ in rows])        # per question: model − constant
        lo, hi = interval(bootstrap(lambda _, s: d[s].mean(), 1, len(d)))
        top = max(picks.count(p) for p in set(picks)) / len(picks)
        out[t] = (np.mean([h for h, _, _ in rows]), np.mean([a == const for a in truth]), (lo, hi), len(d), top)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--steps', type=int, default=2000)
    p.add_argument('--n', type=int, default=512, help='held-out rooms (the test split)')
    p.add_argument('--layers', type=int, default=2, help="the tiny LLM's depth")
    p.add_argument('--room-objects', default='1,3')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--llm', default='', help='a pretrained LLM folder (python -m tools.gguf smollm2 runs/smollm2) '
                   'instead of the tiny one; --steps 0: zero-shot')
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--leak', action='store_true', help='the control: the answers written in the text (a copy)')
    p.add_argument('--reasons', action='store_true', help='answers show their measurements first (views.with_reasons)')
    p.add_argument('--by-object', action='store_true', help="the listing by object: 'Seen in: blue stool 1 2; ...'")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    tcfg = train.parse_args(['--frames', '3', '--image-size', '64', '--room-objects', args.room_objects, '--questions', '1',
                             '--llm-layers', str(args.layers), '--tasks', ','.join(CHOICES)], ViewsTrainConfig)
    cfg = views_config(tcfg)                                     # the rooms of a 64 px --frames 3 run
    tok = AutoTokenizer.from_pretrained(args.llm) if args.llm else train.tiny_tokenizer(tcfg, corpus(tcfg))
    llm = build_llm(ModelConfig(llm=args.llm) if args.llm else train.model_config(tcfg), tok)
    how = dict(leak=args.leak, reasons=args.reasons, by_object=args.by_object)
    fit(llm, tok, cfg, args.steps, lr=args.lr, how=how)
    for t, (acc, const, (lo, hi), n, top) in score(llm, tok, cfg, args.n, how).items():
        print(f'{t:17s} model {acc:.2f}  constant {const:.2f}  model − constant {acc - const:+.2f} '
              f'[{lo:+.2f}, {hi:+.2f}]  top pick {top:.2f}  ({n} questions)')


if __name__ == '__main__':
    main()
