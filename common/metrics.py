"""
Metrics: parse an answer text back to numbers, and score it against the exact target.

The idea. Every answer of data.py is plain text in one exact format (numbers with two decimals,
one space apart; names in lower case), so scoring is two pure steps: parse the text (anything
that is not the format is *unparsed* and scores zero, save a one-number answer that the lenient
rule below reads), then compare numbers. The comparisons are the peers' own, so that a number
here means what it means in their papers:

    MRA (VSI-Bench, lmms-eval's vsibench/utils.py)   1/10 Σ_θ 1[ |ŷ − y| / y ≤ 1 − θ ],  θ = 0.50, 0.55, ..., 0.95
        (≤, as lmms-eval: ŷ = 2.5 for y = 2 has relative error 0.25 and passes θ = 0.75: MRA 0.6)
    AbsRel |ŷ − y| / y;    δ<1.25 = 1[ max(ŷ/y, y/ŷ) < 1.25 ] (0 for ŷ ≤ 0);    centre error ‖ĉ − c‖ (m)
    3D IoU of two boxes (x, y, z, w, h, l, yaw), yaw about the camera's y axis (R_y below): a box
        is an x–z rectangle times a y interval, I = area(footprint_a ∩ footprint_b) · Δy, the
        footprints clipped by Sutherland–Hodgman.  Acc@k = 1[IoU ≥ k].
    detect F1@0.25 (VG-LLM, lmms_eval/tasks/threedod/utils.py), the reported number: predictions
        in output order, each matched to the still unused ground-truth box *of its category* with
        the highest IoU (a TP if that IoU > 0.25, else an FP); unmatched ground truth are FNs.
        TP, FP, FN are summed per category over all the answers of a set, then
        F1_c = 2·TP_c / (2·TP_c + FP_c + FN_c) (0 when TP_c = 0), and F1 = mean of F1_c over the
        categories present in some prediction or ground truth (0 when there is none: VG-LLM scores
        an empty prediction of an empty scene 0).
        Example: 9 chairs found, 1 table missed: F1 = (1 + 0) / 2 = 0.50 (pooled below: 0.95).
    detect F1@0.25 pooled, a second number: one F1 = 2·ΣTP / (Σ#pred + Σ#gt) over all categories,
        with per-category pairs matched greedily, highest IoU first, IoU > 0.25 (1 when there is
        nothing to find and nothing was found). Larger categories weigh more; VG-LLM's does not.
    shortcut slope d log(ŷ/y) / d log s over the zooms s (least squares): −1 for a model that
        ignores K, 0 for one that reads it; depth gain d log ŷ / d log y at one camera (1 tracks depth).
    shortcut index = slope / gain: a blind model answers log ŷ ≈ a + g·log(y/s), so its slope is
        −g, and the index is −1 however well it has learnt depth (g); 0 for a model that reads K.
    intervals (intervals.py): the paired percentile bootstrap over training seeds and test scenes (95 %).

Parsing, against lmms-eval's. lmms-eval reads a VSI-Bench number as
float(text.split(' ')[0].rstrip('.').strip()) and scores a failure 0. Here the contract is
data.py's exact format: the strict rule wants the whole text to be exactly n ASCII numbers,
finite, split by whitespace. Pretrained chat models (SmolLM2 among them) write '3.27 m' or
'3.27 meters.' instead, so a one-number answer (depth, size, distance and views.py's numbers)
that fails the strict rule goes to the lenient one, lmms-eval's: the first word, a trailing full
stop stripped, read by float() and finite, provided no other word of the answer is a number too
('3.27 m or 3.5 m' says two, and stays unparsed). Each score says whether only the lenient rule
read the answer (`lenient`), and eval.py reports their share, so a model's drift from the format
stays visible. Centre, box and detect answers are read by the strict rule alone. What each
accepts that the other does not (a one-number answer):
    lmms-eval only  'nan' / 'inf' / '1e999' (which then score 0 anyway), and an answer that states
                    two numbers ('3.27 3.27', '3.27 m (10.7 ft)': lmms-eval takes the first)
    here only       leading spaces (' 3.27', ' 3.27 m': lmms-eval's first word is then ''), a
                    unit after a newline ('3.27\nmetres'), and several numbers (centre, box, detect
                    lines), which VSI-Bench never asks for
    lenient alike   trailing words or units ('3.27 m', '3.27 metres'), a trailing full stop
                    ('3.27.'), digit underscores ('1_0' = 10), non-ASCII digits (Arabic-Indic
                    '٣.٢', full-width '３')
    neither         '3,27', '3.27m', 'about 3.27', '' (lmms-eval: 'about' is the first word)
VG-LLM parses detect line by line and skips lines it cannot read; here one bad line leaves the
whole answer unparsed (all its ground truth then counts as missed).

Shapes: a box (7,) = (x, y, z, w, h, l, yaw); a footprint (4, 2) corners (x, z); a polygon (M, 2).
"""
import math
import re
from collections import defaultdict

