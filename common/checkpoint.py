"""
Checkpoints: folders of weights and settings that survive a crash at any moment, and resume exactly.

The idea. A checkpoint is a folder, never a pickle:
    config.json            ModelConfig + both backbone configs (rebuilds the model offline)
    model.safetensors      the weights, one copy of each tied tensor (unique_state_dict)
    tokenizer*.json        the tokenizer files (save_pretrained)
    train_config.json      asdict(TrainConfig): the run's settings (train.py's --resume reads them)
    train_state.json       the step and the optimiser's param groups
    train_state.safetensors  the optimiser moments, flattened as opt.<param index>.<name>, and the RNG
Loading is strict and loud: a missing, unexpected or mis-shaped key is an error naming the file and
the keys, as is a missing or corrupted file.

Atomic saves. save_checkpoint writes OUT/ckpt.tmp, then renames OUT/ckpt -> OUT/ckpt.old and
OUT/ckpt.tmp -> OUT/ckpt, then drops ckpt.old: at every moment a complete OUT/ckpt or OUT/ckpt.old
exists (find_checkpoint takes the first). The log (log.jsonl) is appended to; on resume from step k
(open_log) the lines of steps after k, which the resumed run writes again, are dropped, and so is a
last line cut short by a crash. Worked number: a run that saves every 250 steps and logs every 10
crashes at step 612; it resumes from step 500, open_log keeps the lines of steps <= 500, and the
resumed run logs 510, 520, ... again, once each.

Resume. train.py --resume continues from OUT's checkpoint with its saved train_config.json: flags
left out take the saved values; a flag given again must match, unless it is in RESUMABLE (what
cannot change a step: max_steps, log_every, ...), else the run stops naming each difference.
"""
import json
import os
import shutil
from dataclasses import asdict, fields

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

# ----------------------------------------------------------------------------- model weights

# what to do about a damaged file of a training checkpoint (--resume cannot continue from it)
DAMAGED = 'this checkpoint cannot be resumed: restore the file from a copy, or train again with another --out'


def read_json(file: str, remedy: str = '') -> dict:
    """The JSON object in a file. The one reader of every JSON file the project reads (config.json,
    train_config.json, train_state.json, results.json, Omni3D files), so that a missing, cut-short,
    non-UTF-8 or non-object file is an error naming it, followed by remedy (what to do) where the
    caller knows, never a bare JSONDecodeError from deep inside."""
    if not os.path.isfile(file):
        raise FileNotFoundError(f'missing {file}')
    try:
        with open(file, encoding='utf-8') as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f'corrupted {file}: not valid JSON ({e}){_then(remedy)}') from None
    if not isinstance(data, dict):
        raise ValueError(f'corrupted {file}: not a JSON object (a {type(data).__name__}){_then(remedy)}')
    return data


def _then(remedy: str) -> str:
    return f'; {remedy}' if remedy else ''


def unique_state_dict(model: nn.Module) -> dict:
    """state_dict without aliases (tied embeddings share storage; safetensors refuses duplicates)."""
    seen, out = set(), {}
    for k, v in model.state_dict().items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
        if v.numel() == 0 or key not in seen:
            seen.add(key)
            out[k] = v.detach().contiguous()
    return out


def read_safetensors(file: str, remedy: str = '') -> dict:
    """load_file, with errors that name the file (missing, or not a safetensors file), followed by
    remedy (what to do) where the caller knows."""
    if not os.path.isfile(file):
        raise FileNotFoundError(f'missing {file}')
    try:
        return load_file(file)
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f'corrupted {file}: {e}{_then(remedy)}') from e


