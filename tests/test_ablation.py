"""Guards the ablation's machinery: the paired bootstrap of intervals.py (a known interval, exact pairing), the
two baselines (camera as text, the canonical-focal label space and its way back), the no-pose
control, and pooling seeds into rows with the shortcut index.

    python -m pytest tests/test_ablation.py -q
"""
import json
import math
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import camera_embed  # noqa: E402
from common import intervals  # noqa: E402
from common import metrics  # noqa: E402
from common import report  # noqa: E402
from data import synthetic  # noqa: E402
from data import tokens  # noqa: E402
import eval as E  # noqa: E402
import model  # noqa: E402
import train  # noqa: E402
from world import pinhole  # noqa: E402
from world import scenes  # noqa: E402


# ----------------------------------------------------------------------------- the bootstrap
def test_bootstrap_interval_of_a_mean_has_the_normal_width():
    """Scenes with values N(2, 1): the 95 % interval of the mean is 2 ± 1.96·σ/√n (σ the sample's)."""
    x = np.random.default_rng(0).normal(2.0, 1.0, size=(1, 900))           # (runs, scenes)
    draws = intervals.bootstrap(lambda runs, scenes: x[runs][:, scenes].mean(), 1, 900, n_boot=2000)
    lo, hi = intervals.interval(draws)
    half = 1.96 * x.std() / math.sqrt(900)
    assert lo < x.mean() < hi
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.1)


def test_bootstrap_resamples_runs_and_is_paired():
    """Two runs with different offsets: the interval of the mean widens with the run-to-run spread;
    a statistic minus itself (another row with the same draws) has the interval [0, 0]; the scene
    draws do not depend on how many seeds a row has."""
    x = np.random.default_rng(1).normal(0.0, 0.1, size=(2, 200)) + np.array([[0.0], [1.0]])
    stat = lambda runs, scenes: x[runs][:, scenes].mean()
    a, b = intervals.bootstrap(stat, 2, 200, n_boot=500), intervals.bootstrap(stat, 2, 200, n_boot=500)
    lo, hi = intervals.interval(a)
    assert lo < 0.1 and hi > 0.9                                           # run 0 twice, or run 1 twice
    assert np.array_equal(a, b) and intervals.interval(a - b) == (0.0, 0.0)
    one = intervals.bootstrap(lambda runs, scenes: x[0, scenes].mean(), 1, 200, n_boot=500)   # one seed only
    assert np.array_equal(one, intervals.bootstrap(lambda runs, scenes: x[0, scenes].mean(), 3, 200, n_boot=500))


# ----------------------------------------------------------------------------- canonical focal
def _pitched_pose(deg):
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    c2w = np.eye(4)
    c2w[1:3, 1:3] = [[c, -s], [s, c]]
    return c2w


@pytest.mark.parametrize('task', ['depth', 'center', 'box', 'detect', 'size', 'closer'])
def test_canonical_round_trip_for_any_camera(task):
    """An oracle that answers the true canonical value is mapped back to the metric answer exactly
    (up to the answer format's two decimals: the canonical text's rounding, scaled by fx / f_c, and
    the metric text's own), for random K and pitched poses."""
    rng = np.random.default_rng(2)
    f_c = synthetic.canonical_focal('standard', 128)
    for _ in range(20):
        K = pinhole.zoom_K(scenes.camera_K('standard', (128, 128)), rng.uniform(0.5, 2.0))
        c2w = _pitched_pose(rng.uniform(-20, 20))
        obj = dict(name='red chair', center=rng.uniform([-1, -0.5, 2], [1, 1, 9]), size=rng.uniform(0.3, 1.5, 3),
                   yaw=rng.uniform(-1, 1))
        obj['box_center'] = c2w[:3, :3] @ obj['center']
        objects = [obj, dict(obj, name='blue box', center=obj['center'] + [0.5, 0, 1.0])]
        objects[1]['box_center'] = c2w[:3, :3] @ objects[1]['center']
        qa = synthetic.make_qa(objects, task, np.random.default_rng(0))
        exact = synthetic.canonical_target(task, qa['target'], K, c2w, f_c)
        back = synthetic.canonical_target(task, exact, K, c2w, f_c, inverse=True)
        assert _close(back, qa['target'], 1e-9)                            # exact maps are inverse
        item = dict(qa, K=torch.tensor(K, dtype=torch.float32), c2w=torch.tensor(c2w, dtype=torch.float32))
        text = E.from_canonical(item, synthetic.answer_text(task, exact), f_c)   # through the answer text
        assert _close(metrics.parse_answer(task, text) if task != 'closer' else text, qa['target'],
                      0.005 * (1 + K[0, 0] / f_c) + 1e-6)
    if task == 'depth':                                                    # a 2x zoom halves the label
        K2 = pinhole.zoom_K(scenes.camera_K('standard', (128, 128)), 2.0)
        assert synthetic.canonical_target('depth', 4.0, K2, np.eye(4), f_c) == pytest.approx(2.0)


