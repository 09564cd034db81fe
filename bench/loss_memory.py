"""
What the answer-only logits save: peak memory of one SmolLM2-135M micro-batch, forward + backward,
with the LM head over every position (the usual `llm(...).logits` and a shifted cross-entropy) and
with the LM head only at the answer positions (CameraAwareMLLM.forward). Expect a large drop: the
full logits are B·L·V floats (V = 49152), about 0.4 GB in float32 for 8 samples of 250 tokens, and
their gradient and softmax as much again, for the 5 answer tokens per sample that are scored.

    python -m tools.gguf smollm2 runs/smollm2      # once
    python -m bench.loss_memory --llm runs/smollm2

A micro-batch of the real preset's shape on the CPU: 8 depth questions on 224 px images, patch 16,
no pixel shuffle (196 visual tokens + SmolLM2's chat prompt), every parameter trainable, float32.
Each variant runs in a fresh process; its peak is the process's peak resident memory (VmHWM, reset
after loading the model and building the batch) above its resident memory at that moment.
"""
import argparse
import subprocess
import sys

import torch
import torch.nn.functional as F


def full_logits_loss(model, batch):
    """The answer loss as usually written: logits (B, L, V) at every position, labels shifted."""
    enc = model.encode(batch)
    vis, _ = model.visual_tokens(batch['images'], batch['K'], batch.get('c2w'))
    logits = model.llm(inputs_embeds=model.embed_inputs(enc['input_ids'], vis), attention_mask=enc['attention_mask'],
                       position_ids=enc['position_ids'], use_cache=False).logits        # (B, L, V)
    labels = torch.full_like(enc['input_ids'], -100)                                   # (B, L)
    for i, (at, ids) in enumerate(zip(enc['answer_pos'], enc['answer_ids'])):
        labels[i, at[ids != -100] + 1] = ids[ids != -100]
    target = labels[:, 1:]
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), target, reduction='none')   # (B, L-1)
    return (nll.sum(1) / (target != -100).sum(1).clamp(min=1)).mean()


def memory_kb(field: str) -> int:
    for line in open('/proc/self/status'):
        if line.startswith(field + ':'):
            return int(line.split()[1])
    raise RuntimeError(f'no {field} in /proc/self/status')


def one_variant(llm: str, variant: str, batch_size: int):
    """Runs in a child process: prints the peak memory (MiB) above the resident one before the step."""
    from data.synthetic import DataConfig, SyntheticDataset, collate
    from model import CameraAwareMLLM, ModelConfig
    from world.scenes import SceneConfig
    torch.manual_seed(0)
    model = CameraAwareMLLM(ModelConfig(llm=llm, image_size=224, digit_loss=0.0, geometry=False))
    ds = SyntheticDataset(DataConfig(scene=SceneConfig(image_hw=(224, 224)), tasks=('depth',)), 'train', batch_size)
    batch = collate([ds[i] for i in range(batch_size)])
    batch.update(model.encode(batch))
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')                                    # resets VmHWM, the peak resident set, to now
    before = memory_kb('VmRSS')
    loss = full_logits_loss(model, batch) if variant == 'full' else model(batch)[1]
    loss.backward()
    L = batch['input_ids'].shape[1]
    print(f'{(memory_kb("VmHWM") - before) / 1024:.0f} {L} {loss.item():.4f}')


def main(llm: str, batch_size: int):
    out = {}
    for variant in ('full', 'answer'):
        res = subprocess.run([sys.executable, '-m', 'bench.loss_memory', '--llm', llm, '--batch-size', str(batch_size),
                              '--variant', variant], capture_output=True, text=True, check=True)
        out[variant] = res.stdout.split()
    (full, L, loss_full), (ans, _, loss_ans) = out['full'], out['answer']
    print(f'SmolLM2-135M, batch {batch_size} x {L} tokens at 224 px, forward + backward, float32 on the CPU')
    print(f'peak memory above the step\'s start: full-vocabulary logits {full} MiB, answer-only {ans} MiB: '
          f'{int(full) - int(ans)} MiB less ({float(full) / float(ans):.2f}x); answer loss {loss_full} vs {loss_ans}')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--llm', default='runs/smollm2', help='the converted SmolLM2 folder (python -m tools.gguf)')
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--variant', choices=('full', 'answer'), help=argparse.SUPPRESS)   # the child process
    args = p.parse_args()
    if args.variant:
        one_variant(args.llm, args.variant, args.batch_size)
    else:
        main(args.llm, args.batch_size)