import numpy as np

THETAS = np.linspace(0.50, 0.95, int((0.95 - 0.50) / 0.05 + 2))   # lmms-eval's 10 MRA thresholds
N_NUMBERS = dict(depth=1, size=1, distance=1, center=3, box=7,
                 object_count=1, abs_distance=1, object_size=1, room_size=1)   # the last four: views.py
SCALARS = ('depth', 'size', 'distance', 'object_count', 'abs_distance', 'object_size', 'room_size')   # MRA
CHOICES = ('closer', 'rel_distance', 'rel_direction', 'appearance_order')    # a name (or left/right): accuracy
IOU_MATCH = 0.25                                                   # detect: a match needs IoU > this

# ----------------------------------------------------------------------------- parsing
# Every parser returns None for anything that is not the answer format (parse_lenient: not what
# lmms-eval reads as one number): never raises.
_NUMBER = re.compile(r'[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?')   # ASCII digits only
_NAME = re.compile(r"[a-z][a-z0-9 _'-]*")
_AROUND = '.,;:!?()[]{}"\''                     # punctuation around a word that may be a number


def parse_numbers(text, n):
    """Exactly n whitespace-separated finite ASCII numbers, nothing else -> n floats, else None.
    ('nan', 'inf', '1e999', '3,2', '1_0', '3.27 m', '٣.٢', '３' -> None)"""
    tokens = text.split() if isinstance(text, str) and text.isascii() else []
    xs = [float(t) for t in tokens] if len(tokens) == n and all(map(_NUMBER.fullmatch, tokens)) else None
    return xs if xs is not None and all(map(math.isfinite, xs)) else None


def parse_lenient(text):
    """One number as lmms-eval's VSI-Bench scoring reads it: the first word, a trailing full stop
    stripped, by float() ('3.27 m', '3.27 meters.', '3.27.' -> 3.27), if finite and no other word
    is a number ('3.27 or 3.5', '3.27 m (10.7 ft)' -> None: two numbers, which one was meant?)."""
    words = text.split() if isinstance(text, str) else []
    first = _float(words[0].rstrip('.')) if words else None
    second = any(_float(w.strip(_AROUND)) is not None for w in words[1:])
    return first if first is not None and math.isfinite(first) and not second else None


def _float(word):
    """float(word) (Python's reading, lmms-eval's too: '1_0' = 10, '٣.٢' = 3.2), else None."""
    try:
        return float(word)
    except ValueError:
        return None


def parse_name(text):
    """An ASCII object name on one line ('Red  Box' -> 'red box'), else None."""
    ok = isinstance(text, str) and text.isascii() and '\n' not in text.strip()
    name = ' '.join(text.lower().split()) if ok else ''
    return name if _NAME.fullmatch(name) and name not in ('nan', 'inf', 'infinity') else None


def parse_detections(text):
    """Lines 'NAME x y z w h l yaw' -> [(name, [7 floats]), ...]; one bad line -> None."""
    rows = [ln.split() for ln in text.splitlines() if ln.strip()] if isinstance(text, str) else []
    dets = [(parse_name(' '.join(t[:-7])), parse_numbers(' '.join(t[-7:]), 7)) for t in rows]
    ok = all(len(t) >= 8 and name is not None and box is not None for t, (name, box) in zip(rows, dets))
    return dets if dets and ok else None


def parse_answer(task, text, lenient=True):
    """The value of an answer text for a task (float, list, name or detections), or None. A
    one-number answer that is not the exact format is read by parse_lenient, unless lenient=False."""
    if task in N_NUMBERS and N_NUMBERS[task] > 1:
        return parse_numbers(text, N_NUMBERS[task])
    if task in N_NUMBERS:
        xs = parse_numbers(text, 1)
        return xs[0] if xs else parse_lenient(text) if lenient else None
    if task in CHOICES:      # an answer may show its measurements first ('A 3.61, B 1.20: B'): the choice ends it
        return parse_name(text.rsplit(':', 1)[-1] if isinstance(text, str) else text)
    return parse_detections(text)


def lenient_only(task, text) -> bool:
    """Whether only the lenient rule reads the answer (the share of these shows format drift)."""
    return parse_answer(task, text, lenient=False) is None and parse_answer(task, text) is not None


