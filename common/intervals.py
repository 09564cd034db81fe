"""
Rows pooled over training seeds, with 95 % intervals from the paired bootstrap.

The idea. A row of the ablation is one configuration trained with several seeds, every run
answering the same items (scenes × cameras). Every statistic of a row (depth MRA per camera, 3D
IoU, the shortcut slope, gain and index of metrics.py) is computed on all its runs and scenes
together; its interval comes from resampling both: n_boot times, draw runs and scenes with
replacement and recompute the statistic, then take the 2.5 and 97.5 percentiles of the draws.
The bootstrap is paired: a scene is resampled with its answers through every camera, and the scene
draws depend only on (number of scenes, n_boot, seed), so every camera and every row sees the same
resampled scenes, and the draws of a difference (row − reference) are the differences of the draws.

Worked number. Two seeds of 'full' scoring depth MRA 0.86 and 0.84 on 128 scenes: the row's point
value is the mean over the 2 × 128 answers, and each draw picks 2 runs out of {0, 1} (00, 01, 10 or
11) and 128 scenes out of 128, so the interval counts both the seed-to-seed and the scene-to-scene
spread; report.seed_tables writes it as '0.85 [lo, hi]'.

Shapes: R runs, S scenes, C cameras, Z zoom cameras; a field (R, S, C), a draw (n_boot, statistics).
"""
import math
import warnings

import numpy as np

from common.metrics import fit_gain_and_slope, fit_slope, safe_log

# ----------------------------------------------------------------------------- the paired bootstrap
def bootstrap(stat, n_runs, n_scenes, n_boot=1000, seed=0):
    """The paired bootstrap over training seeds and test scenes: n_boot times, draw n_runs run
    indices and n_scenes scene indices with replacement and evaluate stat(runs, scenes) (a number
    or a vector) -> (n_boot, ...) draws. Scenes and runs come from two separate streams, so the
    scene draws depend only on (n_scenes, n_boot, seed): statistics of two cameras or two
    configurations (even with different numbers of seeds) see the same resampled scenes, and the
    draws of a difference are the differences of the draws. Resampling a scene keeps its answers
    through every camera together (paired)."""
    scene_rng, run_rng = np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])
    draws = []
    for _ in range(n_boot):
        scenes, runs = scene_rng.integers(n_scenes, size=n_scenes), run_rng.integers(n_runs, size=n_runs)
        draws.append(stat(runs, scenes))
    return np.asarray(draws, float)


def interval(draws, level=0.95):
    """The percentile interval (lo, hi) of bootstrap draws along axis 0 (nan draws left out)."""
    tail = 50 * (1 - level)
    with warnings.catch_warnings():                    # a statistic that is nan in every draw: nan
        warnings.simplefilter('ignore', RuntimeWarning)
        return np.nanpercentile(draws, tail, axis=0), np.nanpercentile(draws, 100 - tail, axis=0)


