"""Guards eval.py: answer parsing, the metrics against hand-computed cases and an independent
Monte-Carlo IoU, detection F1 matching, the shortcut slope, and an end-to-end camera sweep of a
tiny untrained model (skipped until model.py, scenes.py and data.py exist).

    python -m pytest tests/test_eval.py -q
"""
import json
import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import eval as E  # noqa: E402


# ----------------------------------------------------------------------------- parsing
@pytest.mark.parametrize('task,text,value', [
    ('depth', '3.27', 3.27), ('depth', ' 3.27\n', 3.27), ('size', '-0.00', 0.0),
    ('distance', '2', 2.0), ('center', '0.41 1.12 3.27', [0.41, 1.12, 3.27]),
    ('box', '0.41 1.12 3.27 0.80 0.95 0.60 0.52', [0.41, 1.12, 3.27, 0.8, 0.95, 0.6, 0.52]),
    ('closer', 'Red  Box', 'red box'),
    ('detect', 'red box 0 1 2 1 1 1 0\n\nblue ball 1 1 4 .5 .5 .5 0',
     [('red box', [0, 1, 2, 1, 1, 1, 0]), ('blue ball', [1, 1, 4, .5, .5, .5, 0])]),
])
def test_parse_well_formed(task, text, value):
    assert E.parse_answer(task, text) == value


GARBAGE = [None, '', '   ', 'nan', 'inf', '-inf', 'NaN', '1e999', 'the depth is 3.27 m', '3.27 m',
           '3.27 3.27', '3,27', '1_0', '3.27.', '\x00\x01', '¿?', '--1', '3.27\n4.0']


@pytest.mark.parametrize('text', GARBAGE)
@pytest.mark.parametrize('task', ['depth', 'size', 'distance', 'center', 'box'])
def test_garbage_numeric_answers_are_unparsed_and_score_zero(task, text):
    target = 3.0 if E.N_NUMBERS[task] == 1 else [1.0, 1.0, 3.0, 1.0, 1.0, 1.0, 0.0][:E.N_NUMBERS[task]]
    assert E.parse_answer(task, text) is None
    s = E.score(task, text, target)
    assert not s['parsed']
    assert all(s.get(k, 0.0) == 0.0 for k in ('mra', 'delta', 'iou', 'acc25', 'acc50'))


@pytest.mark.parametrize('task,text', [
    ('center', '0.41 1.12'), ('center', '0.41 1.12 3.27 9'), ('center', '0.41 nan 3.27'),
    ('box', '0.41 1.12 3.27 0.80 0.95 0.60'), ('closer', ''), ('closer', '3.27'),
    ('closer', 'red box\nblue ball'), ('detect', ''), ('detect', 'red box 0 1 2 1 1 1'),
    ('detect', '0 1 2 1 1 1 0'), ('detect', 'red box 0 1 2 1 1 1 0\nblue ball 1 1 inf 1 1 1 0'),
    ('detect', 'red box 0 1 2 1 1 1 0\nand some trailing words'),
])
def test_partial_answers_are_unparsed(task, text):
    assert E.parse_answer(task, text) is None


def test_garbage_scores_zero_for_every_task():
    box = [0.0, 1.0, 3.0, 1.0, 1.0, 1.0, 0.0]
    targets = dict(depth=3.0, size=1.0, distance=2.0, center=box[:3], box=box, closer='red box',
                   detect=[('red box', box)])
    for task, target in targets.items():
        for text in GARBAGE + [b'3.27', 3.27, ['3.27']]:
            s = E.score(task, text, target)
            assert not s['parsed'], (task, text)
            assert s.get('f1', 0.0) == 0.0 and s.get('acc', 0.0) == 0.0


# ----------------------------------------------------------------------------- scalar metrics
def test_mra_hand_computed():
    assert E.mra(3.0, 3.0) == 1.0
    assert E.mra(3.0, 3.27) == pytest.approx(0.9)    # rel 0.0826: < 0.10, not < 0.05
    assert E.mra(1.32, 1.0) == pytest.approx(0.4)    # rel 0.32: < 0.5, 0.45, 0.4, 0.35
    assert E.mra(2.24, 2.0) == pytest.approx(0.8)    # rel 0.12: not < 0.10, 0.05
    assert E.mra(0.4, 1.0) == 0.0                    # rel 0.6
    assert E.mra(-3.0, 3.0) == 0.0


def test_abs_rel_and_delta():
    assert E.abs_rel(2.5, 2.0) == pytest.approx(0.25)
    assert E.delta_125(2.4, 2.0) == 1.0 and E.delta_125(1.7, 2.0) == 1.0
    assert E.delta_125(2.5, 2.0) == 0.0 and E.delta_125(1.5, 2.0) == 0.0
    assert E.delta_125(-2.0, 2.0) == 0.0 and E.delta_125(0.0, 2.0) == 0.0
    assert E.center_error([1, 2, 3], [1, 5, 7]) == pytest.approx(5.0)