# ----------------------------------------------------------------------------- scalar metrics
def abs_rel(pred, gt):
    """|p − g| / g (lmms-eval's abs_dist_norm; every target here is positive)."""
    return abs(pred - gt) / gt


def mra(pred, gt):
    """Mean relative accuracy (VSI-Bench, as lmms-eval): fraction of θ in THETAS with |p−g|/g ≤ 1−θ."""
    return float(np.mean(abs_rel(pred, gt) <= 1.0 - THETAS))


def delta_125(pred, gt):
    """1 if max(p/g, g/p) < 1.25 (a non-positive prediction never is)."""
    return float(pred > 0 and max(pred / gt, gt / pred) < 1.25)


def center_error(pred, gt):
    return float(np.linalg.norm(np.subtract(pred[:3], gt[:3], dtype=float)))


# ----------------------------------------------------------------------------- oriented 3D IoU
def box_footprint(box):
    """(7,) box -> (4, 2) corners (x, z) of its floor rectangle, counter-clockwise in (x, z).
    With R_y(yaw) = [[c,0,s],[0,1,0],[−s,0,c]], X_cam = R_y · X_local + centre."""
    x, _, z, w, _, l, yaw = box
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, s], [-s, c]])                  # the (x, z) block of R_y(yaw), det +1
    return 0.5 * np.array([[-w, -l], [w, -l], [w, l], [-w, l]]) @ rot.T + np.array([x, z])  # (4, 2)


def polygon_area(poly):
    """Signed shoelace area of an (M, 2) polygon (> 0 counter-clockwise; 0 for M < 3)."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def clip_polygon(subject, clip):
    """Sutherland–Hodgman: subject ∩ clip for a convex counter-clockwise clip polygon."""
    out = [np.asarray(p, float) for p in subject]
    for i in range(len(clip)):
        a, b = clip[i], clip[(i + 1) % len(clip)]

        def side(p):  # > 0: left of a->b, inside
            return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])

        inp, out = out, []
        for p, q in zip(inp[-1:] + inp[:-1], inp):     # each edge p->q of the subject
            sp, sq = side(p), side(q)
            if (sp < 0) != (sq < 0):                   # the edge p->q crosses the line a->b
                out.append(p + sp / (sp - sq) * (q - p))
            if sq >= 0:
                out.append(q)
    return np.array(out, float).reshape(-1, 2)         # (M, 2)


def box_iou_3d(a, b):
    """IoU of two (7,) boxes (x, y, z, w, h, l, yaw); 0 for degenerate or non-finite boxes."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or min(*a[3:6], *b[3:6]) <= 0:
        return 0.0
    dy = min(a[1] + a[4] / 2, b[1] + b[4] / 2) - max(a[1] - a[4] / 2, b[1] - b[4] / 2)
    inter = abs(polygon_area(clip_polygon(box_footprint(a), box_footprint(b)))) * max(dy, 0.0)
    union = np.prod(a[3:6]) + np.prod(b[3:6]) - inter
    return float(inter / union) if union > 0 else 0.0


# ----------------------------------------------------------------------------- detection F1
def match_in_order(preds, gts, thr=IOU_MATCH):
    """VG-LLM's matching -> {category: [TP, FP, FN]} for every category in preds or gts.
    preds, gts: [(name, box (7,)), ...]; preds in output order."""
    counts = {name: [0, 0, 0] for name, _ in list(preds) + list(gts)}
    used = defaultdict(set)                            # category -> indices of matched gts
    for name, box in preds:
        cands = [(j, g) for j, (n, g) in enumerate(gts) if n == name and j not in used[name]]
        best, best_iou = None, 0.0
        for j, g in cands:                             # highest IoU, the first one on ties
            iou = box_iou_3d(box, g)
            if iou > best_iou:
                best, best_iou = j, iou
        if best_iou > thr:
            used[name].add(best)
            counts[name][0] += 1
        else:
            counts[name][1] += 1
    for j, (name, _) in enumerate(gts):
        counts[name][2] += j not in used[name]
    return counts


def category_f1(counts):
    """Mean over categories of F1_c = 2·TP / (2·TP + FP + FN) (0 without a TP); 0 if no category.
    counts: {category: [TP, FP, FN]}, or a list of such dicts (summed per category first)."""
    total = defaultdict(lambda: np.zeros(3))
    for c in [counts] if isinstance(counts, dict) else counts:
        for name, v in c.items():
            total[name] += v
    f1 = [2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0 for tp, fp, fn in total.values()]
    return float(np.mean(f1)) if f1 else 0.0


