"""
Guards scripts/memory_plan.py: it runs and writes its markdown; the parameter counts are those of
the published models (0.49 B, 3.09 B, 7.62 B); FSDP needs less per GPU than DDP, 7 B more than 3 B,
mixed precision's activations are half of fp32's, and a sample of 1,024 visual tokens never allows
a larger micro-batch than one of 196, nor checkpointing a smaller one.

    python -m pytest tests/test_memory_plan.py -q
"""
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location('memory_plan', os.path.join(ROOT, 'scripts', 'memory_plan.py'))
memory_plan = importlib.util.module_from_spec(spec)
spec.loader.exec_module(memory_plan)


def test_parameter_counts_match_the_published_sizes():
    sizes = {name: memory_plan.params(c)[0] / 1e9 for name, c in memory_plan.QWEN25.items()}
    assert sizes == pytest.approx({'0.5B': 0.494, '3B': 3.086, '7B': 7.616}, abs=0.01)


def test_the_plan_obeys_the_obvious_orderings(tmp_path):
    out = tmp_path / 'plan.md'
    text = memory_plan.main(['--out', str(out)])
    assert out.read_text() == text and '| 7B | FSDP | mixed |' in text
    rows = {(r['model'], r['engine'], r['precision']): r for r in memory_plan.plan(memory_plan.PlanConfig())}
    for (model, engine, precision), r in rows.items():
        if engine == 'ddp':
            assert rows[model, 'fsdp', precision]['state_gb'] < r['state_gb']
            assert rows[model, 'fsdp', precision][1024, False] >= r[1024, False]
        assert r[1024, False] <= r[196, False] and r[1024, True] <= r[196, True]
        assert r[196, True] >= r[196, False] and r[1024, True] >= r[1024, False]
    for engine in ('ddp', 'fsdp'):
        assert rows['7B', engine, 'mixed']['state_gb'] > rows['3B', engine, 'mixed']['state_gb'] > rows['0.5B', engine, 'mixed']['state_gb']
    assert rows['7B', 'ddp', 'mixed'][196, True] == 0          # 137 GB of state: DDP cannot train 7 B on 80 GB
    assert rows['7B', 'fsdp', 'mixed'][1024, False] >= 1
    c = memory_plan.QWEN25['3B']
    assert memory_plan.act_per_token_layer(c, 4) == 2 * memory_plan.act_per_token_layer(c, 2)


def test_bad_settings_fail_clearly():
    with pytest.raises(ValueError, match='--gpus'):
        memory_plan.main(['--gpus', '0'])
    with pytest.raises(ValueError, match='engine'):
        memory_plan.state_bytes(1, 1, 1, 'zero3', 'mixed', 8)
