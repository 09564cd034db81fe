"""
The report of a camera sweep: per-camera summaries, the markdown tables and the plots.

The idea. eval.py answers the same items through every camera; what the answers say fits in a few
numbers per checkpoint: each task's metrics per camera (metrics.py), the constant-answer
baseline on the same items, the shortcut slope (d log(Z_pred/Z) / d log s over the zooms: −1 for a
model that ignores K, 0 for one that reads it) and the depth gain at s = 1 (d log Z_pred / d log Z:
1 tracks depth, 0 answers a constant, which also has slope 0). Per camera, the mean log ratio
log(Z_pred/Z) shows the drift directly. Worked number: a camera-blind model that answers 4.00 m
right at s = 1 answers 2.00 m through the ×2 zoom, a log ratio of log(2.00/4.00) = −0.69 = −log 2.

Runs of one configuration trained with several seeds (NAME_s0, NAME_s1, ...) are pooled into one
row, each statistic a mean with a 95 % paired-bootstrap interval (intervals.py), e.g. a cell
'0.86 [0.83, 0.89]'; seed_tables writes them, with each row's difference to a reference row.
Outputs: table.md, zoom.png; seeds.md, seeds.png (matplotlib, skipped with a message without it).
"""
import math
import re
from collections import defaultdict

import numpy as np

from common.metrics import category_f1, depth_gain, f1_score, mra, safe_log, shortcut_slope

# ----------------------------------------------------------------------------- summaries
_REL = ('mra', 'abs_rel', 'delta')
METRICS = dict(depth=_REL, size=_REL, distance=_REL, center=('center_err',),
               box=('iou', 'acc25', 'acc50', 'center_err'), closer=('acc',), detect=('f1',))


def summarize(records, constants=None):
    """{'cameras': {camera: {'s', 'tasks': {task: metrics}}}, 'unparsed' and 'lenient' (fractions of
    all answers: not read at all, read only by metrics' lenient rule), 'shortcut_slope' (depth,
    zoom_* cameras), 'depth_gain' (depth, s = 1)}. Per task, 'unparsed' and 'lenient' count. constants
    {task: value} (train_medians) adds 'mra_const', the MRA of always answering that value on the
    same items. Records saved before the lenient rule have no 'lenient': none of theirs was."""
    groups = defaultdict(list)
    for r in records:
        groups[r['camera'], r['task']].append(r)
    cameras = {}
    for (cam, task), rs in groups.items():   # means (error metrics over parsed answers only) + counts
        m = dict(n=len(rs), unparsed=sum(not r['parsed'] for r in rs), lenient=sum(r.get('lenient', False) for r in rs))
        for key in METRICS[task]:
            vals = [r[key] for r in rs if r[key] is not None]
            m[key] = float(np.mean(vals)) if vals else None
        if task == 'detect':  # VG-LLM: TP/FP/FN per category over all answers; and pooled
            m['f1@0.25'] = category_f1([r['counts'] for r in rs])
            m['f1@0.25_pooled'] = f1_score(*(sum(r[k] for r in rs) for k in ('tp', 'n_pred', 'n_gt')))
        if task in (constants or {}):
            m['mra_const'] = float(np.mean([mra(constants[task], r['target']) for r in rs]))
        if task == 'depth':   # the shortcut per camera: mean log(Z_pred/Z), −log s if K is ignored
            logs = [safe_log(r['pred'] / r['target']) for r in rs if r['pred'] is not None]
            m['log_ratio'] = float(np.nanmean(logs)) if np.isfinite(logs).any() else None
        cameras.setdefault(cam, dict(s=rs[0]['s'], tasks={}))['tasks'][task] = m
    zoom = [r for r in records if r['task'] == 'depth' and r['camera'].startswith('zoom_')]
    base = [r for r in zoom if r['s'] == 1.0]
    slope = shortcut_slope([r['s'] for r in zoom], [r['pred'] for r in zoom], [r['target'] for r in zoom])
    gain = depth_gain([r['pred'] for r in base], [r['target'] for r in base])
    n = max(len(records), 1)
    return dict(cameras=cameras, unparsed=sum(not r['parsed'] for r in records) / n,
                lenient=sum(r.get('lenient', False) for r in records) / n, shortcut_slope=slope, depth_gain=gain)


