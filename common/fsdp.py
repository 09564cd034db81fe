"""
FSDP2: the weights, gradients and AdamW moments sharded over the processes, with checkpoints in
the one-process format.

The idea. DDP keeps a full copy of everything on every GPU: per GPU, with Φ parameters,
    DDP:   2Φ (bf16 weights for compute) + 4Φ (fp32 master) + 4Φ (fp32 grads) + 8Φ (AdamW m, v) bytes
    FSDP:  (4Φ + 4Φ + 8Φ) / world + the bf16 weights of the one or two blocks being computed
(scripts/memory_plan.py works the numbers through). torch's FSDP2 (`fully_shard`) turns every
parameter into a DTensor sharded on dim 0 over the ranks; each repeated block (a decoder layer of
the LLM, an encoder layer of the vision tower) is its own unit, all-gathered just before its
forward and backward and freed after, and its gradients are reduce-scattered as backward leaves
it. The root unit (fully_shard(model) last) holds the rest: embeddings, projector, camera
embedding, geometry branch, LM head.

    shard(model, mp, checkpointing)     in place; then build the optimiser (it must see the DTensors)
    full_state(model, opt)              every rank calls it; rank 0 gets (weights, optimiser state)
                                        exactly as checkpoint.save_checkpoint writes them for one process
    load_full_state(model, opt, ckpt)   every rank reads the checkpoint and keeps its shards

Mixed precision (mp, on CUDA): MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32): the
sharded fp32 parameters are the optimiser's master weights, all-gathered in bf16 for compute;
gradients are reduce-scattered in fp32. The root unit does not cast its inputs: K, the teacher's
targets and the images stay float32 (bf16 would round fx = 110.9 to 110.5); the blocks cast their
hidden states. Activation checkpointing wraps each block (checkpoint_wrapper, non-reentrant) before
sharding: a block keeps only its input for backward and recomputes the rest (its all-gather too).

Gradient accumulation: set_requires_gradient_sync(False) on the micro-steps but the last keeps the
unsharded gradients local (no reduce-scatter). Clipping: clip_grad_norm_ works on DTensor grads
(the norm is all-reduced). The state dict keys are those of the unsharded model (the checkpoint
wrapper's prefix is stripped), so checkpoints load into either engine, and --resume may switch.
Worked number: 8 ranks, a 3.1 B model: 16 B · 3.1e9 / 8 = 6.2 GB of sharded state per GPU instead of
50 GB under DDP (+ 6.2 GB of bf16 weights there).
"""
import os

import torch
import torch.nn as nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_optimizer_state_dict,
                                                     set_model_state_dict, set_optimizer_state_dict)
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from common.checkpoint import read_json, read_safetensors, unique_state_dict

BLOCK_NAMES = ('layers', 'blocks')      # ModuleLists of repeated blocks (Llama/SigLIP layers, Qwen2.5-VL blocks)
WRAPPED = '_checkpoint_wrapped_module.'  # the prefix checkpoint_wrapper adds to parameter names
FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)   # gathered, on rank 0's CPU only


# ----------------------------------------------------------------------------- sharding

def block_lists(model: nn.Module) -> list[nn.ModuleList]:
    """The ModuleLists named layers or blocks that hold repeated blocks (outermost only): e.g.
    llm.model.layers and vision.encoder.layers of CameraAwareMLLM."""
    found, prefixes = [], []
    for name, m in model.named_modules():
        if (isinstance(m, nn.ModuleList) and name.split('.')[-1] in BLOCK_NAMES and len(m)
                and not any(name.startswith(p) for p in prefixes)):
            found.append(m)
            prefixes.append(name + '.')
    return found


def mixed_precision(mp: bool, root: bool) -> MixedPrecisionPolicy:
    """bf16 compute and fp32 gradient reduction (mp), or float32 throughout; the root keeps its
    inputs (images, K, targets) as they are."""
    if not mp:
        return MixedPrecisionPolicy()
    return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32, cast_forward_inputs=not root)


def shard(model: nn.Module, mp: bool = False, checkpointing: bool = False) -> nn.Module:
    """In place: (activation checkpointing on each block, then) fully_shard each block, then the root.
    Needs a started process group. Records the unsharded model's checkpoint keys (full_keys) first,
    so that full_state writes exactly the keys checkpoint.unique_state_dict would (one per tied tensor)."""
    lists = block_lists(model)
    if not lists:
        raise ValueError(f'shard: no ModuleList named {BLOCK_NAMES} in {type(model).__name__} (nothing to shard per block)')
    model.full_keys = tuple(unique_state_dict(model))
    for blocks in lists:
        for i, block in enumerate(blocks):
            if checkpointing:
                blocks[i] = block = checkpoint_wrapper(block)   # state dict keys unchanged (hooks strip the prefix)
            fully_shard(block, mp_policy=mixed_precision(mp, root=False))
    fully_shard(model, mp_policy=mixed_precision(mp, root=True))
    return model


