"""Guards eval.py and report.py: the camera sweep and its paired visibility, real-data views through
augment, the scoring chain and its summary on reference and camera-blind answers, and an end-to-end
sweep of a tiny untrained model (its zoom plot only where matplotlib is installed). The metrics themselves are
tested in test_metrics.py.

    python -m pytest tests/test_eval.py -q
"""
import importlib.util
import json
import os
import re
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import report  # noqa: E402
from data import synthetic  # noqa: E402
from data import omni3d  # noqa: E402
import eval as E  # noqa: E402
import model  # noqa: E402
from world import pinhole  # noqa: E402
from world import raycast  # noqa: E402
from world import scenes  # noqa: E402


# ----------------------------------------------------------------------------- the sweep, end to end
def test_camera_sweep_and_paired_visibility():
    cfg = scenes.SceneConfig(image_hw=(32, 48), camera='standard', visible_zoom=(0.5, 2.0))
    sweep = E.camera_sweep(cfg)
    names = [n for n, _, _ in sweep]
    assert names[:7] == [f'zoom_{s:.2f}' for s in E.ZOOMS] and len(set(names)) == len(names)
    K = scenes.camera_K('standard', (32, 48))
    by_name = {n: (s, fn(K)) for n, s, fn in sweep}
    s, K2 = by_name['zoom_0.50']
    assert s == 0.5 and np.allclose(K2[:2, :2], K[:2, :2] * 0.5) and np.allclose(K2[:, 2], K[:, 2])
    assert np.allclose(by_name['shift_x+10%'][1][:, 2], [K[0, 2] + 4.8, K[1, 2], 1])
    assert np.allclose(by_name['shift_y+10%'][1][:, 2], [K[0, 2], K[1, 2] + 3.2, 1])
    s, K2 = by_name['tele']                              # a profile is its own camera_K exactly
    assert np.allclose(K2, scenes.camera_K('tele', (32, 48))) and s == pytest.approx(K2[0, 0] / K[0, 0])
    # a profile beyond the visibility range is left out: tele is s = 1.83 from standard, 3.2 from wide
    assert 'tele' not in [n for n, _, _ in E.camera_sweep(scenes.SceneConfig(camera='wide', visible_zoom=(0.5, 2)))]
    # paired protocol: every object of a test scene is in view through every camera of the sweep
    for seed in range(3):
        scene = scenes.sample_scene(seed, cfg)
        for name, _, fn in sweep:
            ids = set(np.unique(raycast.render(scene, K=fn(scene.K))['instance']).tolist())
            assert set(range(len(scene.objects))) <= ids, (seed, name)


def test_real_data_views_follow_the_sweep_through_augment(tmp_path):
    cfg = scenes.SceneConfig(image_hw=(32, 40), n_objects=(1, 3), visible_zoom=(0.5, 2.0))
    js = omni3d.export_omni3d([scenes.sample_scene(synthetic.scene_seed('test', i), cfg) for i in range(2)], str(tmp_path))
    ds = omni3d.load_omni3d(js, str(tmp_path), ('depth', 'closer'))
    sweep = [c for c in E.camera_sweep(cfg, zooms=(1.0, 2.0), profiles=False) if c[0] != 'shift_y+10%']
    items, left_out = E.build_real_items(ds, sweep, (32, 40))
    assert len(items) == 2 * 4 and left_out == 0 and {it['task'] for it in items} <= {'depth', 'closer'}
    K = scenes.camera_K('standard', (32, 40))
    views = {it['camera']: it for it in items if it['scene'] == 0}
    for name, _, fn in sweep:                            # K of every view = the sweep's K exactly
        assert np.allclose(views[name]['K'].numpy(), fn(K), atol=1e-4)
        assert views[name]['question'] == ds[0]['question'] and views[name]['target'] == ds[0]['target']
    assert views['zoom_1.00']['image'].equal(ds[0]['image'])
    shifted, base = views['shift_x+10%']['image'].int(), ds[0]['image'].int()   # content moves 4 px right
    assert (shifted[:, :, 4:] - base[:, :, :-4]).abs().max() <= 1


