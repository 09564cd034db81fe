"""Evaluation: do the model's metric answers survive a change of camera?

A pinhole camera maps an object of height H at depth Z to h = f·H/Z pixels, so pixels alone
fix (f, H, Z) only up to (λf, H, λZ). A model that ignores K learns its training focal length
as a constant: zoom the lens by s (f' = s·f) and its depths shrink to Z/s. One number shows it,
the *shortcut slope*: the least-squares slope of log(Z_pred/Z) against log s over the zoom
sweep, about −1 for a model that ignores the camera and about 0 for one that reads it.

The cross-camera protocol (DESIGN.md): the same held-out scenes (test-split seeds, disjoint
from training; every object fully visible for f' = s·f, s in [0.5, 2], so the comparison is
paired) and the same questions (one rng seed per scene and task) are asked through
  zoom_s      f' = s·f, s in {0.5, 0.67, 0.8, 1, 1.25, 1.5, 2}, rendered exactly by scenes.render
  shift_*     principal point moved by ±10 % of the width (x) or +10 % of the height (y)
  <profile>   the other named cameras of scenes.CAMERAS, s = f_profile / f_train
Real data (Omni3D JSON) has no renderer: augment.zoom / shift_principal_point stand in.

Metrics per task and camera (an answer that does not parse scores zero and is counted):
  depth, size, distance  MRA = 1/10 Σ_θ 1[|p−g|/g < 1−θ], θ in {0.50, 0.55, ..., 0.95}
                         (VSI-Bench); AbsRel = |p−g|/g; δ<1.25 = 1[max(p/g, g/p) < 1.25]
  center                 centre error ‖p−g‖ in metres
  box                    oriented 3D IoU (yaw about y), Acc@0.25 / Acc@0.5 (IoU ≥ k)
  closer                 accuracy of the named object
  detect                 F1@0.25: per category (the name), greedy matching highest IoU first,
                         a match needs IoU > 0.25 (VG-LLM); pooled over the camera's answers
Error metrics (AbsRel, centre error) average the parsed answers only: a missing answer has no
error, so read them next to the `unparsed` count.

Oriented 3D IoU: with R_y(yaw) = [[c,0,s],[0,1,0],[−s,0,c]] a box is a prism: a rotated
rectangle in the x–z plane times a vertical interval, so
  I = area(footprint_a ∩ footprint_b) · overlap([ya−ha/2, ya+ha/2], [yb−hb/2, yb+hb/2])
with the footprint intersection by Sutherland–Hodgman clipping of two convex polygons.

  python eval.py --ckpt runs/rgb runs/full --camera-shift --n-scenes 64 --out out/eval
"""
import math
import re

import numpy as np

ZOOMS = (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0)
SHIFTS = (('shift_x+10%', 0.1, 0.0), ('shift_x-10%', -0.1, 0.0), ('shift_y+10%', 0.0, 0.1))
THETAS = np.linspace(0.50, 0.95, 10)                   # the 10 MRA thresholds of VSI-Bench
N_NUMBERS = dict(depth=1, size=1, distance=1, center=3, box=7)
IOU_MATCH = 0.25                                       # detect: a match needs IoU > this

# ----------------------------------------------------------------------------- parsing
# Every parser returns None for anything that is not exactly the answer format: never raises.
_NUMBER = re.compile(r'[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?')
_NAME = re.compile(r"[a-z][a-z0-9 _'-]*")


def parse_number(token):
    """'3.27' -> 3.27; 'nan', 'inf', '1e999', '3,2', '1_0' -> None."""
    if not isinstance(token, str) or not _NUMBER.fullmatch(token.strip()):
        return None
    x = float(token)
    return x if math.isfinite(x) else None


def parse_numbers(text, n):
    """Exactly n whitespace-separated numbers, nothing else -> list of n floats, else None."""
    tokens = text.split() if isinstance(text, str) else []
    xs = [parse_number(t) for t in tokens]
    return xs if len(xs) == n and None not in xs else None


def parse_name(text):
    """An object name on one line ('Red  Box' -> 'red box'), else None."""
    if not isinstance(text, str) or '\n' in text.strip():
        return None
    name = ' '.join(text.lower().split())
    return name if _NAME.fullmatch(name) and not _is_float(name) else None


def _is_float(text):  # 'nan', 'inf', 'infinity' are numbers to float(), never names
    try:
        float(text)
        return True
    except ValueError:
        return False


def parse_detections(text):
    """Lines 'NAME x y z w h l yaw' -> [(name, [7 floats]), ...]; one bad line -> None."""
    lines = [ln for ln in text.splitlines() if ln.strip()] if isinstance(text, str) else []
    dets = []
    for line in lines:
        tokens = line.split()
        name, box = parse_name(' '.join(tokens[:-7])), parse_numbers(' '.join(tokens[-7:]), 7)
        if len(tokens) < 8 or name is None or box is None:
            return None
        dets.append((name, box))
    return dets or None


def parse_answer(task, text):
    """The value of an answer text for a task (float, list, name or detections), or None."""
    if task in ('depth', 'size', 'distance'):
        xs = parse_numbers(text, 1)
        return None if xs is None else xs[0]
    if task in N_NUMBERS:
        return parse_numbers(text, N_NUMBERS[task])
    if task == 'closer':
        return parse_name(text)
    if task == 'detect':
        return parse_detections(text)
    raise ValueError(f'unknown task {task!r}')


# ----------------------------------------------------------------------------- scalar metrics
def mra(pred, gt):
    """Mean relative accuracy (VSI-Bench): fraction of θ in THETAS with |p−g|/g < 1−θ."""
    rel = abs(pred - gt) / abs(gt)
    return float(np.mean(rel < 1.0 - THETAS))


