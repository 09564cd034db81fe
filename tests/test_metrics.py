"""Guards metrics.py: answer parsing (and how it differs from lmms-eval's, case by case), MRA with
lmms-eval's ≤ at exact ties, AbsRel and δ, the oriented 3D IoU against hand-computed cases and an
independent Monte-Carlo estimate, detection F1 by VG-LLM's protocol against an independent
re-implementation of its code and the pooled F1, and the shortcut slope. Pure functions, no model.

    python -m pytest tests/test_metrics.py -q
"""
import math
from collections import defaultdict

import numpy as np
import pytest

from common import metrics as M

ZOOMS = (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0)


# ----------------------------------------------------------------------------- parsing
@pytest.mark.parametrize('task,text,value', [
    ('depth', '3.27', 3.27), ('depth', ' 3.27\n', 3.27), ('size', '-0.00', 0.0),
    ('distance', '2', 2.0), ('center', '0.41 1.12 3.27', [0.41, 1.12, 3.27]),
    ('box', '0.41 1.12 3.27 0.80 0.95 0.60 0.52', [0.41, 1.12, 3.27, 0.8, 0.95, 0.6, 0.52]),
    ('closer', 'Red  Box', 'red box'), ('rel_distance', 'A 3.61, B 1.20: B', 'b'),     # measurements, then the choice
    ('rel_direction', 'red bin 12, blue ball 75: right', 'right'),
    ('detect', 'red box 0 1 2 1 1 1 0\n\nblue ball 1 1 4 .5 .5 .5 0',
     [('red box', [0, 1, 2, 1, 1, 1, 0]), ('blue ball', [1, 1, 4, .5, .5, .5, 0])]),
])
def test_parse_well_formed(task, text, value):
    assert M.parse_answer(task, text) == value


GARBAGE = [None, '', '   ', 'nan', 'inf', '-inf', 'NaN', '1e999', 'the depth is 3.27 m', '3.27 3.27',
           '3,27', '3.27m', '\x00\x01', '¿?', '--1', '3.27\n4.0', '3.27 m or 3.5 m', '3.27 m (10.7 ft)']
# what pretrained LLMs write, and lmms-eval reads as a number: a one-number answer by the lenient rule only
AS_LLMS_WRITE = {'3.27 m': 3.27, '3.27 meters': 3.27, '3.27 metres.': 3.27, '3.27.': 3.27, '3.27\nmetres': 3.27,
                 '1_0': 10.0, '٣.٢٧': 3.27, '３.２７': 3.27,                  # Arabic-Indic, full-width digits
                 '3.27\xa0': 3.27, '\u20073.27': 3.27}                       # non-ASCII spaces


@pytest.mark.parametrize('text', GARBAGE)
@pytest.mark.parametrize('task', ['depth', 'size', 'distance', 'center', 'box'])
def test_garbage_numeric_answers_are_unparsed_and_score_zero(task, text):
    target = 3.0 if M.N_NUMBERS[task] == 1 else [1.0, 1.0, 3.0, 1.0, 1.0, 1.0, 0.0][:M.N_NUMBERS[task]]
    assert M.parse_answer(task, text) is None
    s = M.score(task, text, target)
    assert not s['parsed'] and not s['lenient']
    assert all(s.get(k, 0.0) == 0.0 for k in ('mra', 'delta', 'iou', 'acc25', 'acc50'))


@pytest.mark.parametrize('text,value', AS_LLMS_WRITE.items())
@pytest.mark.parametrize('task', [t for t, n in M.N_NUMBERS.items() if n == 1])
def test_one_number_answers_as_llms_write_them_parse_leniently_and_are_flagged(task, text, value):
    assert M.parse_answer(task, text) == value and M.parse_answer(task, text, lenient=False) is None
    s = M.score(task, text, value)
    assert s['parsed'] and s['lenient'] and s['mra'] == 1.0
    assert not M.score(task, '3.27', 3.27)['lenient']                  # the exact format is not lenient


