"""
The pilot table: one row per (train.py run, eval.py output) pair, in docs/results/pilots.json.

    python -m research.pilots NAME --flags "--conv-stem" --run runs/pilots/NAME --eval out/pilots/NAME \
        --train-s 612 [--note '...'] [--split val]

A row: the flags, the training wall time (one thread), the depth MRA, gain and mean |log ẑ/z| at
the training camera (zoom_1.00), the distinct answer texts there, the MRA per zoom and the worst
zoom's ratio to s = 1 (zooms 0.5–2), the shortcut slope, and the run's last logged losses.
"""
import argparse
import json
import math
import os


def row(name, flags, run, eval_dir, train_s, split, note=''):
    res = json.load(open(os.path.join(eval_dir, 'results.json')))['results']
    label, r = next(iter(res.items()))
    summ = r['summary']
    zooms = {c: v['tasks']['depth']['mra'] for c, v in summ['cameras'].items() if c.startswith('zoom_')}
    base = summ['cameras']['zoom_1.00']['tasks']['depth']
    recs = [json.loads(line) for line in open(os.path.join(eval_dir, f'records_{label}.jsonl'))]
    at1 = [x for x in recs if x['camera'] == 'zoom_1.00' and x['task'] == 'depth']
    logerr = [abs(math.log(x['pred'] / x['target'])) for x in at1 if x['pred'] and x['pred'] > 0]
    log = [json.loads(line) for line in open(os.path.join(run, 'log.jsonl'))]
    last = log[-1]
    # per logged interval: wall = samples / rate, of which data_share waited on the (in-process) renderer
    prev, compute_s, data_s = 0, 0.0, 0.0
    for rec in log:
        wall = (rec['step'] - prev) * 16 / rec['samples_per_s'] if rec.get('samples_per_s') else 0.0
        compute_s, data_s, prev = compute_s + wall * (1 - rec['data_share']), data_s + wall * rec['data_share'], rec['step']
    return dict(name=name, flags=flags, split=split, n_scenes=len(at1), train_s_1thread=train_s,
                step_compute_s=compute_s, render_s=data_s, steps=last['step'], mra=base['mra'], gain=summ['depth_gain'],
                abs_log_err=sum(logerr) / max(len(logerr), 1), distinct=len({x['pred_text'] for x in at1}),
                unparsed=base['unparsed'], worst_zoom_ratio=min(zooms.values()) / base['mra'] if base['mra'] else None,
                mra_per_zoom={c: round(v, 3) for c, v in zooms.items()}, shortcut_slope=summ['shortcut_slope'],
                last_log={k: last[k] for k in ('loss', 'answer', 'distill', 'val_answer') if k in last},
                note=note)


def markdown(rows) -> str:
    """The pilot table as markdown (docs/pilots.md quotes it)."""
    lines = ['| pilot | flags | train s (1 thread) | MRA s=1 | gain | mean abs log err | distinct | worst zoom / s=1 |',
             '|---|---|---|---|---|---|---|---|']
    for r in rows:
        if 'mra' not in r:   # stopped before its evaluation
            lines.append(f"| {r['name']} | `{r['flags']}` | stopped at step {r['steps']} | | | | | |")
            continue
        lines.append(f"| {r['name']} | `{r['flags'] or '(default)'}` | {r['train_s_1thread']:.0f} | {r['mra']:.3f} | "
                     f"{r['gain']:.2f} | {r['abs_log_err']:.3f} | {r['distinct']} | {r['worst_zoom_ratio']:.2f} |")
    return '\n'.join(lines) + '\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('name')
    p.add_argument('--flags', default='')
    p.add_argument('--run', required=True)
    p.add_argument('--eval', required=True)
    p.add_argument('--train-s', type=float, required=True)
    p.add_argument('--split', default='val')
    p.add_argument('--note', default='')
    p.add_argument('--table', default='docs/results/pilots.json')
    a = p.parse_args(argv)
    rows = json.load(open(a.table)) if os.path.exists(a.table) else []
    new = row(a.name, a.flags, a.run, a.eval, a.train_s, a.split, a.note)
    rows = [r for r in rows if (r['name'], r['split']) != (a.name, a.split)] + [new]
    with open(a.table, 'w') as f:
        json.dump(rows, f, indent=1)
    print(json.dumps({k: v for k, v in new.items() if k != 'mra_per_zoom'}, indent=1))
    print(markdown(rows))


if __name__ == '__main__':
    main()
