"""
Guards train.py: a tiny run writes a checkpoint that eval.py scores, a crashed-and-resumed run
ends with the weights of an uninterrupted one, and two gloo processes under torchrun end with the
weights of one process over the same global batches.

    python -m pytest tests/test_train.py -q
"""
import json
import os
import shutil
import subprocess

import pytest
import torch
from safetensors.torch import load_file

import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# a few steps of a very small model: 64x64 images, two tasks with short answers
TINY = ['--image-size', '64', '--tasks', 'depth,closer', '--max-objects', '2', '--batch-size', '4', '--micro-batch', '2',
        '--warmup-steps', '2', '--val-samples', '4', '--log-every', '1', '--eval-every', '2']


def weights(path):
    return load_file(os.path.join(path, 'ckpt', 'model.safetensors'))


def test_cli_is_generated_from_the_config():
    cfg = train.parse_args(['--no-augment', '--max-steps', '7', '--preset', 'real', '--lr', '3e-4'])
    assert cfg.augment is False and cfg.max_steps == 7
    assert cfg.llm == train.PRESETS['real']['llm'] and cfg.lr == 3e-4  # explicit flag beats preset
    with pytest.raises(SystemExit):
        train.parse_args(['--preset', 'nope'])
    with pytest.raises(ValueError, match='unknown task'):
        train.data_config(train.TrainConfig(tasks='depth,colour'))


def test_lr_schedule_warms_up_then_decays_to_min():
    cfg = train.TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    lrs = [train.get_lr(s, cfg) for s in range(111)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[110] == pytest.approx(0.1)


def test_tiny_run_writes_a_checkpoint_that_eval_scores(tmp_path):
    out = str(tmp_path / 'run')
    train.main(train.parse_args(TINY + ['--max-steps', '3', '--out', out]))
    ckpt = os.path.join(out, 'ckpt')
    for name in ('config.json', 'model.safetensors', 'train_config.json', 'train_state.json'):
        assert os.path.exists(os.path.join(ckpt, name)), name
    assert sum(1 for _ in open(os.path.join(out, 'log.jsonl'))) == 3

    import eval as evaluate
    result = evaluate.main(['--ckpt', out, '--camera-shift', '--n-scenes', '2', '--tasks', 'depth',
                            '--zooms', '0.5,1.0', '--out', str(tmp_path / 'eval')])
    assert os.path.exists(tmp_path / 'eval' / 'results.json')
    assert result is not None


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    args = TINY + ['--max-steps', '4', '--save-every', '2']
    straight = str(tmp_path / 'straight')
    train.main(train.parse_args(args + ['--out', straight]))

    crashed = str(tmp_path / 'crashed')
    save = train.save_checkpoint

    def crash_at_step_4(out, model, opt, cfg, step):
        if step == 4:  # steps 3 and 4 are trained and logged, but only step 2 is saved
            raise KeyboardInterrupt('simulated crash before the step-4 checkpoint')
        save(out, model, opt, cfg, step)

    monkeypatch.setattr(train, 'save_checkpoint', crash_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train.main(train.parse_args(args + ['--out', crashed]))
    monkeypatch.setattr(train, 'save_checkpoint', save)
    train.main(train.parse_args(args + ['--out', crashed, '--resume']))

    a, b = weights(straight), weights(crashed)
    assert a.keys() == b.keys()
    steps = [json.loads(line)['step'] for line in open(os.path.join(crashed, 'log.jsonl'))]
    assert steps == [1, 2, 3, 4]  # the resumed run's log continues the crashed one, no repeats
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)


def test_resume_without_a_checkpoint_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match='no checkpoint'):
        train.main(train.parse_args(TINY + ['--out', str(tmp_path / 'empty'), '--resume']))


@pytest.mark.skipif(shutil.which('torchrun') is None, reason='torchrun not on PATH')
def test_two_gloo_processes_match_one_process(tmp_path):
    args = TINY + ['--max-steps', '2', '--batch-size', '4', '--micro-batch', '2']
    one = str(tmp_path / 'one')
    train.main(train.parse_args(args + ['--out', one]))
    two = str(tmp_path / 'two')
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    subprocess.run(['torchrun', '--standalone', '--nproc_per_node=2', os.path.join(ROOT, 'train.py'),
                    *args, '--out', two], check=True, cwd=ROOT, env=env, timeout=300)
    a, b = weights(one), weights(two)
    assert a.keys() == b.keys()
    for k in a:
        # An attention key bias adds q·b_k to a whole softmax row, so its gradient is exactly zero
        # in theory and float noise in practice; Adam scales that noise to lr-sized steps of either
        # sign, so two summation orders disagree there by up to lr per step (measured: 1.6e-5).
        atol = 2 * 2 * 1e-3 if k.endswith('k_proj.bias') else 1e-5
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)