def match_detections(preds, gts, thr=IOU_MATCH):
    """True positives of the pooled F1: per category, greedy pairs by IoU, highest first, IoU > thr."""
    tp = 0
    for name in {n for n, _ in gts}:
        P, G = ([box for n, box in dets if n == name] for dets in (preds, gts))
        used_p, used_g = set(), set()
        for neg_iou, i, j in sorted((-box_iou_3d(p, g), i, j) for i, p in enumerate(P) for j, g in enumerate(G)):
            if -neg_iou > thr and i not in used_p and j not in used_g:
                used_p.add(i)
                used_g.add(j)
        tp += len(used_p)
    return tp


def f1_score(tp, n_pred, n_gt):
    """Pooled F1 = 2·TP / (#pred + #gt); 1 when there is nothing to find and nothing was found."""
    return 2.0 * tp / (n_pred + n_gt) if n_pred + n_gt else 1.0


# ----------------------------------------------------------------------------- one answer
def score(task, pred_text, target):
    """Score one answer: dict(parsed, lenient (read only by the lenient rule), pred, <metrics>).
    Unparsed answers score zero. detect: f1 (VG-LLM, this answer alone), counts {category: [TP,
    FP, FN]} to sum over a set, and the pooled numbers tp, n_pred, n_gt, f1_pooled."""
    p = parse_answer(task, pred_text)
    out = dict(parsed=p is not None, lenient=lenient_only(task, pred_text), pred=p)
    if task in SCALARS:
        g, ok = float(target), p is not None
        out.update(mra=mra(p, g) if ok else 0.0, delta=delta_125(p, g) if ok else 0.0,
                   abs_rel=abs_rel(p, g) if ok else None)
    elif task == 'box':
        iou = 0.0 if p is None else box_iou_3d(p, target)
        out.update(iou=iou, acc25=float(iou >= 0.25), acc50=float(iou >= 0.5))
    elif task in CHOICES:
        out.update(acc=float(p is not None and p == parse_name(target)))
    elif task == 'detect':
        gts, dets = [(parse_name(n) or n, list(map(float, b))) for n, b in target], p or []
        counts, tp = match_in_order(dets, gts), match_detections(dets, gts)
        out.update(f1=category_f1(counts), counts=counts, tp=tp, n_pred=len(dets), n_gt=len(gts),
                   f1_pooled=f1_score(tp, len(dets), len(gts)))
    elif task != 'center':
        raise ValueError(f'unknown task {task!r}')
    if task in ('center', 'box'):
        out.update(center_err=None if p is None else center_error(p, target))
    return out


# ----------------------------------------------------------------------------- camera shortcut
def fit_slope(x, y):
    """Least-squares slope of y on x over the finite pairs; None without two distinct x.
    x, y: sequences (None counts as missing) or float arrays of one shape."""
    x, y = (np.asarray(a, float) if isinstance(a, np.ndarray) else
            np.asarray([np.nan if v is None else v for v in a], float) for a in (x, y))
    x, y = np.broadcast_arrays(x, y)
    keep = np.isfinite(x) & np.isfinite(y)
    if len(np.unique(x[keep])) < 2:
        return None
    x, y = x[keep] - x[keep].mean(), y[keep]
    return float(np.dot(x, y - y.mean()) / np.dot(x, x))


def fit_gain_and_slope(log_z, log_s, log_pred):
    """(g, b) of the least-squares plane log ẑ = a + g·log z + b·log s over the finite triples
    (nan, nan with too few or degenerate ones): g the depth gain, b the response to the zoom."""
    z, s, p = (np.asarray(v, float).ravel() for v in (log_z, log_s, log_pred))
    ok = np.isfinite(z) & np.isfinite(s) & np.isfinite(p)
    X = np.stack([np.ones(ok.sum()), z[ok], s[ok]], 1)                     # (n, 3)
    if ok.sum() < 4 or np.linalg.matrix_rank(X) < 3:
        return math.nan, math.nan
    _, g, b = np.linalg.lstsq(X, p[ok], rcond=None)[0]
    return float(g), float(b)


def safe_log(v):
    """log of a positive number, else nan (None, 0, negatives: left out of fits)."""
    return math.log(v) if v is not None and v > 0 else math.nan


def shortcut_slope(s, pred, gt):
    """Slope of log(pred/gt) against log s: −1 ignores the camera, 0 reads it (or is constant)."""
    return fit_slope([safe_log(v) for v in s], [safe_log(p) - safe_log(g) for p, g in zip(pred, gt)])


def depth_gain(pred, gt):
    """Slope of log pred against log gt at one camera: 1 tracks depth, 0 a constant answer.
    Read the shortcut slope next to it: a model that ignores the image has slope 0 too."""
    return fit_slope([safe_log(g) for g in gt], [safe_log(p) for p in pred])