# ----------------------------------------------------------------------------- 3D IoU
def test_iou_identical_disjoint_and_shifted_cubes():
    box = [0.3, 1.0, 4.0, 0.8, 0.6, 1.2, 0.7]
    assert E.box_iou_3d(box, box) == pytest.approx(1.0)
    assert E.box_iou_3d(box, [5.0, 1.0, 4.0, 0.8, 0.6, 1.2, 0.7]) == 0.0
    assert E.box_iou_3d(box, [0.3, 3.0, 4.0, 0.8, 0.6, 1.2, 0.7]) == 0.0  # stacked, no overlap
    cube = [0, 0, 0, 1, 1, 1, 0]
    for shift in ([0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]):  # overlap 1/2, union 3/2
        assert E.box_iou_3d(cube, np.add(cube, shift + [0] * 4)) == pytest.approx(1 / 3)
    assert E.box_iou_3d(cube, [0, 0, 0, 0, 1, 1, 0]) == 0.0          # degenerate
    assert E.box_iou_3d(cube, [0, 0, np.nan, 1, 1, 1, 0]) == 0.0


def test_iou_of_a_box_and_itself_rotated_by_90_degrees():
    # w=3, l=1: footprints 3x1 and 1x3 cross in a 1x1 square; heights equal (2)
    # I = 1·2 = 2, volumes 6 each, IoU = 2 / (6 + 6 - 2) = 0.2
    a = [0.0, 1.0, 5.0, 3.0, 2.0, 1.0, 0.0]
    for yaw in (math.pi / 2, -math.pi / 2):
        assert E.box_iou_3d(a, a[:6] + [yaw]) == pytest.approx(0.2)
    # yaw pi: the same box; yaw pi/4 of a square footprint: octagon of area 2(√2−1)·... (below)
    assert E.box_iou_3d(a, a[:6] + [math.pi]) == pytest.approx(1.0)
    sq = [0, 0, 0, 2, 1, 2, 0]  # 2x2 square vs itself at 45°: the octagon has area 8(√2−1)
    inter = 8 * (math.sqrt(2) - 1)
    assert E.box_iou_3d(sq, sq[:6] + [math.pi / 4]) == pytest.approx(inter / (8 - inter))


def test_footprint_follows_the_contract_yaw_convention():
    # X_cam = R_y(yaw) @ X_local + centre with R_y = [[c,0,s],[0,1,0],[-s,0,c]]:
    # at yaw = pi/2 the local +x axis points to camera -z
    rng = np.random.default_rng(3)
    box = np.r_[rng.normal(0, 1, 3), rng.uniform(0.5, 2, 3), rng.uniform(-math.pi, math.pi)]
    c, s = math.cos(box[6]), math.sin(box[6])
    R = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    w, _, l = box[3:6]
    local = np.array([[-w, 0, -l], [w, 0, -l], [w, 0, l], [-w, 0, l]]) / 2   # (4, 3)
    corners = local @ R.T + box[:3]                                         # (4, 3)
    assert np.allclose(E.box_footprint(box), corners[:, [0, 2]])
    assert np.allclose(E.box_footprint([0, 0, 0, 2, 1, 0, math.pi / 2])[1], [0, -1])
    assert E.polygon_area(E.box_footprint(box)) == pytest.approx(w * l)     # counter-clockwise