@pytest.mark.parametrize('text', AS_LLMS_WRITE)
@pytest.mark.parametrize('task', ['center', 'box', 'detect'])
def test_several_number_answers_stay_strict(task, text):
    n = M.N_NUMBERS.get(task, 7)
    assert M.parse_answer(task, ' '.join([text] * n)) is None and M.parse_answer(task, 'red box ' + text) is None


@pytest.mark.parametrize('task,text', [
    ('center', '0.41 1.12'), ('center', '0.41 1.12 3.27 9'), ('center', '0.41 nan 3.27'),
    ('box', '0.41 1.12 3.27 0.80 0.95 0.60'), ('closer', ''), ('closer', '3.27'),
    ('closer', 'red box\nblue ball'), ('rel_distance', 'A 3.61, B 1.20:'), ('detect', ''), ('detect', 'red box 0 1 2 1 1 1'),
    ('detect', '0 1 2 1 1 1 0'), ('detect', 'red box 0 1 2 1 1 1 0\nblue ball 1 1 inf 1 1 1 0'),
    ('detect', 'red box 0 1 2 1 1 1 0\nand some trailing words'),
])
def test_partial_answers_are_unparsed(task, text):
    assert M.parse_answer(task, text) is None


def test_garbage_scores_zero_for_every_task():
    box = [0.0, 1.0, 3.0, 1.0, 1.0, 1.0, 0.0]
    targets = dict(depth=3.0, size=1.0, distance=2.0, center=box[:3], box=box, closer='red box',
                   detect=[('red box', box)])
    for task, target in targets.items():
        for text in GARBAGE + [b'3.27', 3.27, ['3.27'], b'3.27 m']:
            s = M.score(task, text, target)
            assert not s['parsed'], (task, text)
            assert s.get('f1', 0.0) == 0.0 and s.get('acc', 0.0) == 0.0


# ----------------------------------------------------------------------------- scalar metrics
def test_mra_hand_computed():
    assert M.mra(3.0, 3.0) == 1.0
    assert M.mra(3.0, 3.27) == pytest.approx(0.9)    # rel 0.0826: <= 0.10, not <= 0.05
    assert M.mra(1.32, 1.0) == pytest.approx(0.4)    # rel 0.32: <= 0.5, 0.45, 0.4, 0.35
    assert M.mra(2.24, 2.0) == pytest.approx(0.8)    # rel 0.12: not <= 0.10, 0.05
    assert M.mra(0.4, 1.0) == 0.0                    # rel 0.6
    assert M.mra(-3.0, 3.0) == 0.0


def test_abs_rel_and_delta():
    assert M.abs_rel(2.5, 2.0) == pytest.approx(0.25)
    assert M.delta_125(2.4, 2.0) == 1.0 and M.delta_125(1.7, 2.0) == 1.0
    assert M.delta_125(2.5, 2.0) == 0.0 and M.delta_125(1.5, 2.0) == 0.0
    assert M.delta_125(-2.0, 2.0) == 0.0 and M.delta_125(0.0, 2.0) == 0.0
    assert M.center_error([1, 2, 3], [1, 5, 7]) == pytest.approx(5.0)


# ----------------------------------------------------------------------------- 3D IoU
def test_iou_identical_disjoint_and_shifted_cubes():
    box = [0.3, 1.0, 4.0, 0.8, 0.6, 1.2, 0.7]
    assert M.box_iou_3d(box, box) == pytest.approx(1.0)
    assert M.box_iou_3d(box, [5.0, 1.0, 4.0, 0.8, 0.6, 1.2, 0.7]) == 0.0
    assert M.box_iou_3d(box, [0.3, 3.0, 4.0, 0.8, 0.6, 1.2, 0.7]) == 0.0  # stacked, no overlap
    cube = [0, 0, 0, 1, 1, 1, 0]
    for shift in ([0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]):  # overlap 1/2, union 3/2
        assert M.box_iou_3d(cube, np.add(cube, shift + [0] * 4)) == pytest.approx(1 / 3)
    assert M.box_iou_3d(cube, [0, 0, 0, 0, 1, 1, 0]) == 0.0          # degenerate
    assert M.box_iou_3d(cube, [0, 0, np.nan, 1, 1, 1, 0]) == 0.0