def load_weights(model: nn.Module, file: str):
    """Load file into model; raise naming the file and the missing / unexpected / mis-shaped keys."""
    sd = read_safetensors(file)
    expected = unique_state_dict(model)
    missing, unexpected = sorted(set(expected) - set(sd)), sorted(set(sd) - set(expected))
    shapes = [f'{k}: file {tuple(sd[k].shape)} vs model {tuple(v.shape)}'
              for k, v in expected.items() if k in sd and sd[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise ValueError(f'{file} does not match the model: missing keys {missing[:10]}, '
                         f'unexpected keys {unexpected[:10]}, shape mismatches {shapes[:10]}')
    model.load_state_dict(sd, strict=False)   # only the tied aliases are not in the file


def backbone_config(module) -> dict:
    """A backbone's config as a plain dict that rebuilds it offline (no quantisation, no source path)."""
    d = module.config.to_dict()
    # dtype too: from_config would build a bf16 hub config in bf16; we build float32, load casts
    for k in ('quantization_config', '_name_or_path', 'architectures', 'transformers_version', 'dtype'):
        d.pop(k, None)
    return d


# ----------------------------------------------------------------------------- training state

def save_checkpoint(out: str, model, opt, cfg, step: int, state: tuple | None = None):
    """OUT/ckpt: the model (model.save), train_config.json (asdict(cfg), a TrainConfig), the
    optimiser state and RNG (train_state.*); written to OUT/ckpt.tmp and swapped in by renames.
    state: (weights, optimiser state dict) gathered from a sharded model (common/fsdp.full_state)."""
    final, tmp, old = (os.path.join(out, n) for n in ('ckpt', 'ckpt.tmp', 'ckpt.old'))
    shutil.rmtree(tmp, ignore_errors=True)
    weights, sd = state or (None, opt.state_dict())
    model.save(tmp, weights)
    tensors = {f'opt.{i}.{k}': v.contiguous() for i, s in sd['state'].items() for k, v in s.items()}
    tensors['rng.torch'] = torch.get_rng_state()
    save_file(tensors, os.path.join(tmp, 'train_state.safetensors'))
    state = dict(step=step, param_groups=[{k: v for k, v in g.items()} for g in sd['param_groups']])
    with open(os.path.join(tmp, 'train_state.json'), 'w') as f:
        json.dump(state, f, indent=1)
    with open(os.path.join(tmp, 'train_config.json'), 'w') as f:
        json.dump(asdict(cfg), f, indent=1)
    # swap: ckpt -> ckpt.old, ckpt.tmp -> ckpt, drop ckpt.old. A complete ckpt or ckpt.old exists
    # throughout: without a ckpt (a run resumed from ckpt.old), ckpt.old stays until ckpt is in place
    if os.path.exists(final):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def keep_model(path: str, model, cfg, weights: dict | None = None):
    """The model alone (no optimiser state) with its train_config.json: eval.py scores the folder.
    weights: gathered from a sharded model (common/fsdp.full_state)."""
    model.save(path, weights)
    with open(os.path.join(path, 'train_config.json'), 'w') as f:
        json.dump(asdict(cfg), f, indent=1)


def find_checkpoint(out: str) -> str | None:
    """OUT/ckpt, else OUT/ckpt.old, where a complete checkpoint (train_state.json) is; else None."""
    for name in ('ckpt', 'ckpt.old'):  # ckpt.old survives only a crash between the two renames
        path = os.path.join(out, name)
        if os.path.exists(os.path.join(path, 'train_state.json')):
            return path
    return None


def load_train_state(path: str, opt) -> int:
    """The optimiser state and the RNG of a checkpoint, restored; returns its step."""
    state = read_json(os.path.join(path, 'train_state.json'), DAMAGED)
    tensors = read_safetensors(os.path.join(path, 'train_state.safetensors'), DAMAGED)
    opt_state = {}
    for key, v in tensors.items():
        if key.startswith('opt.'):
            _, i, name = key.split('.', 2)
            opt_state.setdefault(int(i), {})[name] = v
    opt.load_state_dict(dict(state=opt_state, param_groups=state['param_groups']))
    torch.set_rng_state(tensors['rng.torch'])
    return state['step']


def open_log(path: str, step: int):
    """The JSONL log, for appending from `step`: lines a crashed run wrote after its last
    checkpoint are dropped, since the resumed run logs those steps again, and so is a last line
    that a crash cut short. Any other unreadable line is an error naming the file and line."""
    lines = open(path).read().splitlines() if os.path.exists(path) else []
    kept = []
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
            if rec['step'] <= step:
                kept.append(line + '\n')
        except (json.JSONDecodeError, TypeError, KeyError) as e:
            if i < len(lines) - 1:
                raise ValueError(f'{path}, line {i + 1}: not a log record ({e}): {line[:80]!r}') from None
    with open(path, 'w') as f:
        f.writelines(kept)
    return open(path, 'a')


# ----------------------------------------------------------------------------- resume

# What --resume may change (fields of train.TrainConfig): none of these alters what an optimiser
# step computes (the global batch alone defines it, however it is split into micro-batches and
# processes). A longer --max-steps continues the run, the cosine schedule stretched from here on.
RESUMABLE = ('out', 'resume', 'max_steps', 'log_every', 'eval_every', 'save_every', 'val_samples',
             'micro_batch', 'device', 'compile', 'image_root',   # image_root: the same images, moved
             'keep_every', 'workers', 'seq_bucket', 'fsdp', 'activation_checkpointing')


def saved_config(ckpt: str, config_type) -> dict:
    """A checkpoint's train_config.json as the fields of config_type (train.TrainConfig; a field the
    file predates takes its default)."""
    file = os.path.join(ckpt, 'train_config.json')
    saved = read_json(file, DAMAGED)
    known = {f.name: f.default for f in fields(config_type)}
    if unknown := sorted(set(saved) - set(known)):
        raise ValueError(f'{file}: unknown settings {unknown}; this train.py cannot resume that run')
    return {**known, **saved}


def resume_from(cfg) -> str | None:
    """The checkpoint that --resume continues (cfg: a train.TrainConfig), checked to exist and to have
    been trained with cfg's settings (check_resume); None without --resume."""
    if not cfg.resume:
        return None
    ckpt = find_checkpoint(cfg.out)
    if ckpt is None:
        raise FileNotFoundError(f'--resume: no checkpoint in {cfg.out} (looked for ckpt/ and ckpt.old/)')
    check_resume(cfg, ckpt)
    return ckpt


def check_resume(cfg, ckpt: str):
    """A resumed run (cfg: a train.TrainConfig) must train as the saved one did: every difference
    outside RESUMABLE is named."""
    saved = saved_config(ckpt, type(cfg))
    safe = [k for k in RESUMABLE if not (cfg.data and k == 'val_samples')]   # real data: it splits the file
    diffs = [f'{as_flag(k, v)} (saved: {as_flag(k, saved[k])})' for k, v in asdict(cfg).items()
             if k not in safe and v != saved[k]]
    if diffs:
        raise ValueError(f"--resume: {ckpt}/train_config.json was trained with other settings than "
                         f"{'; '.join(diffs)}. Leave those flags out to resume with the saved values, or "
                         f"train a new run (another --out); on resume only {', '.join(RESUMABLE[2:])} may change.")


def as_flag(key: str, value) -> str:
    """('augment', False) -> '--no-augment'; ('lr', 0.01) -> '--lr 0.01'."""
    name = key.replace('_', '-')
    if isinstance(value, bool):
        return f"--{'' if value else 'no-'}{name}"
    return f'--{name} {value}'
