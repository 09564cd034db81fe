"""
Guards tools/: the diagnosis of a checkpoint runs end to end on a tiny untrained model and prints
its four measurements; the ridge probe recovers a linear signal and ignores noise.

    python -m pytest tests/test_tools.py -q
"""
import json

import numpy as np

import model
from tools import diagnose


def test_ridge_probe_recovers_a_linear_signal_and_not_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8))
    y = x @ rng.normal(size=8) + 0.01 * rng.normal(size=400)
    good = diagnose.ridge_probe(x[:300], y[:300], x[300:], y[300:], lam=1e-3)
    assert good['r2'] > 0.99 and abs(good['gain'] - 1) < 0.05
    noise = diagnose.ridge_probe(x[:300], rng.normal(size=300), x[300:], rng.normal(size=100))
    assert noise['r2'] < 0.1


def test_diagnose_runs_on_a_tiny_checkpoint(tmp_path, capsys):
    cfg = model.ModelConfig(image_size=64, patch_size=16, vision_width=32, vision_layers=1, vision_heads=2,
                            llm_width=32, llm_layers=1, llm_heads=2)
    ckpt = tmp_path / 'ckpt'
    model.CameraAwareMLLM(cfg).save(str(ckpt))
    (ckpt / 'train_config.json').write_text(json.dumps(dict(image_size=64, max_objects=1, tasks='depth',
                                                            pitch_range='5,15')))
    diagnose.main([str(ckpt), '--n-train', '24', '--n-test', '8'])
    out = capsys.readouterr().out
    assert 'probe of log z' in out and 'cross-entropy per character' in out and 'attention mass' in out
    assert 'input assembly: sound' in out