def test_iou_of_a_box_and_itself_rotated_by_90_degrees():
    # w=3, l=1: footprints 3x1 and 1x3 cross in a 1x1 square; heights equal (2)
    # I = 1·2 = 2, volumes 6 each, IoU = 2 / (6 + 6 - 2) = 0.2
    a = [0.0, 1.0, 5.0, 3.0, 2.0, 1.0, 0.0]
    for yaw in (math.pi / 2, -math.pi / 2):
        assert M.box_iou_3d(a, a[:6] + [yaw]) == pytest.approx(0.2)
    # yaw pi: the same box; yaw pi/4 of a square footprint: octagon of area 2(√2−1)·... (below)
    assert M.box_iou_3d(a, a[:6] + [math.pi]) == pytest.approx(1.0)
    sq = [0, 0, 0, 2, 1, 2, 0]  # 2x2 square vs itself at 45°: the octagon has area 8(√2−1)
    inter = 8 * (math.sqrt(2) - 1)
    assert M.box_iou_3d(sq, sq[:6] + [math.pi / 4]) == pytest.approx(inter / (8 - inter))


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
    assert np.allclose(M.box_footprint(box), corners[:, [0, 2]])
    assert np.allclose(M.box_footprint([0, 0, 0, 2, 1, 0, math.pi / 2])[1], [0, -1])
    assert M.polygon_area(M.box_footprint(box)) == pytest.approx(w * l)     # counter-clockwise


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
        iou = M.box_iou_3d(a, b)
        if iou < 0.05:
            continue
        assert iou == pytest.approx(mc_iou(a, b, rng), abs=0.02)
        assert iou == pytest.approx(M.box_iou_3d(b, a), abs=1e-12)
        checked += 1


# ----------------------------------------------------------------------------- detection F1
def test_f1_matching_hand_made_set():
    cube = [0, 0, 4, 1, 1, 1, 0]
    near = [0.5, 0, 4, 1, 1, 1, 0]                      # IoU 1/3 with cube
    bar, bar_at_quarter = [0, 0, 4, 5, 1, 1, 0], [3, 0, 4, 5, 1, 1, 0]
    assert M.box_iou_3d(bar, bar_at_quarter) == 0.25    # exactly the threshold
    gts = [('red box', cube), ('blue box', bar)]
    # duplicate of the red box (one TP, one FP); right box wrong category (FP);
    # the blue box at IoU exactly 0.25 (not a match)
    preds = [('red box', near), ('red box', cube), ('green box', cube), ('blue box', bar_at_quarter)]
    assert M.match_detections(preds, gts) == 1
    s = M.score('detect', '\n'.join(f'{n} ' + ' '.join(map(str, b)) for n, b in preds), gts)
    assert (s['tp'], s['n_pred'], s['n_gt']) == (1, 4, 2)
    assert s['f1_pooled'] == pytest.approx(2 * 1 / (4 + 2))
    # VG-LLM: red 1 TP 1 FP (F1 2/3), green 1 FP (0), blue 1 FP 1 FN (0): mean over 3 categories
    assert s['counts'] == {'red box': [1, 1, 0], 'green box': [0, 1, 0], 'blue box': [0, 1, 1]}
    assert s['f1'] == pytest.approx(2 / 3 / 3)
    # greedy takes the highest IoU first: the exact duplicate, not the first listed
    two = [('red box', [0.4, 0, 4, 1, 1, 1, 0]), ('red box', [0.1, 0, 4, 1, 1, 1, 0])]
    assert M.match_detections(two, [('red box', cube), ('red box', [0.9, 0, 4, 1, 1, 1, 0])]) == 2
    assert M.match_detections(gts, gts) == 2 and M.f1_score(2, 2, 2) == 1.0
    assert M.score('detect', 'garbage', gts)['f1'] == 0.0 and M.score('detect', 'garbage', gts)['f1_pooled'] == 0.0


