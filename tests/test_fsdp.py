"""
Guards train.py --fsdp (common/fsdp.py) on the CPU, two gloo processes under torchrun: 5 FSDP steps
(2 micro-steps per rank: the gradient sync is skipped on the first) end with the losses and weights
of one process over the same global batches; the checkpoint has one process's format (same keys,
optimiser moments indexed the same way); a run stopped after 2 steps and resumed, with activation
checkpointing switched on, ends bit for bit where the uninterrupted FSDP run does. Block discovery
and the flag checks run in-process.

    python -m pytest tests/test_fsdp.py -q
"""
import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file

import train
from common.fsdp import block_lists
from conftest import ROOT, two_gloo_ranks

# a very small model: 32 px images through 8 px patches (16 tokens), global batch 4
TINY = ['--image-size', '32', '--patch-size', '8', '--tasks', 'depth,closer', '--max-objects', '2', '--batch-size', '4',
        '--warmup-steps', '2', '--val-samples', '4', '--log-every', '1', '--eval-every', '2', '--workers', '0',
        '--geometry-hidden', '32']
needs_torchrun = pytest.mark.skipif(shutil.which('torchrun') is None, reason='torchrun not on PATH')


def torchrun(args, log):
    """train.py under torchrun with two gloo processes; the output is shown if it fails."""
    two_gloo_ranks([os.path.join(ROOT, 'train.py'), *args], log)


def weights(run):
    return load_file(os.path.join(run, 'ckpt', 'model.safetensors'))


def losses(run):
    return [json.loads(line)['loss'] for line in open(os.path.join(run, 'log.jsonl'))]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """one process (micro-batch 2: 2 micro-steps), FSDP on 2 ranks (micro-batch 1: 2 micro-steps
    each), and FSDP stopped at step 2 then resumed to 5 with activation checkpointing."""
    tmp = tmp_path_factory.mktemp('fsdp')
    one, fsdp, resumed = (str(tmp / n) for n in ('one', 'fsdp', 'resumed'))
    train.main(train.parse_args(TINY + ['--micro-batch', '2', '--max-steps', '5', '--out', one]))
    if shutil.which('torchrun'):
        torchrun(TINY + ['--fsdp', '--micro-batch', '1', '--max-steps', '5', '--out', fsdp], tmp / 'fsdp.log')
        # warm-up steps 0, 1 do not depend on max_steps, so stopping at 2 trains what the 5-step run does
        torchrun(TINY + ['--fsdp', '--micro-batch', '1', '--max-steps', '2', '--out', resumed], tmp / 'first.log')
        torchrun(['--out', resumed, '--resume', '--max-steps', '5', '--activation-checkpointing'], tmp / 'resumed.log')
    return one, fsdp, resumed


@needs_torchrun
def test_fsdp_on_two_ranks_matches_one_process(runs):
    one, fsdp, _ = runs
    a, b = weights(one), weights(fsdp)
    assert a.keys() == b.keys()
    for k in a:
        # another summation order: float noise. An attention key bias has a zero gradient in theory
        # (it shifts a whole softmax row), so Adam scales its noise to lr-sized steps (test_train's DDP case)
        atol = 4e-3 if k.endswith('k_proj.bias') else 5e-5
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)
    assert losses(one) == pytest.approx(losses(fsdp), abs=1e-5)
    # the checkpoint has one process's format: same optimiser keys, shapes and param groups
    sa, sb = (load_file(os.path.join(r, 'ckpt', 'train_state.safetensors')) for r in (one, fsdp))
    assert sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)
    ga, gb = (json.load(open(os.path.join(r, 'ckpt', 'train_state.json'))) for r in (one, fsdp))
    assert ga == gb
    for k in sa:
        if k.endswith('.exp_avg'):   # the first moments: the gradients' running mean
            torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=1e-4, msg=k)


@needs_torchrun
def test_resumed_fsdp_run_matches_an_uninterrupted_one(runs):
    _, fsdp, resumed = runs
    a, b = weights(fsdp), weights(resumed)
    assert a.keys() == b.keys()
    for k in a:   # same ranks, same reduction order, recomputed activations are the same: exact
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-7, msg=k)
    assert losses(fsdp) == pytest.approx(losses(resumed), abs=1e-7)
    assert [json.loads(line)['step'] for line in open(os.path.join(resumed, 'log.jsonl'))] == [1, 2, 3, 4, 5]
    saved = json.load(open(os.path.join(resumed, 'ckpt', 'train_config.json')))
    assert saved['fsdp'] and saved['activation_checkpointing']


def test_blocks_are_the_llm_and_vision_layers():
    cfg = train.parse_args(TINY + ['--llm-layers', '3'])
    _, _, model = train.build(cfg, False, True, torch.device('cpu'))
    lists = block_lists(model)
    assert [len(b) for b in lists] == [2, 3]      # vision.encoder.layers, llm.model.layers
    assert lists[0] is model.vision.encoder.layers and lists[1] is model.llm.model.layers


@pytest.mark.parametrize('flags,named', [(['--fsdp'], '--fsdp runs under torchrun'),
                                         (['--activation-checkpointing'], '--activation-checkpointing needs --fsdp')])
def test_fsdp_flags_fail_clearly_outside_torchrun(tmp_path, flags, named, monkeypatch):
    monkeypatch.delenv('RANK', raising=False)
    with pytest.raises(ValueError, match=named):
        train.main(train.parse_args(TINY + flags + ['--out', str(tmp_path / 'run')]))