def mc_iou(a, b, rng, n=200_000):
    """Independent estimate: sample the bounding cube, test points in each box's local frame."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    r = max(np.linalg.norm(a[3:6]), np.linalg.norm(b[3:6]))
    lo = np.minimum(a[:3], b[:3]) - r / 2
    hi = np.maximum(a[:3], b[:3]) + r / 2
    pts = lo + (hi - lo) * rng.random((n, 3))

    def inside(box):
        c, s = math.cos(box[6]), math.sin(box[6])
        R = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        local = (pts - box[:3]) @ R                    # R^T (p - centre), row vectors
        return np.all(np.abs(local) <= box[3:6] / 2, axis=1)

    ia, ib = inside(a), inside(b)
    return (ia & ib).sum() / max((ia | ib).sum(), 1)


def test_iou_matches_monte_carlo_for_random_yawed_boxes():
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 5:
        a = np.r_[rng.normal(0, 0.3, 3), rng.uniform(0.3, 1.5, 3), rng.uniform(-math.pi, math.pi)]
        b = np.r_[a[:3] + rng.normal(0, 0.3, 3), rng.uniform(0.3, 1.5, 3), rng.uniform(-math.pi, math.pi)]
        iou = E.box_iou_3d(a, b)
        if iou < 0.05:
            continue
        assert iou == pytest.approx(mc_iou(a, b, rng), abs=0.02)
        assert iou == pytest.approx(E.box_iou_3d(b, a), abs=1e-12)
        checked += 1


# ----------------------------------------------------------------------------- detection F1
def test_f1_matching_hand_made_set():
    cube = [0, 0, 4, 1, 1, 1, 0]
    near = [0.5, 0, 4, 1, 1, 1, 0]                      # IoU 1/3 with cube
    bar, bar_at_quarter = [0, 0, 4, 5, 1, 1, 0], [3, 0, 4, 5, 1, 1, 0]
    assert E.box_iou_3d(bar, bar_at_quarter) == 0.25    # exactly the threshold
    gts = [('red box', cube), ('blue box', bar)]
    # duplicate of the red box (one TP, one FP); right box wrong category (FP);
    # the blue box at IoU exactly 0.25 (not a match)
    preds = [('red box', near), ('red box', cube), ('green box', cube), ('blue box', bar_at_quarter)]
    assert E.match_detections(preds, gts) == 1
    s = E.score('detect', '\n'.join(f'{n} ' + ' '.join(map(str, b)) for n, b in preds), gts)
    assert (s['tp'], s['n_pred'], s['n_gt']) == (1, 4, 2)
    assert s['f1'] == pytest.approx(2 * 1 / (4 + 2))
    # greedy takes the highest IoU first: the exact duplicate, not the first listed
    two = [('red box', [0.4, 0, 4, 1, 1, 1, 0]), ('red box', [0.1, 0, 4, 1, 1, 1, 0])]
    assert E.match_detections(two, [('red box', cube), ('red box', [0.9, 0, 4, 1, 1, 1, 0])]) == 2
    assert E.match_detections(gts, gts) == 2 and E.f1_score(2, 2, 2) == 1.0
    assert E.score('detect', 'garbage', gts)['f1'] == 0.0


# ----------------------------------------------------------------------------- shortcut slope
def test_shortcut_slope_of_synthetic_predictions():
    rng = np.random.default_rng(1)
    s = np.repeat(E.ZOOMS, 5)
    z = rng.uniform(1.5, 8.0, len(s))
    assert E.shortcut_slope(s, z / s, z) == pytest.approx(-1.0)   # ignores the camera
    assert E.shortcut_slope(s, z, z) == pytest.approx(0.0)         # reads the camera
    assert E.shortcut_slope(s, z * 1.3, z) == pytest.approx(0.0)   # biased, but not by s
    noisy = list(z / s)
    noisy[0], noisy[1], noisy[2] = None, -1.0, float('nan')        # skipped, never crash
    assert E.shortcut_slope(s, noisy, z) == pytest.approx(-1.0)
    assert E.shortcut_slope([1.0, 1.0], [2.0, 3.0], [2.0, 2.0]) is None
    # a constant answer also has slope 0: depth gain tells it from a model that reads the camera
    assert E.shortcut_slope(s, np.full_like(z, 4.0), z) == pytest.approx(0.0, abs=0.2)
    assert E.depth_gain(z, z) == pytest.approx(1.0) and E.depth_gain(np.full_like(z, 4.0), z) == pytest.approx(0.0)
    assert E.depth_gain(list(z ** 0.5), z) == pytest.approx(0.5) and E.depth_gain([None, 1.0], [2.0, 3.0]) is None


# ----------------------------------------------------------------------------- the sweep, end to end
def test_camera_sweep_and_paired_visibility():
    scenes = pytest.importorskip('scenes')
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
            ids = set(np.unique(scenes.render(scene, K=fn(scene.K))['instance']).tolist())
            assert set(range(len(scene.objects))) <= ids, (seed, name)


def test_real_data_views_follow_the_sweep_through_augment(tmp_path):
    pytest.importorskip('data')
    import data
    import scenes
    cfg = scenes.SceneConfig(image_hw=(32, 40), visible_zoom=(0.5, 2.0))
    js = data.export_omni3d([scenes.sample_scene(data.scene_seed('test', i), cfg) for i in range(2)], str(tmp_path))
    ds = data.load_omni3d(js, str(tmp_path), ('depth', 'closer'))
    sweep = [c for c in E.camera_sweep(cfg, zooms=(1.0, 2.0), profiles=False) if c[0] != 'shift_y+10%']
    items = E.build_real_items(ds, sweep, (32, 40))
    assert len(items) == 2 * 4 and {it['task'] for it in items} <= {'depth', 'closer'}
    K = scenes.camera_K('standard', (32, 40))
    views = {it['camera']: it for it in items if it['scene'] == 0}
    for name, _, fn in sweep:                            # K of every view = the sweep's K exactly
        assert np.allclose(views[name]['K'].numpy(), fn(K), atol=1e-4)
        assert views[name]['question'] == ds[0]['question'] and views[name]['target'] == ds[0]['target']
    assert views['zoom_1.00']['image'].equal(ds[0]['image'])
    shifted, base = views['shift_x+10%']['image'].int(), ds[0]['image'].int()   # content moves 4 px right
    assert (shifted[:, :, 4:] - base[:, :, :-4]).abs().max() <= 1


def test_end_to_end_sweep_of_a_tiny_untrained_model(tmp_path):
    model = pytest.importorskip('model')
    import torch
    torch.manual_seed(0)
    cfg = model.ModelConfig(image_size=32, patch_size=8, vision_width=32, vision_layers=1, vision_heads=2,
                            llm_width=32, llm_layers=1, llm_heads=2, geometry_hidden=16)
    ckpt = tmp_path / 'tiny'
    model.CameraAwareMLLM(cfg).save(str(ckpt))
    (ckpt / 'train_config.json').write_text(json.dumps(dict(camera='standard', image_size=32)))
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
    table = (out / 'table.md').read_text()
    assert 'zoom_2.00' in table and '| shortcut slope |' in table and '| depth gain at s=1 |' in table
    saved = json.loads((out / 'results.json').read_text())
    assert saved['results']['tiny']['summary'] == json.loads(json.dumps(summary))
    records = [json.loads(line) for line in (out / 'records_tiny.jsonl').read_text().splitlines()]
    assert len(records) == 2 * 2 * 2                     # scenes x cameras x tasks
    for r in records:                                    # paired: one question per (scene, task)
        twin = [q for q in records if (q['scene'], q['task']) == (r['scene'], r['task'])]
        assert len({q['question'] for q in twin}) == 1 and len({q['camera'] for q in twin}) == 2
    assert (out / 'zoom.png').exists()
    # real data: an Omni3D export of two scenes, zoom and shifts through augment
    import data
    import scenes
    cfg = scenes.SceneConfig(image_hw=(32, 32), visible_zoom=(0.5, 2.0))
    js = data.export_omni3d([scenes.sample_scene(data.scene_seed('test', i), cfg) for i in range(2)],
                            str(tmp_path / 'omni'))
    results = E.main(['--ckpt', str(ckpt), '--camera-shift', '--data', js, '--image-root', str(tmp_path / 'omni'),
                      '--tasks', 'depth', '--zooms', '1,2', '--max-new-tokens', '4', '--out', str(tmp_path / 'real')])
    cams = results['tiny']['summary']['cameras']
    assert set(cams) == {'zoom_1.00', 'zoom_2.00', 'shift_x+10%', 'shift_x-10%', 'shift_y+10%'}
    assert all(c['tasks']['depth']['n'] == 2 for c in cams.values())


def test_scoring_chain_on_data_answers_perfect_and_camera_blind_oracles():
    pytest.importorskip('data')
    import data
    import scenes
    cfg = scenes.SceneConfig(image_hw=(32, 32), n_objects=(2, 3), visible_zoom=(0.5, 2.0))
    sweep = [c for c in E.camera_sweep(cfg, profiles=False) if c[0].startswith('zoom_')]
    items = E.build_eval_items(cfg, sweep, 3)
    assert {it['task'] for it in items} == set(data.TASKS)
    # the reference answers parse and score perfectly (IoU up to the 2-decimal rounding)
    summary = E.summarize([E.make_record(it, it['answer']) for it in items])
    for cam in summary['cameras'].values():
        t = cam['tasks']
        assert all(v['unparsed'] == 0 for v in t.values())
        assert t['depth']['mra'] == t['size']['mra'] == t['distance']['mra'] == 1.0
        assert t['closer']['acc'] == 1.0 and t['detect']['f1@0.25'] == 1.0 and t['box']['iou'] > 0.9
        assert t['center']['center_err'] < 0.01
    assert abs(summary['shortcut_slope']) < 0.01 and summary['depth_gain'] == pytest.approx(1.0, abs=0.01)
    # a model that answers as if every camera were the training camera: depth z / s
    blind = [E.make_record(it, data.fmt(it['target'] / it['s']) if it['task'] == 'depth' else it['answer'])
             for it in items]
    summary = E.summarize(blind)
    assert summary['shortcut_slope'] == pytest.approx(-1.0, abs=0.02)
    mra = {c: v['tasks']['depth']['mra'] for c, v in summary['cameras'].items()}
    assert mra['zoom_1.00'] == 1.0 and mra['zoom_2.00'] <= 0.1 and mra['zoom_0.50'] == 0.0  # rel 0.5, 1
