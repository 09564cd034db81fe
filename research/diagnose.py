"""
Why does (or doesn't) a trained model answer depth? Four measurements on held-out scenes at the
training camera, each a question about where the evidence stops on its way to the answer's digits:

1. Is the evidence in the visual tokens?  A ridge probe of log z (the asked object's centre depth)
   from the LLM-side visual tokens of the object (mean over the tokens it covers), fitted on
   training scenes, scored on test scenes: R² and gain (slope of the probe's log z on the true).
2. Which characters are learnt?  The answer cross-entropy per character position ("7", ".", "9",
   "1", eos for "7.91"), against the entropy of a constant answer at that position.
3. Is the image read?  The attention mass that answer positions give to the image tokens, per
   layer (1/L of the mass for uniform attention over L positions would be ~ n_image / L).
4. Is the input assembly sound?  Image tokens at the placeholder positions, right padding in
   training and left in generation with position ids counting real tokens only, pixels in [−1, 1].

    python -m research.diagnose runs/default            # a train.py run folder or a checkpoint folder
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data import synthetic  # noqa: E402
from data.loader import data_config  # noqa: E402
from data.tokens import pad_batch, prompt_ids  # noqa: E402
from eval import load_checkpoint  # noqa: E402
from train import TrainConfig  # noqa: E402
from world import raycast  # noqa: E402
from world import scenes  # noqa: E402


def depth_items(dcfg, split: str, n: int) -> list[dict]:
    """n depth questions about test/train scenes at the base camera, with the object's token mask."""
    items = []
    for i in range(n):
        seed = synthetic.scene_seed(split, i)
        sc = scenes.sample_scene(seed, dcfg.scene)
        out, objects = raycast.render(sc), synthetic.scene_objects(sc)
        qa = synthetic.make_qa(objects, 'depth', np.random.default_rng([seed, synthetic.TASKS.index('depth')]))
        k = next(j for j, o in enumerate(objects) if o['name'] in qa['question'])   # names are unique
        items.append(dict(qa, image=torch.from_numpy(out['image']).permute(2, 0, 1), c2w=torch.tensor(sc.c2w).float(),
                          K=torch.tensor(sc.K, dtype=torch.float32), mask=torch.from_numpy(out['instance'] == k)))
    return items


@torch.no_grad()
def object_features(model, items) -> np.ndarray:
    """Mean LLM-side visual token over the tokens the asked object covers (>= 1 pixel): (n, D)."""
    feats = []
    for s in range(0, len(items), 32):
        b = items[s:s + 32]
        vis, _ = model.visual_tokens(*(torch.stack([it[k] for it in b]) for k in ('image', 'K', 'c2w')))
        h, w = model.grid_hw
        m = torch.stack([it['mask'] for it in b]).float()[:, None]                   # (B, 1, H, W)
        cover = F.adaptive_max_pool2d(m, (h, w)).flatten(1)                          # (B, N)
        feats.append(((vis * cover[..., None]).sum(1) / cover.sum(1, keepdim=True).clamp(min=1)).numpy())
    return np.concatenate(feats)


def ridge_probe(x_train, y_train, x_test, y_test, lam=1.0) -> dict:
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    A, B = (x_train - mu) / sd, (x_test - mu) / sd
    w = np.linalg.solve(A.T @ A + lam * len(A) * np.eye(A.shape[1]), A.T @ (y_train - y_train.mean()))
    pred = B @ w + y_train.mean()
    r2 = 1 - ((pred - y_test) ** 2).sum() / ((y_test - y_test.mean()) ** 2).sum()
    yc = y_test - y_test.mean()
    return dict(r2=float(r2), gain=float(yc @ (pred - pred.mean()) / (yc @ yc)))