def _close(a, b, tol):
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and a and isinstance(a[0], tuple):              # detections
        return all(n == m and _close(list(x), list(y), tol) for (n, x), (m, y) in zip(a, b))
    return np.allclose(np.asarray(a, float), np.asarray(b, float), atol=tol, rtol=0)


def test_canonical_dataset_teaches_scaled_depths_and_rejects_distance():
    scene = scenes.SceneConfig(image_hw=(64, 64), visible_zoom=(0.5, 2))
    f_c = synthetic.canonical_focal('standard', 64)
    plain = synthetic.SyntheticDataset(synthetic.DataConfig(scene=scene, tasks=('depth',)), 'train', 8, E.augment.AugmentConfig())
    canon = synthetic.SyntheticDataset(synthetic.DataConfig(scene=scene, tasks=('depth',), canonical_focal=f_c), 'train', 8,
                                  E.augment.AugmentConfig())
    for i in range(8):
        a, b = plain[i], canon[i]
        assert b['target'] == pytest.approx(a['target'] * f_c / float(a['K'][0, 0]))
        assert b['answer'] == synthetic.fmt(b['target'])
    with pytest.raises(ValueError, match='distance'):
        synthetic.canonical_target('distance', 2.0, np.eye(3), np.eye(4), f_c)
    with pytest.raises(ValueError, match='distance'):
        train.check_config(train.TrainConfig(canonical_focal=True, tasks='depth,distance'))


# ----------------------------------------------------------------------------- camera as text, no pose
def test_camera_text_is_written_for_the_pixels_the_model_reads():
    K = scenes.camera_K('standard', (128, 128))
    assert camera_embed.camera_text(K) == 'Camera: fx 110.9 fy 110.9 cx 64.0 cy 64.0 px. '
    cfg = model.ModelConfig(image_size=64, patch_size=16, camera_text=True)
    m = model.CameraAwareMLLM(cfg, tokenizer=tokens.bpe_tokenizer(synthetic.tokenizer_corpus(camera_text=True)))
    q = tokens.questions_with_camera(['How far?'], torch.tensor(K)[None], (128, 128), 64)   # 128 px, read at 64
    assert q == ['Camera: fx 55.4 fy 55.4 cx 32.0 cy 32.0 px. How far?']
    assert m.tokenizer.decode(m.tokenizer(q[0]).input_ids) == q[0]         # the BPE writes it exactly
    batch = dict(images=torch.zeros(1, 3, 128, 128, dtype=torch.uint8), K=torch.tensor(K, dtype=torch.float32)[None],
                 question=['How far?'])
    prompt = lambda mm: mm.tokenizer.decode([i for i in mm.encode(batch)['input_ids'][0].tolist() if i >= 0])
    assert q[0] in prompt(m)                                               # the path forward and generate take
    assert 'Camera' not in prompt(model.CameraAwareMLLM(model.ModelConfig(image_size=64)))


def test_no_pose_control_ignores_the_pose():
    torch.manual_seed(0)
    m = model.CameraAwareMLLM(model.ModelConfig(image_size=32, patch_size=16, pose=False, zero_init=False)).eval()
    images, K = torch.randint(0, 255, (1, 3, 32, 32), dtype=torch.uint8), torch.tensor(scenes.camera_K('standard', (32, 32)))[None]
    tilted = torch.tensor(_pitched_pose(15), dtype=torch.float32)[None]
    with torch.no_grad():
        assert torch.equal(m.visual_tokens(images, K, tilted)[0], m.visual_tokens(images, K, None)[0])
        m.cfg.pose = True
        assert not torch.equal(m.visual_tokens(images, K, tilted)[0], m.visual_tokens(images, K, None)[0])


