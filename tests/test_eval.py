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


def mc_iou(a, b, rng, n=400_000):
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
    while checked < 6:
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