def test_end_to_end_sweep_of_a_tiny_untrained_model(tmp_path):
    torch.manual_seed(0)
    cfg = model.ModelConfig(image_size=32, patch_size=8, vision_width=32, vision_layers=1, vision_heads=2,
                            llm_width=32, llm_layers=1, llm_heads=2, geometry_hidden=16)
    ckpt = tmp_path / 'tiny'
    model.CameraAwareMLLM(cfg).save(str(ckpt))
    (ckpt / 'train_config.json').write_text(json.dumps(dict(camera='standard', image_size=32, max_objects=2)))
    out = tmp_path / 'eval'
    results = E.main(['--ckpt', str(ckpt), '--camera-shift', '--n-scenes', '2', '--tasks', 'depth,detect',
                      '--cameras', 'zoom_1.00,zoom_2.00', '--max-new-tokens', '4', '--out', str(out)])
    summary = results['tiny']['summary']
    assert set(summary['cameras']) == {'zoom_1.00', 'zoom_2.00'}
    for cam in summary['cameras'].values():
        for task in ('depth', 'detect'):
            t = cam['tasks'][task]
            assert t['n'] == 2 and 0 <= t['unparsed'] <= 2
        assert 0.0 <= cam['tasks']['depth']['mra'] <= 1.0 and 0.0 <= cam['tasks']['detect']['f1@0.25'] <= 1.0
        assert 0.0 <= cam['tasks']['detect']['f1@0.25_pooled'] <= 1.0
    table = (out / 'table.md').read_text()
    assert 'zoom_2.00' in table and '| shortcut slope |' in table and '| depth gain at s=1 |' in table
    assert '| depth MRA of a constant answer |' in table
    assert 0.0 <= summary['cameras']['zoom_1.00']['tasks']['depth']['mra_const'] <= 1.0
    saved = json.loads((out / 'results.json').read_text())
    assert saved['results']['tiny']['summary'] == json.loads(json.dumps(summary))
    records = [json.loads(line) for line in (out / 'records_tiny.jsonl').read_text().splitlines()]
    assert len(records) == 2 * 2 * 2                     # scenes x cameras x tasks
    for r in records:                                    # paired: one question per (scene, task)
        twin = [q for q in records if (q['scene'], q['task']) == (r['scene'], r['task'])]
        assert len({q['question'] for q in twin}) == 1 and len({q['camera'] for q in twin}) == 2
    assert (out / 'zoom.png').exists() == (importlib.util.find_spec('matplotlib') is not None)
    assert 'VG-LLM' in table and 'F1@0.25 pooled' in table and '≤ 1−θ' in table
    # real data: an Omni3D export of two scenes, zoom and shifts through augment
    cfg = scenes.SceneConfig(image_hw=(32, 32), n_objects=(1, 2), visible_zoom=(0.5, 2.0))
    js = omni3d.export_omni3d([scenes.sample_scene(synthetic.scene_seed('test', i), cfg) for i in range(2)],
                            str(tmp_path / 'omni'))
    results = E.main(['--ckpt', str(ckpt), '--camera-shift', '--data', js, '--image-root', str(tmp_path / 'omni'),
                      '--tasks', 'depth', '--zooms', '1,2', '--max-new-tokens', '4', '--out', str(tmp_path / 'real')])
    cams = results['tiny']['summary']['cameras']
    assert set(cams) == {'zoom_1.00', 'zoom_2.00', 'shift_x+10%', 'shift_x-10%', 'shift_y+10%'}
    assert all(c['tasks']['depth']['n'] == 2 for c in cams.values())


@pytest.mark.parametrize('where', ['ckpt', '.'])
def test_a_truncated_train_config_is_named_with_what_to_do(tmp_path, where):
    folder = tmp_path / 'run' / where
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'config.json').write_text('{}')
    (folder / 'train_config.json').write_text('{"camera": "standard", "image_si')      # cut short
    named = re.escape(str(folder / 'train_config.json')) + '.*not valid JSON.*delete it'
    with pytest.raises(ValueError, match=named):
        E.main(['--ckpt', str(tmp_path / 'run'), '--out', str(tmp_path / 'eval')])
    with pytest.raises(ValueError, match=named):
        E.load_checkpoint(str(tmp_path / 'run'))