def markdown_table(results):
    """One row per camera, one column per checkpoint; cells 'depth MRA / detect F1@0.25 / pooled'."""
    summ = [r['summary'] for r in results.values()]
    cams = {c: v['s'] for sm in summ for c, v in sm['cameras'].items()}
    detect = any('detect' in v['tasks'] for sm in summ for v in sm['cameras'].values())
    keys, legend = [('depth', 'mra')], 'cells: depth MRA'
    if detect:
        keys += [('detect', 'f1@0.25'), ('detect', 'f1@0.25_pooled')]
        legend += ' / detect F1@0.25 / detect F1@0.25 pooled'
    lines = [legend, '', _row('camera', 's', results), '|---|---|' + '---|' * len(summ)]
    for c, s in cams.items():
        cells = [' / '.join(_number(_metric(sm, c, task, key)) for task, key in keys) for sm in summ]
        lines.append(_row(c, f'{s:.2f}', cells))
    const = [constant_mra(sm) for sm in summ]
    if any(c is not None for c in const):
        lines.append(_row('depth MRA of a constant answer', '', [_number(c) for c in const]))
    lines += [_row('shortcut slope', '', [_number(sm['shortcut_slope']) for sm in summ]),
              _row('depth gain at s=1', '', [_number(sm['depth_gain']) for sm in summ]),
              _row('unparsed answers', '', [f"{sm['unparsed']:.1%}" for sm in summ]),
              _row('read only by the lenient rule', '', [f"{sm.get('lenient', 0.0):.1%}" for sm in summ]), '',
              'MRA: mean over θ = 0.50, 0.55, ..., 0.95 of 1[|p−g|/g ≤ 1−θ] (VSI-Bench, as lmms-eval);',
              "read only by the lenient rule: answers such as '3.27 m' or '3.27.', scored as lmms-eval reads them "
              '(its first word, a full stop stripped), not in the trained format;']
    if detect:
        lines += ["detect F1@0.25: VG-LLM's protocol, predictions in output order, each matched to the unused "
                  'same-category box of highest IoU (TP if IoU > 0.25); F1 per category over the answers, '
                  'mean over the categories present in predictions or ground truth;',
                  'detect F1@0.25 pooled: one F1 over all categories, pairs matched greedily by highest IoU;']
    lines += ['constant answer: the median depth of 512 training scenes, always; what reading the image adds is the gap to it;',
              'shortcut slope: d log(Z_pred/Z) / d log s over the zooms (−1 ignores the camera, 0 reads it);',
              'depth gain: d log Z_pred / d log Z at s = 1 (1 tracks depth; 0, a constant answer, also has slope 0)']
    return '\n'.join(lines) + '\n'


def constant_mra(summary):
    """The depth MRA of the constant answer: the same items through every camera, so one number per
    checkpoint (None without depth questions or constants)."""
    for camera in summary['cameras'].values():
        if 'depth' in camera['tasks']:
            return camera['tasks']['depth'].get('mra_const')
    return None


def _metric(summary, camera, task, key):
    """summary['cameras'][camera]['tasks'][task][key], None where any of them is absent."""
    tasks = summary['cameras'].get(camera, {}).get('tasks', {})
    return tasks.get(task, {}).get(key)


def _number(x) -> str:
    return '–' if x is None else f'{x:.2f}'


def _row(name, s, cells) -> str:
    return f'| {name} | {s} | ' + ' | '.join(cells) + ' |'


def plot_zoom(results, path, zooms):
    """Depth MRA, mean log(Z_pred/Z) and (if evaluated) detect F1@0.25 against zoom s (log x),
    one line per checkpoint; the x ticks at `zooms`, where the reference lines are drawn too."""
    plt = _pyplot()
    if plt is None:
        return None
    panels = [('depth', 'mra', 'depth MRA'), ('depth', 'log_ratio', 'mean log(Z_pred / Z): 0 reads K, −log s ignores it'),
              ('detect', 'f1@0.25', 'detect F1@0.25')]
    panels = [p for p in panels if any(p[0] in v['tasks'] for r in results.values() for v in r['summary']['cameras'].values())]
    if not panels:                      # neither depth nor detect was evaluated
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, (task, key, title) in zip(axes[0], panels):
        for label, r in results.items():
            pts = sorted((v['s'], v['tasks'][task][key]) for c, v in r['summary']['cameras'].items()
                         if c.startswith('zoom_') and task in v['tasks'] and v['tasks'][task].get(key) is not None)
            if pts:
                ax.plot(*zip(*pts), marker='o', label=label)
        if key == 'log_ratio':  # the two reference answers: reads the camera / ignores it
            ax.plot(zooms, [0.0] * len(zooms), 'k:', zooms, [-math.log(s) for s in zooms], 'k--', lw=1)
        ax.set(xscale='log', xlabel="zoom s (f' = s·f)", title=title, ylim=None if key == 'log_ratio' else (0, 1.02))
        ax.set_xticks(zooms, [f'{s:g}' for s in zooms])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- seeds and intervals
# Runs of one configuration trained with several seeds are named NAME_s0, NAME_s1, ... (or
# NAME-seed0, ...): they are pooled into one row, NAME, whose statistics and paired-bootstrap
# intervals intervals.seed_summary computes; here they become tables and a plot.
SEED_SUFFIX = re.compile(r'[_-](?:s|seed)\d+$')


