"""
The optimiser: AdamW with learning rates per part, a warm-up and a cosine decay.

The idea. A camera-aware MLLM joins pretrained backbones to new parts (the camera embedding, the
geometry branch, the projector, and any backbone built from a config rather than loaded). The new
parts start from random weights and need a large learning rate (--new-lr); the pretrained ones a
small one (--lr), and LLaVA's stage 1 trains the new parts alone for the first --projector-steps,
so that the backbones never see the gradients of a random projector. Every group warms up
linearly and decays by a cosine to its min_lr (scaled with it) at max_steps:
    lr(t) = scale·lr·(t + 1)/warmup                                  t < warmup (t counted from the start)
    lr(t) = scale·(min_lr + ½(1 + cos(π·(t − warmup)/span))·(lr − min_lr))    after, span = max_steps − start − warmup
Weight decay applies to matrices only (not to norms, biases or embeddings' scales). A frozen LLM
(--freeze-llm) may still train its last --llm-train-layers decoder layers and its final norm.
Worked number: lr 1e-3, min_lr 1e-4, warm-up 100 of 2000 steps: 1e-5 at step 0, 1e-3 at step 99,
5.5e-4 at step 1050 (half way through the decay), 1e-4 at step 2000.
"""
import math

import torch

def get_lr(step: int, cfg, start: int = 0, scale: float = 1.0) -> float:
    """0 before step `start`; then a linear warm-up, and a cosine decay from scale·lr to
    scale·min_lr at max_steps."""
    if step < start:
        return 0.0
    step, span = step - start, max(1, cfg.max_steps - start - cfg.warmup_steps)
    if step < cfg.warmup_steps:
        return scale * cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / span
    return scale * (cfg.min_lr + 0.5 * (1 + math.cos(math.pi * min(t, 1.0))) * (cfg.lr - cfg.min_lr))


def pretrained_parts(cfg) -> tuple:
    """CameraAwareMLLM's submodules that start from pretrained weights; the others (camera, geo_*,
    projector, and a backbone built from a config) are new."""
    return (('vision',) if cfg.vision else ()) + (('llm',) if cfg.llm else ())


def configure_optimizer(model, cfg) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on norms, biases or embeddings' scales). Groups
    by part: pretrained backbones follow --lr from step --projector-steps on, the new parts
    --new-lr from step 0 (set_lr)."""
    groups, pretrained = [], pretrained_parts(cfg)
    for backbone in (True, False):
        params = [p for n, p in model.named_parameters() if p.requires_grad and (n.split('.')[0] in pretrained) == backbone]
        for decay in (True, False):
            ps = [p for p in params if (p.dim() >= 2) == decay]
            if ps:
                groups.append(dict(params=ps, weight_decay=cfg.weight_decay if decay else 0.0, backbone=backbone))
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def set_lr(opt, step: int, cfg) -> float:
    """Each group's learning rate at `step`; returns the new parts' (the one logged)."""
    new = get_lr(step, cfg, scale=(cfg.new_lr or cfg.lr) / cfg.lr)
    for g in opt.param_groups:
        g['lr'] = get_lr(step, cfg, start=cfg.projector_steps) if g['backbone'] else new
    return new


def train_last_llm_layers(llm, n: int):
    """Let the last n decoder layers and the final norm of a frozen LLM train (Llama-style layout)."""
    base = llm.base_model
    for module in [*base.layers[len(base.layers) - n:], base.norm] if n else []:
        module.requires_grad_(True)