def test_scoring_chain_on_data_answers_perfect_and_camera_blind_oracles():
    cfg = scenes.SceneConfig(image_hw=(32, 32), n_objects=(2, 2), visible_zoom=(0.5, 2.0))
    sweep = [c for c in E.camera_sweep(cfg, profiles=False) if c[0].startswith('zoom_')]
    items = E.build_eval_items(cfg, sweep, 3)
    assert {it['task'] for it in items} == set(synthetic.TASKS)
    # the reference answers parse and score perfectly (IoU up to the 2-decimal rounding)
    summary = report.summarize([E.make_record(it, it['answer']) for it in items])
    for cam in summary['cameras'].values():
        t = cam['tasks']
        assert all(v['unparsed'] == 0 for v in t.values())
        assert t['depth']['mra'] == t['size']['mra'] == t['distance']['mra'] == 1.0
        assert t['closer']['acc'] == 1.0 and t['box']['iou'] > 0.9
        assert t['detect']['f1@0.25'] == t['detect']['f1@0.25_pooled'] == 1.0
        assert t['center']['center_err'] < 0.01
    assert abs(summary['shortcut_slope']) < 0.01 and summary['depth_gain'] == pytest.approx(1.0, abs=0.01)
    # a model that answers as if every camera were the training camera: depth z / s
    blind = [E.make_record(it, synthetic.fmt(it['target'] / it['s']) if it['task'] == 'depth' else it['answer'])
             for it in items]
    summary = report.summarize(blind)
    assert summary['shortcut_slope'] == pytest.approx(-1.0, abs=0.02)
    mra = {c: v['tasks']['depth']['mra'] for c, v in summary['cameras'].items()}
    assert mra['zoom_1.00'] == 1.0 and mra['zoom_2.00'] <= 0.1 and mra['zoom_0.50'] == 0.0  # rel 0.5, 1


class Says(torch.nn.Module):
    """A stand-in model that answers every question with the same text."""

    def __init__(self, text):
        super().__init__()
        self.text, self.w = text, torch.nn.Parameter(torch.zeros(1))

    def generate(self, image, K, questions, max_new_tokens=None, c2w=None):
        return [self.text] * len(questions)


def test_answers_read_only_by_the_lenient_rule_are_counted_and_shown():
    cfg = scenes.SceneConfig(image_hw=(32, 32), n_objects=(1, 2), visible_zoom=(0.5, 2.0))
    sweep = [c for c in E.camera_sweep(cfg, profiles=False) if c[0] in ('zoom_1.00', 'zoom_2.00')]
    items = E.build_eval_items(cfg, sweep, 2, ('depth',))
    for f_c in (0.0, synthetic.canonical_focal('standard', 32)):     # also when mapped back from the label space
        records = E.evaluate(Says('2.50 m'), items, progress=False, canonical_f=f_c)
        assert all(r['parsed'] and r['lenient'] for r in records)
    exact = [E.make_record(it, it['answer']) for it in items]
    assert not any(r['lenient'] for r in exact)
    summary = report.summarize(records + exact)
    t = summary['cameras']['zoom_1.00']['tasks']['depth']
    assert t['n'] == 4 and t['lenient'] == 2 and t['unparsed'] == 0 and summary['lenient'] == 0.5
    assert '| read only by the lenient rule |  | 50.0% |' in report.markdown_table(dict(run=dict(summary=summary)))
    old = [{k: v for k, v in r.items() if k != 'lenient'} for r in exact]     # records saved before the flag
    assert report.summarize(old)['lenient'] == 0.0


def test_constant_answer_baseline_is_the_training_median_scored_on_the_same_items():
    cfg = scenes.SceneConfig(image_hw=(32, 32), n_objects=(1, 2), visible_zoom=(0.5, 2.0))
    med = E.train_medians(cfg, ('depth', 'size', 'closer'), n_scenes=64)
    assert set(med) == {'depth', 'size'}                       # numbers only; closer answers a name
    depths = [synthetic.make_qa(synthetic.scene_objects(scenes.sample_scene(synthetic.scene_seed('train', i), cfg)), 'depth',
                           np.random.default_rng([synthetic.scene_seed('train', i), synthetic.TASKS.index('depth')]))['target']
              for i in range(64)]
    assert med['depth'] == pytest.approx(float(np.median(depths)))
    items = E.build_eval_items(cfg, [c for c in E.camera_sweep(cfg, profiles=False) if c[0] == 'zoom_1.00'], 8,
                               ('depth',))
    const = [E.make_record(it, synthetic.fmt(med['depth'])) for it in items]   # a model answering the median
    summary = report.summarize(const, med)
    t = summary['cameras']['zoom_1.00']['tasks']['depth']
    assert t['mra_const'] == pytest.approx(t['mra'], abs=0.02)           # up to the 2-decimal rounding


def test_zoom_plot_is_written_with_matplotlib(tmp_path):
    pytest.importorskip('matplotlib', reason='the zoom plot needs the optional matplotlib (requirements-extra.txt)')
    cams = {f'zoom_{s:.2f}': dict(s=s, tasks=dict(depth=dict(mra=0.5, log_ratio=-0.1))) for s in E.ZOOMS}
    path = report.plot_zoom(dict(run=dict(summary=dict(cameras=cams))), str(tmp_path / 'zoom.png'), E.ZOOMS)
    assert path and os.path.getsize(path) > 1000