def mean_interval(x, n_boot=1000, seed=0) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean of one sample of items (nan left out) and its 95 % bootstrap interval,
    the items drawn with replacement; a paired difference is the mean of its per-item differences.
    nan throughout where no item has a value."""
    x = np.asarray(x, float)
    if np.isnan(x).all():
        return math.nan, math.nan, math.nan
    draws = np.nanmean(x[np.random.default_rng(seed).integers(len(x), size=(n_boot, len(x)))], axis=1)
    lo, hi = interval(draws)
    return float(np.nanmean(x)), float(lo), float(hi)


# ----------------------------------------------------------------------------- rows pooled over seeds
MIN_GAIN = 0.1   # below it a row has not learnt depth, and slope / gain means nothing: no index
FIELDS = ('depth_mra', 'depth_logp', 'depth_logt', 'box_iou', 'box_acc25', 'box_acc50', 'box_logp', 'box_logt')


def run_arrays(runs, cameras) -> dict:
    """runs: each run's records over the same items -> {field: (R, S, C) array}, R runs, S scenes,
    C cameras; nan where a field has no value (an unparsed answer's log, a task not asked)."""
    scenes = sorted({rec['scene'] for records in runs for rec in records})
    row, col = {s: i for i, s in enumerate(scenes)}, {c: j for j, c in enumerate(cameras)}
    A = {k: np.full((len(runs), len(scenes), len(cameras)), np.nan) for k in FIELDS}
    for r, records in enumerate(runs):
        for rec in records:
            at = (r, row[rec['scene']], col[rec['camera']])
            if rec['task'] == 'depth':
                A['depth_mra'][at], A['depth_logp'][at] = rec['mra'], safe_log(rec['pred'])
                A['depth_logt'][at] = safe_log(rec['target'])
            elif rec['task'] == 'box':
                A['box_iou'][at], A['box_acc25'][at], A['box_acc50'][at] = rec['iou'], rec['acc25'], rec['acc50']
                A['box_logp'][at], A['box_logt'][at] = safe_log(rec['z_pred']), safe_log(rec['z_target'])
    return A


def _mean(a):
    with np.errstate(all='ignore'), warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        return float(np.nanmean(a)) if np.isfinite(a).any() else math.nan


def row_statistics(A, cameras, s) -> tuple[list, callable]:
    """(names, stat): stat(runs, scenes) -> the vector of a row's statistics on those resampled
    runs and scenes: per camera c, depth_mra@c, box_iou@c (mean 3D IoU), box_acc25@c and
    box_acc50@c; the worst ratio over the zooms of depth MRA and box Acc@0.25 to their s = 1
    values; and for depth and for the box centre's camera-frame depth, the shortcut slope (over
    the zoom_* cameras), the gain (at s = 1) and the shortcut index = slope / gain (−1: the
    training focal read from the pixels; 0: K read; none for a gain below MIN_GAIN).
    index_in_range: b / g of log ẑ = a + g·log z + b·log s (fit_gain_and_slope) over the items
    whose camera-blind answer z/s stays within the 5–95 % range of the true depths at s = 1 (the
    depths the model was trained to say): a blind model that cannot answer beyond its training
    range has a flatter slope on the others. (Both coefficients from one fit: selecting items by
    z/s selects by z too, which biases a slope fitted alone.)"""
    zoom = [j for j, c in enumerate(cameras) if c.startswith('zoom_')]
    base = [j for j in zoom if s[j] == 1.0][:1]
    x = np.log(np.asarray(s, float)[zoom])                                 # (Z,)
    names = [f'{k}@{c}' for c in cameras for k in ('depth_mra', 'box_iou', 'box_acc25', 'box_acc50')]
    names += ['depth_mra_worst_ratio', 'box_acc25_worst_ratio']
    names += [f'{t}_{k}' for t in ('depth', 'box') for k in ('slope', 'gain', 'index', 'index_in_range')]
    in_range = {}
    for t in ('depth', 'box'):                                             # (R, S, Z): z/s seen in training
        logt = A[f'{t}_logt']
        lo, hi = (np.nanpercentile(logt[..., base[0]], q) if base and np.isfinite(logt).any() else math.nan
                  for q in (5, 95))
        blind = logt[..., zoom] - x                                        # log(z/s)
        in_range[t] = (blind >= lo) & (blind <= hi)

    def stat(runs, scenes):
        sub = {k: v[runs][:, scenes] for k, v in A.items()}                # (R, S, C)
        out = [_mean(sub[k][..., j]) for j in range(len(cameras)) for k in ('depth_mra', 'box_iou', 'box_acc25', 'box_acc50')]
        for k in ('depth_mra', 'box_acc25'):
            means = [_mean(sub[k][..., j]) for j in zoom]
            at1 = _mean(sub[k][..., base[0]]) if base else math.nan
            out.append(min(means) / at1 if means and at1 > 0 else math.nan)
        for t in ('depth', 'box'):
            logp, logt = sub[f'{t}_logp'], sub[f'{t}_logt']
            slope = fit_slope(x, (logp - logt)[..., zoom]) if zoom else None
            gain = fit_slope(logt[..., base[0]], logp[..., base[0]]) if base else None
            out += [math.nan if v is None else v for v in (slope, gain)]
            ok = out[-1] >= MIN_GAIN
            out.append(out[-2] / out[-1] if ok else math.nan)
            keep = in_range[t][runs][:, scenes]
            g, b = fit_gain_and_slope(logt[..., zoom][keep], np.broadcast_to(x, keep.shape)[keep],
                                      logp[..., zoom][keep]) if zoom else (math.nan, math.nan)
            out.append(b / g if g >= MIN_GAIN else math.nan)
        return out
    return names, stat


def seed_summary(groups, records, n_boot=1000) -> tuple[dict, dict]:
    """{row: {statistic: {mean, lo, hi}}} over each group's runs, and the bootstrap draws
    {row: (names, (n_boot, k) array)} (paired: one resampling of scenes for every row)."""
    summary, draws = {}, {}
    for row, labels in groups.items():
        runs = [records[label] for label in labels]
        cams = list(dict.fromkeys(r['camera'] for r in runs[0]))
        s = [next(r['s'] for r in runs[0] if r['camera'] == c) for c in cams]
        A = run_arrays(runs, cams)
        names, stat = row_statistics(A, cams, s)
        point = stat(np.arange(len(runs)), np.arange(A['depth_mra'].shape[1]))
        d = bootstrap(stat, len(runs), A['depth_mra'].shape[1], n_boot)
        lo, hi = interval(d)
        summary[row] = dict(runs=labels, **{n: dict(mean=v, lo=float(a), hi=float(b))
                                          for n, v, a, b in zip(names, point, lo, hi)})
        draws[row] = (names, d)
    return summary, draws


def differences(draws, reference) -> dict:
    """{row: {statistic: {mean, lo, hi}}}: row − reference, per bootstrap draw (paired), for the
    rows sharing the reference's statistics."""
    ref_names, ref = draws[reference]
    out = {}
    for row, (names, d) in draws.items():
        if row != reference and names == ref_names and d.shape == ref.shape:
            lo, hi = interval(d - ref)
            out[row] = {n: dict(mean=_mean(d[:, k] - ref[:, k]), lo=float(lo[k]), hi=float(hi[k]))
                        for k, n in enumerate(names)}
    return out