def abs_rel(pred, gt):
    return abs(pred - gt) / abs(gt)


def delta_125(pred, gt):
    """1 if max(p/g, g/p) < 1.25 (a non-positive prediction never is)."""
    return float(pred > 0 and max(pred / gt, gt / pred) < 1.25)


def center_error(pred, gt):
    return float(np.linalg.norm(np.asarray(pred[:3], float) - np.asarray(gt[:3], float)))


# ----------------------------------------------------------------------------- oriented 3D IoU
def box_footprint(box):
    """(7,) box -> (4, 2) corners (x, z) of its floor rectangle, counter-clockwise in (x, z)."""
    x, _, z, w, _, l, yaw = box
    local = 0.5 * np.array([[-w, -l], [w, -l], [w, l], [-w, l]])  # (4, 2) local (x, z)
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, s], [-s, c]])                  # the (x, z) block of R_y(yaw), det +1
    return local @ rot.T + np.array([x, z])            # (4, 2)


def polygon_area(poly):
    """Signed shoelace area of an (M, 2) polygon (> 0 counter-clockwise)."""
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def clip_polygon(subject, clip):
    """Sutherland–Hodgman: subject ∩ clip for a convex counter-clockwise clip polygon."""
    out = [np.asarray(p, float) for p in subject]
    for i in range(len(clip)):
        a, b = clip[i], clip[(i + 1) % len(clip)]
        side = lambda p: (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])  # > 0: inside
        inp, out = out, []
        for j in range(len(inp)):
            p, q = inp[j - 1], inp[j]
            sp, sq = side(p), side(q)
            if (sp < 0) != (sq < 0):                   # the edge p->q crosses the line a->b
                out.append(p + sp / (sp - sq) * (q - p))
            if sq >= 0:
                out.append(q)
        if not out:
            break
    return np.array(out, float).reshape(-1, 2)         # (M, 2)


def box_iou_3d(a, b):
    """IoU of two (7,) boxes (x, y, z, w, h, l, yaw); 0 for degenerate or non-finite boxes."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or min(*a[3:6], *b[3:6]) <= 0:
        return 0.0
    fa, fb = box_footprint(a), box_footprint(b)
    area = abs(polygon_area(clip_polygon(fa, fb)))
    dy = min(a[1] + a[4] / 2, b[1] + b[4] / 2) - max(a[1] - a[4] / 2, b[1] - b[4] / 2)
    inter = area * max(dy, 0.0)
    union = np.prod(a[3:6]) + np.prod(b[3:6]) - inter
    return float(inter / union) if union > 0 else 0.0


# ----------------------------------------------------------------------------- detection F1
def match_detections(preds, gts, thr=IOU_MATCH):
    """True positives: per category, greedy pairs by IoU, highest first, IoU > thr."""
    tp = 0
    for name in {n for n, _ in gts}:
        P = [box for n, box in preds if n == name]
        G = [box for n, box in gts if n == name]
        pairs = sorted(((box_iou_3d(p, g), i, j) for i, p in enumerate(P) for j, g in enumerate(G)),
                       key=lambda t: (-t[0], t[1], t[2]))
        used_p, used_g = set(), set()
        for iou, i, j in pairs:
            if iou <= thr:
                break
            if i not in used_p and j not in used_g:
                used_p.add(i)
                used_g.add(j)
                tp += 1
    return tp


def f1_score(tp, n_pred, n_gt):
    """F1 = 2·TP / (#pred + #gt); 1 when there is nothing to find and nothing was found."""
    return 2.0 * tp / (n_pred + n_gt) if n_pred + n_gt else 1.0


# ----------------------------------------------------------------------------- scoring
def score(task, pred_text, target):
    """Score one answer: dict(parsed, pred, <metrics>). Unparsed answers score zero."""
    p = parse_answer(task, pred_text)
    out = dict(parsed=p is not None)
    if task in ('depth', 'size', 'distance'):
        g = float(target)
        out.update(pred=p, mra=0.0, delta=0.0, abs_rel=None)
        if p is not None:
            out.update(mra=mra(p, g), delta=delta_125(p, g), abs_rel=abs_rel(p, g))
    elif task == 'center':
        out.update(pred=p, center_err=None if p is None else center_error(p, target))
    elif task == 'box':
        iou = 0.0 if p is None else box_iou_3d(p, target)
        out.update(pred=p, iou=iou, acc25=float(iou >= 0.25), acc50=float(iou >= 0.5),
                   center_err=None if p is None else center_error(p, target))
    elif task == 'closer':
        out.update(pred=p, acc=float(p is not None and p == parse_name(target)))
    elif task == 'detect':
        gts = [(parse_name(n) or n, list(map(float, b))) for n, b in target]
        dets = p or []
        tp = match_detections(dets, gts)
        out.update(pred=p, tp=tp, n_pred=len(dets), n_gt=len(gts),
                   f1=f1_score(tp, len(dets), len(gts)))
    else:
        raise ValueError(f'unknown task {task!r}')
    return out


def shortcut_slope(s, pred, gt):
    """Least-squares slope of log(pred/gt) against log s (positive, finite pairs only)."""
    s, p, g = (np.asarray([np.nan if v is None else v for v in x], float) for x in (s, pred, gt))
    keep = np.isfinite(s) & np.isfinite(p) & np.isfinite(g) & (s > 0) & (p > 0) & (g > 0)
    x, y = np.log(s[keep]), np.log(p[keep] / g[keep])
    if len(np.unique(x)) < 2:
        return None
    x = x - x.mean()
    return float(np.dot(x, y - y.mean()) / np.dot(x, x))