# ----------------------------------------------------------------------------- paired sweeps
def test_scene_visibility_follows_the_requested_zooms():
    assert E.visible_range([1.0]) == (0.5, 2.0) and E.visible_range([1.0], E.SHIFTS) == (0.5, 2.0)
    assert E.visible_range([1.0, 3.0]) == (0.5, 3.0) and E.visible_range([0.25, 1.0]) == (0.25, 2.0)
    assert E.visible_range([1.0], [('shift', 0.3, 0.0)]) == (0.5, pytest.approx(2.5))   # 1 / (1 − 0.6)
    cfg = E.eval_scene_config(dict(image_size=48, max_objects=1), zooms=[1.0, 3.0])
    assert cfg.visible_zoom == (0.5, 3.0)
    for i in range(3):   # every object stays fully in view at s = 3
        scene = scenes.sample_scene(synthetic.scene_seed('test', i), cfg)
        K = pinhole.zoom_K(scene.K, 3.0)
        assert all(E.box_in_view(o, K, cfg.image_hw) for o in synthetic.scene_objects(scene))
        ids = np.unique(raycast.render(scene, K=K)['instance'])
        assert set(range(len(scene.objects))) <= set(ids.tolist())


def test_box_in_view():
    K = np.array([[20.0, 0, 16], [0, 20, 16], [0, 0, 1]])
    box = dict(center=np.array([0.0, 0.0, 4.0]), size=np.array([1.0, 1.0, 1.0]), yaw=0.3)
    assert E.box_in_view(box, K, (32, 32))
    assert not E.box_in_view(dict(box, center=np.array([2.5, 0.0, 4.0])), K, (32, 32))     # off to the right
    assert not E.box_in_view(dict(box, center=np.array([0.0, 0.0, 0.3])), K, (32, 32))     # through the camera
    assert not E.box_in_view(box, pinhole.zoom_K(K, 8.0), (32, 32))                         # zoomed out of view


def test_real_data_sweep_is_paired_and_keeps_the_aspect_ratio(tmp_path):
    cfg = scenes.SceneConfig(image_hw=(32, 48), n_objects=(2, 3))          # in view at s = 1 only
    js = omni3d.export_omni3d([scenes.sample_scene(synthetic.scene_seed('test', i), cfg) for i in range(6)], str(tmp_path))
    ds = omni3d.load_omni3d(js, str(tmp_path), ('depth', 'closer', 'detect'))
    sweep = E.camera_sweep(cfg, zooms=(1.0, 2.5), shifts=(), profiles=False)
    items, left_out = E.build_real_items(ds, sweep, (32, 32))
    assert len(items) == 2 * (6 - left_out)
    K0 = ds.records[0]['K']
    dropped = 0
    for i in {it['scene'] for it in items}:
        views = [it for it in items if it['scene'] == i]
        assert len({it['question'] for it in views}) == 1 and [it['s'] for it in views] == [1.0, 2.5]
        objects = ds.records[i]['objects']
        in_view = [o for o in objects if all(E.box_in_view(o, it['K'].double().numpy(), (32, 32)) for it in views)]
        dropped += len(objects) - len(in_view)
        named = [o for o in objects if o['name'] in views[0]['question']]
        assert all(any(o is p for p in in_view) for o in named)            # asked only about objects in view
        if views[0]['task'] == 'detect':
            assert len(in_view) == len(objects)
        K = views[0]['K'].double()                                          # letterboxed: 48 -> 32, centred
        assert K[0, 0] / K[1, 1] == pytest.approx(K0[0, 0] / K0[1, 1]) and K[0, 0] == pytest.approx(K0[0, 0] * 32 / 48)
        assert K[1, 2] == pytest.approx(K0[1, 2] * 32 / 48 + (32 - 32 * 32 / 48) / 2)
        image = views[0]['image']
        assert image.shape == (3, 32, 32) and not image[:, :5].any() and not image[:, -5:].any()   # padded
        assert image[:, 6:26].any()
    assert dropped + left_out > 0                                           # the zoom did crop objects


def test_eval_reads_what_train_writes_by_default_and_names_a_missing_run(tmp_path, monkeypatch):
    import train
    assert E.parse_args([]).ckpt == [train.TrainConfig.out]             # python eval.py after python train.py
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match='no such folder.*python train.py'):
        E.main(["--camera-shift"])