# ----------------------------------------------------------------------------- shortcut slope
def test_shortcut_slope_of_synthetic_predictions():
    rng = np.random.default_rng(1)
    s = np.repeat(ZOOMS, 5)
    z = rng.uniform(1.5, 8.0, len(s))
    assert M.shortcut_slope(s, z / s, z) == pytest.approx(-1.0)   # ignores the camera
    assert M.shortcut_slope(s, z, z) == pytest.approx(0.0)         # reads the camera
    assert M.shortcut_slope(s, z * 1.3, z) == pytest.approx(0.0)   # biased, but not by s
    noisy = list(z / s)
    noisy[0], noisy[1], noisy[2] = None, -1.0, float('nan')        # skipped, never crash
    assert M.shortcut_slope(s, noisy, z) == pytest.approx(-1.0)
    assert M.shortcut_slope([1.0, 1.0], [2.0, 3.0], [2.0, 2.0]) is None
    # a constant answer also has slope 0: depth gain tells it from a model that reads the camera
    assert M.shortcut_slope(s, np.full_like(z, 4.0), z) == pytest.approx(0.0, abs=0.2)
    assert M.depth_gain(z, z) == pytest.approx(1.0) and M.depth_gain(np.full_like(z, 4.0), z) == pytest.approx(0.0)
    assert M.depth_gain(list(z ** 0.5), z) == pytest.approx(0.5) and M.depth_gain([None, 1.0], [2.0, 3.0]) is None


# ----------------------------------------------------------------------------- against the peers' code
def lmms_eval_number(text):
    """lmms-eval's VSI-Bench reading of a numeric answer (vsibench/utils.py: fuzzy_matching, to_float)."""
    try:
        return float(text.split(' ')[0].rstrip('.').strip())
    except ValueError:
        return None


def lmms_eval_mra(pred, target):
    """lmms-eval's mean_relative_accuracy(pred, target, .5, .95, .05), re-typed from its source."""
    conf_intervs = np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))
    return (abs(pred - target) / target <= 1 - conf_intervs).mean()


def test_mra_counts_exact_ties_as_lmms_eval():
    assert M.mra(2.5, 2.0) == pytest.approx(0.6)          # rel 0.25 = 1 − 0.75: counted (≤)
    assert M.mra(1.5, 1.0) == pytest.approx(0.1)          # rel 0.5 = 1 − 0.5: counted
    assert len(M.THETAS) == 10 and M.THETAS[0] == 0.5 and M.THETAS[-1] == 0.95
    pairs = [(p, g) for g in range(1, 21) for p in range(0, 41)]
    assert all(M.mra(float(p), float(g)) == lmms_eval_mra(p, g) for p, g in pairs)
    rng = np.random.default_rng(0)
    for p, g in rng.uniform(0.1, 10, (200, 2)).round(2):
        assert M.mra(p, g) == lmms_eval_mra(p, g)


@pytest.mark.parametrize('text,theirs,strict,ours', [   # the table in metrics.py's docstring, case by case
    ('3.27', 3.27, 3.27, 3.27), ('3.27\n', 3.27, 3.27, 3.27), ('+3.27', 3.27, 3.27, 3.27),
    ('3.27 m', 3.27, None, 3.27), ('3.27 metres', 3.27, None, 3.27), ('3.27.', 3.27, None, 3.27),
    ('3.27 m.', 3.27, None, 3.27), ('1_0', 10.0, None, 10.0), ('٣.٢', 3.2, None, 3.2), ('３', 3.0, None, 3.0),
    ('nan', math.nan, None, None), ('inf', math.inf, None, None), ('1e999', math.inf, None, None),
    ('3.27 3.27', 3.27, None, None), ('3.27 m or 3.5 m', 3.27, None, None), ('3.27 m (10.7 ft)', 3.27, None, None),
    (' 3.27', None, 3.27, 3.27), ('  3.27  ', None, 3.27, 3.27), (' 3.27 m', None, None, 3.27),
    ('3.27\nmetres', None, None, 3.27),
    ('3,27', None, None, None), ('3.27m', None, None, None), ('about 3.27', None, None, None), ('', None, None, None),
])
def test_parsing_differs_from_lmms_eval_as_documented(text, theirs, strict, ours):
    got = lmms_eval_number(text)
    assert got == theirs or (theirs is not None and math.isnan(theirs) and math.isnan(got))
    assert M.parse_answer('depth', text, lenient=False) == strict and M.parse_answer('depth', text) == ours
    assert M.score('depth', text, 3.0)['lenient'] == (strict is None and ours is not None)


