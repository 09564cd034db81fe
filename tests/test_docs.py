"""
Guards the documentation: every table of README.md and docs/ is what scripts/tables.py writes from
the committed results (docs/results/*.json), it stores those results from real eval.py folders, the README stays a page a user reads in minutes, and
the repository points nowhere outside itself.
Run alone: python -m pytest -q tests/test_docs.py
"""
import importlib.util
import json
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))
import tables  # noqa: E402


@pytest.mark.parametrize('path', sorted(tables.outputs()))
def test_every_table_is_the_one_its_json_gives(path):
    with open(os.path.join(ROOT, path)) as f:
        assert f.read() == tables.outputs()[path], f'{path} is stale: run python scripts/tables.py'


def test_a_changed_figure_makes_the_check_fail(monkeypatch):
    real = tables.load

    def shifted(name):
        data = real(name)
        if name == 'ablation':
            data['rows']['full']['depth_index']['mean'] += 0.5
        return data
    monkeypatch.setattr(tables, 'load', shifted)
    with pytest.raises(SystemExit, match='README.md'):
        tables.main(['--check'])


def test_a_pilot_and_the_default_are_stored_from_an_eval_folder(tmp_path, monkeypatch):
    """tables.py --pilot / --default on a real eval.py folder of a tiny untrained model; distinct
    answers count numbers, so '3.00' and '3.0' are one answer and an unparsed one is none."""
    import torch
    import eval as E
    import model
    torch.manual_seed(0)
    run = tmp_path / 'run'
    model.CameraAwareMLLM(model.ModelConfig(image_size=32, patch_size=8, vision_width=32, vision_layers=1,
                                            vision_heads=2, llm_width=32, llm_layers=1, llm_heads=2,
                                            geometry_hidden=16)).save(str(run))
    (run / 'train_config.json').write_text(json.dumps(dict(camera='standard', image_size=32, max_objects=1)))
    (run / 'log.jsonl').write_text(json.dumps(dict(step=5, loss=1.0)) + '\n')
    out = tmp_path / 'eval'
    E.main(['--ckpt', str(run), '--split', 'val', '--camera-shift', '--n-scenes', '3', '--tasks', 'depth',
            '--cameras', 'zoom_1.00,zoom_2.00', '--max-new-tokens', '4', '--out', str(out)])
    records = out / 'records_run.jsonl'
    recs = [json.loads(line) for line in records.read_text().splitlines()]
    texts = iter(['3.00', '3.0', 'far'])
    recs = [dict(r, pred_text=next(texts)) if r['camera'] == 'zoom_1.00' else r for r in recs]
    records.write_text(''.join(json.dumps(r) + '\n' for r in recs))
    monkeypatch.setattr(tables, 'RESULTS', str(tmp_path / 'results'))
    tables.store_pilot('tiny', '--x', str(run), str(out), 12.0, note='a test')
    row, = json.loads((tmp_path / 'results' / 'pilots.json').read_text())['rows']
    assert (row['name'], row['steps'], row['n_scenes'], row['distinct']) == ('tiny', 5, 3, 1)
    assert set(row['mra_per_zoom']) == {'zoom_1.00', 'zoom_2.00'} and row['split'] == 'val'
    assert '| tiny | `--x` | 12 |' in tables.pilots(dict(rows=[row]))       # an untrained row renders too
    tables.store_default(str(out))
    stored = json.loads((tmp_path / 'results' / 'default.json').read_text())
    assert stored['distinct_answers'] == 1 and stored['scenes'] == 3
    assert [c['name'] for c in stored['cameras']] == ['zoom_1.00', 'zoom_2.00']
    (out / 'timing.txt').write_text('training: 10 s for 1 runs\n')
    tables.store_ablation(str(out / 'results.json'))
    stored = json.loads((tmp_path / 'results' / 'ablation.json').read_text())
    assert stored['timing'] == ['training: 10 s for 1 runs'] and list(stored['rows']) == ['run']
    assert (tmp_path / 'ablation_seeds.png').exists() == (importlib.util.find_spec('matplotlib') is not None)


def test_an_unknown_table_name_is_an_error():
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        tables.rendered('<!-- table: nope -->\n<!-- /table -->', 'page.md')


def test_the_readme_is_short_and_every_local_link_resolves():
    with open(os.path.join(ROOT, 'README.md')) as f:
        text = f.read()
    assert text.count('\n') <= 250
    for page in ['README.md'] + [os.path.join('docs', p) for p in os.listdir(os.path.join(ROOT, 'docs')) if p.endswith('.md')]:
        with open(os.path.join(ROOT, page)) as f:
            for link in re.findall(r'\]\(([^)#:]+)\)', f.read()):
                target = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), link))
                assert os.path.exists(target), f'{page} links to {link}, which does not exist'


def test_the_top_level_holds_the_six_chapters_only():
    modules = sorted(f for f in os.listdir(ROOT) if f.endswith('.py'))
    assert modules == sorted(tables.CHAPTERS)


def module_imports() -> dict:
    """{module: the repository modules it imports}, read from the source (module-level and inside functions)."""
    import ast
    mods = {}
    for folder in ('.', 'world', 'data', 'common', 'multiframe', 'pretrained', 'research', 'tools', 'bench'):
        for f in os.listdir(os.path.join(ROOT, folder)):
            if f.endswith('.py') and f != '__init__.py':
                mods[(folder + '.' if folder != '.' else '') + f[:-3]] = os.path.join(ROOT, folder, f)
    graph = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                deps |= {node.module} | {f'{node.module}.{a.name}' for a in node.names}
        graph[name] = sorted(d for d in deps if d in mods and d != name)
    return graph


def test_imports_run_one_way_no_module_imports_one_that_imports_it():
    graph, seen, path = module_imports(), {}, []

    def visit(m):
        seen[m] = 'open'
        path.append(m)
        for d in graph[m]:
            assert seen.get(d) != 'open', f'import cycle: {" -> ".join(path[path.index(d):] + [d])}'
            if d not in seen:
                visit(d)
        path.pop()
        seen[m] = 'done'
    for m in graph:
        if m not in seen:
            visit(m)
    chapters = {c[:-3] for c in tables.CHAPTERS}
    assert not any(d.startswith('research') for m in chapters for d in graph[m])   # research stays beside the log