def group_runs(labels) -> dict:
    """{NAME: [labels]} by the seed suffix; a label without one is a group of its own."""
    groups = defaultdict(list)
    for label in labels:
        groups[SEED_SUFFIX.sub('', label)].append(label)
    return dict(groups)


def seed_tables(summary, diffs=None) -> str:
    """Markdown: depth MRA, box IoU, Acc@0.25 and Acc@0.5 per zoom, the shortcut statistics, and
    the differences to each reference row (diffs {reference: differences(...)}); every cell a
    mean [95 % interval]."""
    rows = list(summary)
    cams = list(dict.fromkeys(n.split('@')[1] for r in rows for n in summary[r] if '@' in n and n.startswith('depth_mra@')))
    zooms = [c for c in cams if c.startswith('zoom_')]
    lines = []
    for key, title in (('depth_mra', 'depth MRA'), ('box_iou', 'box mean 3D IoU'), ('box_acc25', 'box Acc@0.25'),
                       ('box_acc50', 'box Acc@0.5')):
        if not any(math.isfinite(summary[r].get(f'{key}@{c}', {}).get('mean', math.nan)) for r in rows for c in cams):
            continue
        lines += [f'**{title}** per camera (mean over seeds and scenes [95 % paired bootstrap interval])', '',
                  '| row | seeds | ' + ' | '.join(zooms) + ' |', '|---|---|' + '---|' * len(zooms)]
        for r in rows:
            cells = [_with_interval(summary[r].get(f'{key}@{c}')) for c in zooms]
            lines.append(f"| {r} | {len(summary[r]['runs'])} | " + ' | '.join(cells) + ' |')
        lines.append('')
    keys = ['depth_slope', 'depth_gain', 'depth_index', 'depth_index_in_range', 'box_slope', 'box_gain',
            'box_index', 'box_index_in_range', 'depth_mra_worst_ratio', 'box_acc25_worst_ratio']
    lines += ['**Shortcut** (slope: d log(ẑ/z) / d log s over the zooms; gain: d log ẑ / d log z at s = 1; '
              'index = slope / gain: −1 reads the focal from the pixels, 0 reads K; in range: over the answers '
              'whose camera-blind value z/s is within the 5–95 % range of the depths at s = 1; worst ratio: the lowest '
              'value over the zooms / the value at s = 1)', '',
              '| row | ' + ' | '.join(keys) + ' |', '|---|' + '---|' * len(keys)]
    lines += [f'| {r} | ' + ' | '.join(_with_interval(summary[r].get(k)) for k in keys) + ' |' for r in rows]
    dkeys = [f'depth_mra@{c}' for c in dict.fromkeys(zooms[:1] + ['zoom_1.00'] + zooms[-1:])]
    dkeys += ['box_iou@zoom_1.00', 'depth_gain', 'depth_index', 'box_index']
    for reference, rows_diff in (diffs or {}).items():
        lines += ['', f'**Difference to {reference}** (row − {reference}, paired draws)', '',
                  '| row | ' + ' | '.join(dkeys) + ' |', '|---|' + '---|' * len(dkeys)]
        lines += [f'| {r} | ' + ' | '.join(_with_interval(d.get(k)) for k in dkeys) + ' |' for r, d in rows_diff.items()]
    return '\n'.join(lines) + '\n'


def _with_interval(m) -> str:
    """A cell 'mean [lo, hi]' of a statistic {mean, lo, hi}; '–' where it is missing or nan."""
    if m is None or not math.isfinite(m['mean']):
        return '–'
    return f"{m['mean']:.2f} [{m['lo']:.2f}, {m['hi']:.2f}]"


def plot_seeds(summary, path):
    """Depth MRA and box Acc@0.25 against zoom s with 95 % interval bars, one line per row."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (key, title) in zip(axes, (('depth_mra', 'depth MRA'), ('box_acc25', 'box Acc@0.25'))):
        for row, stats in summary.items():
            pts = []
            for name, m in stats.items():
                if name.startswith(f'{key}@zoom_') and math.isfinite(m['mean']):
                    pts.append((float(name.split('_')[-1]), m['mean'], m['mean'] - m['lo'], m['hi'] - m['mean']))
            if pts:
                s, y, lo, hi = zip(*sorted(pts))
                ax.errorbar(s, y, yerr=[lo, hi], marker='o', capsize=3, label=row)
        ax.set(xscale='log', xlabel="zoom s (f' = s·f)", title=title, ylim=(0, 1.02))
        zooms = sorted({float(n.split('_')[-1]) for stats in summary.values() for n in stats if n.startswith(f'{key}@zoom_')})
        if zooms:
            ax.set_xticks(zooms, [f'{s:g}' for s in zooms])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _pyplot():
    """matplotlib.pyplot on the file backend, or None (with a message) when it is not installed."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f'plot skipped: matplotlib is not installed ({e}); pip install matplotlib')
        return None
    return plt