def vg_llm_f1(samples, thr=0.25):
    """VG-LLM's threedod compute_ap + aggregate, re-typed: per sample, predictions grouped by label
    in output order take the unused same-label gt of highest IoU (TP if > thr); TP/FP/FN summed
    per label over samples; per-label precision, recall, F1; mean F1 over the labels seen."""
    tp, fp, fn = defaultdict(int), defaultdict(int), defaultdict(int)
    for preds, gts in samples:
        P, G, used = defaultdict(list), defaultdict(list), defaultdict(set)
        for name, box in preds:
            P[name].append(box)
        for name, box in gts:
            G[name].append(box)
        for cat in P:
            for box in P[cat]:
                match, max_iou = -1, 0
                for i, g in enumerate(G[cat]):
                    if i in used[cat]:
                        continue
                    iou = M.box_iou_3d(box, g)
                    if iou > max_iou:
                        max_iou, match = iou, i
                if max_iou > thr:
                    used[cat].add(match)
                    tp[cat] += 1
                else:
                    fp[cat] += 1
        for cat in G:
            fn[cat] += sum(i not in used[cat] for i in range(len(G[cat])))
        for cat in set(P) | set(G):
            tp[cat] += 0
    f1s = []
    for cat in tp:
        p = tp[cat] / (tp[cat] + fp[cat]) if tp[cat] + fp[cat] else 0
        r = tp[cat] / (tp[cat] + fn[cat]) if tp[cat] + fn[cat] else 0
        f1s.append(2 * p * r / (p + r) if p + r else 0)
    return float(np.mean(f1s)) if f1s else 0.0


def test_detection_f1_follows_vg_llm():
    cube = lambda x: [x, 0, 4, 1, 1, 1, 0]
    chairs = [('chair', cube(2.0 * i)) for i in range(9)]
    gts = chairs + [('table', cube(30.0))]
    s = M.score('detect', '\n'.join(f'{n} ' + ' '.join(map(str, b)) for n, b in chairs), gts)
    assert s['f1'] == pytest.approx(0.5) and s['f1_pooled'] == pytest.approx(18 / 19)   # 9 found, 1 missed
    assert M.category_f1(M.match_in_order([], [])) == 0.0 and M.f1_score(0, 0, 0) == 1.0   # empty / empty
    # in output order: x = 0.55 takes the gt at 1 (IoU 0.38 > 0.29), so x = 1.02 finds nothing left
    preds, two = [('cube', cube(0.55)), ('cube', cube(1.02))], [('cube', cube(0.0)), ('cube', cube(1.0))]
    assert M.match_in_order(preds, two) == {'cube': [1, 1, 1]} and M.match_detections(preds, two) == 2
    # random sets of several answers: the same number as VG-LLM's code
    rng = np.random.default_rng(0)
    for _ in range(20):
        samples = []
        for _ in range(rng.integers(1, 4)):
            g = [(str(rng.choice(['a', 'b', 'c'])), np.r_[rng.uniform(0, 2, 3), rng.uniform(0.5, 1, 3), 0])
                 for _ in range(rng.integers(0, 4))]
            p = [(n if rng.random() < 0.8 else 'c', b + np.r_[rng.normal(0, 0.3, 3), 0, 0, 0, rng.normal(0, 0.3)])
                 for n, b in g if rng.random() < 0.8]
            p += [(str(rng.choice(['a', 'b'])), np.r_[rng.uniform(0, 2, 3), 1, 1, 1, 0]) for _ in range(rng.integers(0, 2))]
            samples.append((p, g))
        ours = M.category_f1([M.match_in_order(p, g) for p, g in samples])
        assert ours == pytest.approx(vg_llm_f1(samples), abs=1e-12)