def is_sharded(model: nn.Module) -> bool:
    return hasattr(model, 'full_keys')


# ----------------------------------------------------------------------------- full state for checkpoints

def param_names(model: nn.Module, opt: torch.optim.Optimizer) -> list[str]:
    """The name of each optimiser parameter, in torch.optim's index order (groups in order)."""
    name = {id(p): n.replace(WRAPPED, '') for n, p in model.named_parameters()}
    return [name[id(p)] for g in opt.param_groups for p in g['params']]


def full_state(model: nn.Module, opt: torch.optim.Optimizer | None = None):
    """Gather the full weights (and optimiser state) to rank 0's CPU. Every rank must call it (the
    gathers are collectives). Returns (weights, opt_state) on rank 0, as one process would save them:
    weights {key: tensor} with full_keys only; opt_state in torch.optim's format (state keyed by
    parameter index, param_groups with index lists); (None, None) on the other ranks."""
    weights = get_model_state_dict(model, options=FULL)
    opt_full = get_optimizer_state_dict(model, opt, options=FULL) if opt is not None else None
    if not weights:                                     # not rank 0: cpu_offload leaves it empty
        return None, None
    weights = {k: weights[k].contiguous() for k in model.full_keys}
    if opt is None:
        return weights, None
    names = param_names(model, opt)
    state = {i: opt_full['state'][n] for i, n in enumerate(names) if n in opt_full['state']}
    return weights, dict(state=state, param_groups=opt.state_dict()['param_groups'])


def check_weights(model: nn.Module, sd: dict, file: str):
    """Loud, like checkpoint.load_weights: missing, unexpected and mis-shaped keys named."""
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}   # DTensor: the global shape
    missing, unexpected = sorted(set(model.full_keys) - set(sd)), sorted(set(sd) - set(model.full_keys))
    wrong = [f'{k}: file {tuple(sd[k].shape)} vs model {shapes[k]}' for k in model.full_keys
             if k in sd and tuple(sd[k].shape) != shapes[k]]
    if missing or unexpected or wrong:
        raise ValueError(f'{file} does not match the model: missing keys {missing[:10]}, '
                         f'unexpected keys {unexpected[:10]}, shape mismatches {wrong[:10]}')


def load_full_state(model: nn.Module, opt: torch.optim.Optimizer | None, ckpt: str) -> int:
    """A checkpoint folder (model.safetensors, train_state.*) into a sharded model and its optimiser:
    every rank reads the files and keeps its shards; the RNG is restored. Returns the step."""
    file = os.path.join(ckpt, 'model.safetensors')
    weights = read_safetensors(file)
    check_weights(model, weights, file)
    set_model_state_dict(model, weights, options=StateDictOptions(full_state_dict=True, strict=False))  # tied aliases
    state = read_json(os.path.join(ckpt, 'train_state.json'))
    tensors = read_safetensors(os.path.join(ckpt, 'train_state.safetensors'))
    if opt is not None:
        names = param_names(model, opt)
        opt_state = {}
        for key, v in tensors.items():
            if key.startswith('opt.'):
                _, i, name = key.split('.', 2)
                if int(i) >= len(names):
                    raise ValueError(f'{ckpt}/train_state.safetensors: {key} but the optimiser has {len(names)} parameters')
                opt_state.setdefault(names[int(i)], {})[name] = v
        groups = state['param_groups']
        if [len(g['params']) for g in groups] != [len(g['params']) for g in opt.param_groups]:
            raise ValueError(f'{ckpt}/train_state.json: parameter groups of sizes {[len(g["params"]) for g in groups]}, '
                             f'the optimiser has {[len(g["params"]) for g in opt.param_groups]}')
        groups = [{**g, 'params': [names[i] for i in g['params']]} for g in groups]
        set_optimizer_state_dict(model, opt, dict(state=opt_state, param_groups=groups),
                                 options=StateDictOptions(full_state_dict=True))
    torch.set_rng_state(tensors['rng.torch'])
    return state['step']