@torch.no_grad()
def answer_diagnostics(model, items) -> tuple[np.ndarray, np.ndarray]:
    """Per-position answer cross-entropy (P,) and per-layer attention mass on image tokens (layers,)."""
    model.llm.set_attn_implementation('eager')              # sdpa returns no attention weights
    batch = dict(images=torch.stack([it['image'] for it in items]), K=torch.stack([it['K'] for it in items]),
                 c2w=torch.stack([it['c2w'] for it in items]),
                 question=[it['question'] for it in items], answer=[it['answer'] for it in items])
    vis, _ = model.visual_tokens(batch['images'], batch['K'], batch['c2w'])
    enc = model.encode(batch)
    labels = torch.full_like(enc['input_ids'], -100)                              # (B, L): the answer tokens
    for i, (at, ids) in enumerate(zip(enc['answer_pos'], enc['answer_ids'])):
        labels[i, at[ids != -100] + 1] = ids[ids != -100]
    out = model.llm(inputs_embeds=model.embed_inputs(enc['input_ids'], vis), attention_mask=enc['attention_mask'],
                    position_ids=enc['position_ids'], output_attentions=True)
    model.llm.set_attn_implementation(model.cfg.attn_implementation)
    tok, n_img = model.tokenizer, vis.shape[1]
    prompt_len = [len(prompt_ids(tok, q, n_img)) for q in batch['question']]
    img_start = [prompt_ids(tok, q, n_img).index(-1) for q in batch['question']]
    P = max(len(a) for a in batch['answer']) + 1
    ce, mass = np.full((len(items), P), np.nan), np.zeros(len(out.attentions))
    for b, (L0, s0) in enumerate(zip(prompt_len, img_start)):
        n_ans = int((labels[b] != -100).sum())
        logits = out.logits[b, L0 - 1:L0 - 1 + n_ans]                              # predicts answer tokens
        ce[b, :n_ans] = F.cross_entropy(logits.float(), labels[b, L0:L0 + n_ans], reduction='none').numpy()
        for layer, a in enumerate(out.attentions):                                 # (B, heads, L, L)
            mass[layer] += a[b, :, L0 - 1:L0 - 1 + n_ans, s0:s0 + n_img].sum(-1).mean().item() / len(items)
    return np.nanmean(ce, 0), mass


def check_assembly(model, items) -> list[str]:
    """The input checks of point 4; returns the problems found (empty: sound)."""
    problems, tok = [], model.tokenizer
    n = model.grid_hw[0] * model.grid_hw[1]
    seqs = [prompt_ids(tok, it['question'], n) for it in items[:4]]
    for left in (False, True):
        ids, _, attn, pos = pad_batch(seqs, seqs, tok.pad_token_id, left)
        if ((ids == -1).sum(1) != n).any():
            problems.append('not every row has n_image placeholders')
        first_real = attn.float().argmax(1)
        if (pos.gather(1, first_real[:, None]) != 0).any():
            problems.append(f'position ids do not start at 0 on the first real token (left={left})')
        if left and (attn[:, -1] == 0).any():
            problems.append('generation padding is not on the left')
    x = torch.stack([it['image'] for it in items[:4]]).float() / 255
    x = (x - 0.5) / 0.5
    if x.min() < -1 - 1e-6 or x.max() > 1 + 1e-6:
        problems.append('pixels not in [-1, 1]')
    return problems


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('ckpt')
    p.add_argument('--n-train', type=int, default=512, help='training scenes for the probe')
    p.add_argument('--n-test', type=int, default=128, help='held-out scenes')
    args = p.parse_args(argv)
    model, train_cfg = load_checkpoint(args.ckpt)
    model.eval()
    cfg = TrainConfig(**{k: v for k, v in train_cfg.items() if k in TrainConfig.__dataclass_fields__})
    dcfg = data_config(cfg)
    train_items, test_items = depth_items(dcfg, 'train', args.n_train), depth_items(dcfg, 'test', args.n_test)
    logz = lambda its: np.log([it['target'] for it in its])
    probe = ridge_probe(object_features(model, train_items), logz(train_items),
                        object_features(model, test_items), logz(test_items))
    print(f'1. probe of log z from the object\'s visual tokens: R² {probe["r2"]:.2f}, gain {probe["gain"]:.2f}')
    ce, mass = answer_diagnostics(model, test_items[:64])
    const = [np.log(10)] * len(ce)
    print('2. answer cross-entropy per character (nats):', ' '.join(f'{c:.2f}' for c in ce),
          f'(uniform over digits: {const[0]:.2f})')
    n_img = model.grid_hw[0] * model.grid_hw[1]
    print('3. attention mass of answer positions on the', n_img, 'image tokens, per layer:',
          ' '.join(f'{m:.2f}' for m in mass))
    problems = check_assembly(model, test_items)
    print('4. input assembly:', 'sound' if not problems else '; '.join(problems))


if __name__ == '__main__':
    main()