# ----------------------------------------------------------------------------- seeds pooled into rows
def test_group_runs_by_seed_suffix():
    groups = report.group_runs(['full_s0', 'full_s1', 'rgb_only-seed2', 'camera_text_s0', 'default'])
    assert groups == {'full': ['full_s0', 'full_s1'], 'rgb_only': ['rgb_only-seed2'],
                      'camera_text': ['camera_text_s0'], 'default': ['default']}


def _records(blind: bool, n=40, noise=0.0, seed=0, clip=(0, math.inf)):
    """Depth and box answers of a model that tracks depth (gain 1) and reads K, or ignores it
    (and, clipped, never answers outside `clip`, as a model stays within its training depths)."""
    rng, out = np.random.default_rng(seed), []
    for i in range(n):
        z = rng.uniform(2, 8)
        for s in (0.5, 1.0, 2.0):
            pred = float(np.clip(z / s, *clip)) if blind else z * math.exp(rng.normal(0, noise))
            rec = dict(scene=i, camera=f'zoom_{s:.2f}', s=s, task='depth', pred=pred, target=z, mra=metrics.mra(pred, z))
            box = dict(scene=i, camera=f'zoom_{s:.2f}', s=s, task='box', acc25=float(not blind or s == 1.0),
                       acc50=0.0, iou=0.3 * float(not blind or s == 1.0), z_pred=pred, z_target=z)
            out += [rec, box]
    return out


def test_seed_summary_gives_the_shortcut_index_of_known_models():
    records = {'blind_s0': _records(True), 'blind_s1': _records(True, seed=1),
               'reads_s0': _records(False, noise=0.05), 'reads_s1': _records(False, noise=0.05, seed=1)}
    summary, draws = intervals.seed_summary(report.group_runs(records), records, n_boot=200)
    blind, reads = summary['blind'], summary['reads']
    assert blind['depth_index']['mean'] == pytest.approx(-1.0) and blind['box_index']['mean'] == pytest.approx(-1.0)
    assert abs(reads['depth_index']['mean']) < 0.05 and reads['depth_gain']['lo'] > 0.8
    assert blind['box_acc25_worst_ratio']['mean'] == 0.0 and reads['box_acc25@zoom_2.00']['mean'] == 1.0
    diff = intervals.differences(draws, 'reads')['blind']
    assert diff['depth_index']['hi'] < -0.8                                # an interval that separates
    table = report.seed_tables(summary, {'reads': {'blind': diff}})
    assert blind['depth_index_in_range']['mean'] == pytest.approx(-1.0)
    # a blind model that stays within its training depths: a flatter slope overall, -1 in range
    clipped = {'clipped_s0': _records(True, n=200, clip=(2, 8))}
    row = intervals.seed_summary(report.group_runs(clipped), clipped, n_boot=50)[0]['clipped']
    assert row['depth_index']['mean'] > -0.8 and row['depth_index_in_range']['mean'] == pytest.approx(-1.0)
    assert '| blind | 2 |' in table and 'Difference to reads' in table


def test_reuse_reads_back_records_only_for_the_same_items(tmp_path):
    items = [dict(scene=i, camera='zoom_1.00', task='depth', question='How far is the red box?') for i in range(3)]
    path = tmp_path / 'records_x.jsonl'
    path.write_text(''.join(json.dumps(dict(it, pred_text='3.00')) + '\n' for it in items))
    assert [r['pred_text'] for r in E.saved_records(str(path), items)] == ['3.00'] * 3
    assert E.saved_records(str(path), items[:2]) is None                      # other items: evaluate again
    assert E.saved_records(str(path), [dict(items[0], camera='zoom_2.00')] + items[1:]) is None
    assert E.saved_records(str(tmp_path / 'none.jsonl'), items) is None
    whole = path.read_text()
    for broken in (whole[:-20], whole + '7\n', whole.replace('"task"', '"tsak"', 1)):   # cut short, not a record
        path.write_text(broken)
        assert E.saved_records(str(path), items) is None


def test_mean_interval_of_one_sample_leaves_out_missing_items():
    assert intervals.mean_interval([0.3] * 20) == pytest.approx((0.3, 0.3, 0.3))
    x = np.random.default_rng(0).normal(size=400)
    mean, lo, hi = intervals.mean_interval(np.append(x, [np.nan] * 5))            # an unparsed answer: no value
    assert mean == pytest.approx(x.mean()) and lo < mean < hi and hi - lo == pytest.approx(2 * 1.96 / 20, rel=0.2)
    assert all(math.isnan(v) for v in intervals.mean_interval([np.nan, np.nan]))
