"""
The tables of README.md and docs/*.md, written from the results committed under docs/results/.

    python scripts/tables.py                 # rewrite every table from its JSON
    python scripts/tables.py --check         # exit 1 naming each table that disagrees with its JSON
    python scripts/tables.py --ablation out/ablation/results.json    # store a new ablation run first
    python scripts/tables.py --default out/default_test              # store a new default-model sweep first
    python scripts/tables.py --pilot NAME --flags "--x" --run RUN --eval OUT --train-s 440 [--note ...]
                                                                     # a pilot scored on validation scenes

A table sits between `<!-- table: NAME -->` and `<!-- /table -->` in a page; NAME is a key of TABLES,
a function of the results that returns the markdown. docs/ablation_seeds.md is written whole
(report.seed_tables, as eval.py writes seeds.md). Every figure in a table can thus be traced to a JSON
file, and that file to the command stored in it.
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from common import report  # noqa: E402
from common.checkpoint import read_json  # noqa: E402
from common.metrics import parse_answer  # noqa: E402
from train import ABLATION  # noqa: E402

RESULTS = os.path.join(ROOT, 'docs', 'results')
PAGES = ('README.md', 'docs/ablation.md', 'docs/pilots.md')
MARK = re.compile(r'(<!-- table: (\w+) -->\n)(.*?)(<!-- /table -->)', re.S)


def load(name: str) -> dict:
    return read_json(os.path.join(RESULTS, name + '.json'), remedy='restore it from git')


def num(x: float | None, digits: int = 2) -> str:
    """A figure to `digits` decimals, '–' where there is none (a gain without two distinct depths)."""
    return '–' if x is None else f'{x:.{digits}f}'


def cell(stat: dict | None) -> str:
    """'0.77 [0.75, 0.79]': a mean and its 95 % interval."""
    return '–' if stat is None else f"{stat['mean']:.2f} [{stat['lo']:.2f}, {stat['hi']:.2f}]"


def switches(row: str) -> str:
    """An ABLATION row as the flags that give it: `--no-camera-embed --augment ...`."""
    return '`' + ' '.join(f"--{'' if on else 'no-'}{k.replace('_', '-')}" for k, on in ABLATION[row].items()) + '`'


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    return '\n'.join(lines + ['| ' + ' | '.join(r) + ' |' for r in rows]) + '\n'


# ----------------------------------------------------------------------------- the tables

def ablation_summary(a: dict) -> str:
    """README: each row's flags, depth MRA at the extreme zooms and at s = 1, and the shortcut index."""
    zooms = ('zoom_0.50', 'zoom_1.00', 'zoom_2.00')
    rows = [[r, switches(r)] + [cell(s.get(f'depth_mra@{z}')) for z in zooms] + [cell(s.get('depth_index'))]
            for r, s in a['rows'].items()]
    return table(['row', 'flags (train.py --preset ROW)', 'MRA s = 0.5', 'MRA s = 1', 'MRA s = 2', 'shortcut index'], rows)


def ablation_rows(a: dict) -> str:
    """docs/ablation.md: the rows and the flags that give them (train.ABLATION)."""
    return table(['row', 'flags (train.py --preset ROW)', 'seeds'],
                 [[r, switches(r), str(len(s['runs']))] for r, s in a['rows'].items()])


def ablation_depth(a: dict) -> str:
    zooms = ('zoom_0.50', 'zoom_0.80', 'zoom_1.00', 'zoom_1.20', 'zoom_2.00')
    return table(['row', 'seeds'] + [f"s = {float(z.split('_')[1]):g}" for z in zooms],
                 [[r, str(len(s['runs']))] + [cell(s.get(f'depth_mra@{z}')) for z in zooms] for r, s in a['rows'].items()])


def ablation_shortcut(a: dict) -> str:
    keys = ('depth_gain', 'depth_slope', 'depth_index', 'depth_index_in_range', 'box_index', 'depth_mra_worst_ratio')
    return table(['row', 'depth gain', 'depth slope', '**depth index**', 'depth index in range', 'box-centre index',
                  'worst MRA / MRA at s = 1'], [[r] + [cell(s.get(k)) for k in keys] for r, s in a['rows'].items()])


def ablation_box(a: dict) -> str:
    keys = ('box_iou@zoom_1.00', 'box_acc25@zoom_0.80', 'box_acc25@zoom_1.00', 'box_acc25@zoom_1.20', 'box_acc50@zoom_1.00')
    return table(['row', 'mean IoU, s = 1', 'Acc@0.25, s = 0.8', 'Acc@0.25, s = 1', 'Acc@0.25, s = 1.2', 'Acc@0.5, s = 1'],
                 [[r] + [cell(s.get(k)) for k in keys] for r, s in a['rows'].items()])


def ablation_differences(reference: str):
    def make(a: dict) -> str:
        keys = ('depth_mra@zoom_0.50', 'depth_mra@zoom_1.00', 'depth_mra@zoom_2.00', 'depth_gain', 'depth_index',
                'box_index')
        return table(['row', 'MRA s = 0.5', 'MRA s = 1', 'MRA s = 2', 'gain', 'depth index', 'box-centre index'],
                     [[r] + [cell(s.get(k)) for k in keys] for r, s in a['differences'][reference].items()])
    return make


def default_sweep(d: dict) -> str:
    """README: the default model through every camera of the sweep, with the constant answer's MRA."""
    rows = [[c['name'], f"{c['s']:.2f}", cell(c['depth_mra'])] for c in d['cameras']]
    rows.append(['a constant answer (the training median)', '', f"{d['constant_mra']:.2f}"])
    rows.append(['depth gain at s = 1 (1 tracks depth)', '', cell(d['depth_gain'])])
    rows.append(['**shortcut index** (−1 blind, 0 reads K)', '', cell(d['depth_index'])])
    rows.append(['distinct answers at s = 1', '', str(d['distinct_answers'])])
    return table(['test camera', 's', 'depth MRA'], rows)


CHAPTERS = ('camera_embed.py', 'augment.py', 'distill.py', 'model.py', 'train.py', 'eval.py')


def chapters(_=None) -> str:
    """README: the six chapters in reading order, each with its line count and the first line of its docstring."""
    rows = []
    for name in CHAPTERS:
        with open(os.path.join(ROOT, name)) as f:
            text = f.read()
        paragraph = ' '.join(text.split('"""')[1].strip().split('\n\n')[0].split())
        idea = re.split(r'(?<=[.?])\s', paragraph)[0]                   # its first sentence
        rows.append([f'[{name}]({name})', str(text.count('\n')), idea])
    return table(['chapter', 'lines', 'idea'], rows)


def pilots(p: dict) -> str:
    """docs/pilots.md: one row per pilot, scored on validation scenes at the training camera and through the zooms."""
    return table(['pilot', 'flags', 'train s (1 thread)', 'MRA s = 1', 'gain', 'mean abs log error', 'distinct answers',
                  'MRA s = 0.5', 'worst zoom / s = 1', 'what it tests'],
                 [[r['name'], f"`{r['flags'] or '(default)'}`", num(r['train_s_1thread'], 0), num(r['mra']),
                   num(r['gain']), num(r['abs_log_err'], 3), str(r['distinct']), num(r['mra_per_zoom'].get('zoom_0.50')),
                   num(r['worst_zoom_ratio']), r.get('note', '')] for r in p['rows']])


def pilots_parallel(p: dict) -> str:
    """docs/pilots.md: the parallel series (the warped augmentation); a stopped pilot shows its step."""
    rows = []
    for r in p['parallel']['rows']:
        if 'mra' not in r:
            rows.append([r['name'], f"`{r['flags']}`", f"stopped at step {r['stopped_at_step']}"] + [''] * 5)
            continue
        rows.append([r['name'], f"`{r['flags']}`", f"{r['train_s_1thread']:.0f}", f"{r['mra']:.2f}", f"{r['gain']:.2f}",
                     str(r['distinct']), f"{r['mra_per_zoom']['zoom_0.50']:.2f}", f"{r['worst_zoom_ratio']:.2f}"])
    return table(['pilot', 'flags', 'train s (1 thread)', 'MRA s = 1', 'gain', 'distinct answers', 'MRA s = 0.5',
                  'worst zoom / s = 1'], rows)


def cnn_reference(c: dict) -> str:
    """docs/pilots.md: the plain CNN's depth answers (research/cnn_reference.py) at s = 1 and through the zooms."""
    zooms = ('zoom_0.50', 'zoom_0.80', 'zoom_1.00', 'zoom_1.25', 'zoom_2.00')
    s1 = c['at_s1']
    return table(['learner', 'steps (s, 1 thread)', 'MRA s = 1', 'gain', 'mean abs log error', 'distinct answers']
                 + [f"MRA s = {float(z.split('_')[1]):g}" for z in zooms if z != 'zoom_1.00'],
                 [[f"CNN, {c['params'] / 1e6:.2f} M parameters", f"{c['steps']} ({c['train_s']:.0f})", f"{s1['mra']:.2f}",
                   f"{s1['gain']:.2f}", f"{s1['abs_log_err']:.3f}", str(s1['distinct'])]
                  + [f"{c['per_camera'][z]['mra']:.2f}" for z in zooms if z != 'zoom_1.00']])


# The paper's box F1@0.25 (CA-MLLM, its table of ablations) beside our rows: (its row, ours, its figure)
PAPER_ROWS = (('baseline (RGB-only)', 'rgb_only', 39.1), ('+ ray embedding', 'camera_embed', 41.2),
              ('+ augmentation', 'augment', 42.0), ('+ distillation', 'distill', 43.1), ('all three', 'full', 52.1))
PAPER_RGB_08 = (46.5, 25.8)     # its RGB-only model at the original camera and through a 0.8x one


def ablation_paper(a: dict) -> str:
    """docs/ablation.md: the paper's box F1@0.25 through a 1.2x camera beside our box Acc@0.25 and depth
    MRA at s = 1.2, then its RGB-only model through a 0.8x camera beside ours at s = 0.8."""
    rows, rgb = a['rows'], a['rows']['rgb_only']
    first = table(['row', 'paper: box F1@0.25, 1.2×', 'ours: box Acc@0.25, s = 1.2', 'ours: depth MRA, s = 1.2'],
                  [[label, f'{paper:.1f}', cell(rows[ours].get('box_acc25@zoom_1.20')),
                    cell(rows[ours].get('depth_mra@zoom_1.20'))] for label, ours, paper in PAPER_ROWS])
    second = table(['RGB-only through a 0.8× camera', 'paper: box F1@0.25', 'ours: box Acc@0.25', 'ours: depth MRA'],
                   [[name, f'{paper:.1f}', cell(rgb.get(f'box_acc25@{cam}')), cell(rgb.get(f'depth_mra@{cam}'))]
                    for name, paper, cam in zip(('original camera (s = 1)', '0.8× camera'), PAPER_RGB_08,
                                                ('zoom_1.00', 'zoom_0.80'))])
    return first + '\n' + second


TABLES = {'chapters': (None, chapters), 'default_sweep': ('default', default_sweep),
          'pilots': ('pilots', pilots), 'pilots_parallel': ('pilots', pilots_parallel),
          'cnn_reference': ('cnn_val', cnn_reference),
          'ablation_summary': ('ablation', ablation_summary), 'ablation_rows': ('ablation', ablation_rows),
          'ablation_depth': ('ablation', ablation_depth), 'ablation_shortcut': ('ablation', ablation_shortcut),
          'ablation_box': ('ablation', ablation_box), 'ablation_paper': ('ablation', ablation_paper),
          'ablation_vs_full': ('ablation', ablation_differences('full')),
          'ablation_vs_camera_embed': ('ablation', ablation_differences('camera_embed'))}


def rendered(page_text: str, path: str) -> str:
    """The page with every marked table written from its JSON; an unknown NAME is an error."""
    def fill(m):
        if m.group(2) not in TABLES:
            raise ValueError(f'{path}: unknown table {m.group(2)!r}; known: {sorted(TABLES)}')
        source, make = TABLES[m.group(2)]
        return m.group(1) + make(load(source) if source else None) + m.group(4)
    return MARK.sub(fill, page_text)


def outputs() -> dict:
    """{path: the text it should have}."""
    out = {}
    for page in PAGES:
        with open(os.path.join(ROOT, page)) as f:
            out[page] = rendered(f.read(), page)
    a = load('ablation')
    out['docs/ablation_seeds.md'] = report.seed_tables(a['rows'], a['differences'])
    return out


# ----------------------------------------------------------------------------- storing new results

def store_ablation(results_json: str):
    """eval.py's results.json of scripts/ablation.sh -> docs/results/ablation.json (its seed-pooled rows,
    the commit checked out when they were stored, the script's timing.txt beside it) and docs/ablation_seeds.png."""
    res = read_json(results_json)
    if not res.get('seeds'):
        raise ValueError(f'{results_json} has no seed-pooled rows (eval.py --n-boot 0?)')
    timing = os.path.join(os.path.dirname(results_json), 'timing.txt')
    git = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True)
    write('ablation', dict(command='bash scripts/ablation.sh', stored_at_commit=git.stdout.strip() or None,
                           timing=open(timing).read().splitlines() if os.path.exists(timing) else [],
                           eval_args=res['args'], split='test', scenes=res['args']['n_scenes'],
                           rows=res['seeds']['rows'], differences=res['seeds']['differences']))
    report.plot_seeds(res['seeds']['rows'], os.path.join(os.path.dirname(RESULTS), 'ablation_seeds.png'))


def one_run(eval_dir: str) -> tuple:
    """(results.json, its run's label, its run, the run's depth answers at the training camera) of an eval.py
    output folder that holds one run."""
    res = read_json(os.path.join(eval_dir, 'results.json'))
    (label, run), = res['results'].items()
    recs = [json.loads(line) for line in open(os.path.join(eval_dir, f'records_{label}.jsonl'))]
    return res, label, run, [r for r in recs if r['camera'] == 'zoom_1.00' and r['task'] == 'depth']


def distinct(records) -> int:
    """How many different depths the answers name: parsed numbers, so an unparsed answer is not one."""
    return len({parse_answer('depth', r['pred_text']) for r in records} - {None})


def store_default(out_dir: str):
    """eval.py --camera-shift's folder for one run -> docs/results/default.json: per camera depth MRA with
    a 95 % interval over scenes, the constant answer, gain, shortcut index and distinct answers at s = 1."""
    res, label, run, at_one = one_run(out_dir)
    rows = res['seeds']['rows'][label]
    summ = run['summary']
    cams = [dict(name=c, s=v['s'], depth_mra=rows.get(f'depth_mra@{c}')) for c, v in summ['cameras'].items()
            if 'depth' in v['tasks']]
    base = summ['cameras']['zoom_1.00']['tasks']['depth']
    write('default', dict(command=f"python train.py && python eval.py --camera-shift --n-scenes {res['args']['n_scenes']}",
                          split='test', scenes=res['args']['n_scenes'], cameras=cams, constant_mra=base['mra_const'],
                          depth_gain=rows['depth_gain'], depth_index=rows['depth_index'], distinct_answers=distinct(at_one),
                          train_config=run['train_config']))


def store_pilot(name: str, flags: str, run: str, eval_dir: str, train_s: float, note: str = ''):
    """A pilot's row in docs/results/pilots.json: eval.py --split val --camera-shift's folder of one run."""
    res, _, r, at1 = one_run(eval_dir)
    if res['args'].get('split') != 'val':
        raise ValueError(f'{eval_dir}: scored on {res["args"].get("split")!r} scenes; pilots are chosen on val')
    summ = r['summary']
    zooms = {c: v['tasks']['depth']['mra'] for c, v in summ['cameras'].items() if c.startswith('zoom_')}
    base = summ['cameras']['zoom_1.00']['tasks']['depth']
    logerr = [abs(math.log(x['pred'] / x['target'])) for x in at1 if x['pred'] and x['pred'] > 0]
    last = [json.loads(line) for line in open(os.path.join(run, 'log.jsonl'))][-1]
    row = dict(name=name, flags=flags, split='val', n_scenes=len(at1), train_s_1thread=train_s, steps=last['step'],
               mra=base['mra'], gain=summ['depth_gain'], abs_log_err=sum(logerr) / max(len(logerr), 1),
               distinct=distinct(at1), unparsed=base['unparsed'],
               worst_zoom_ratio=min(zooms.values()) / base['mra'] if base['mra'] else None, mra_per_zoom={c: round(v, 3) for c, v in zooms.items()},
               shortcut_slope=summ['shortcut_slope'], note=note)
    path = os.path.join(RESULTS, 'pilots.json')
    table_ = read_json(path) if os.path.exists(path) else dict(protocol='train.py FLAGS, then eval.py --split val '
                                                              '--camera-shift --n-scenes 256 (one thread)', rows=[])
    table_['rows'] = [x for x in table_['rows'] if x['name'] != name] + [row]
    write('pilots', table_)


def write(name: str, data):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name + '.json'), 'w') as f:
        json.dump(data, f, indent=1)
        f.write('\n')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--check', action='store_true', help='only compare; exit 1 if a table is stale')
    p.add_argument('--ablation', help="eval.py's results.json of scripts/ablation.sh to store first")
    p.add_argument('--default', help="eval.py's output folder of the default run's sweep to store first")
    p.add_argument('--pilot', metavar='NAME', help='store a pilot first (with --flags, --run, --eval, --train-s, --note)')
    p.add_argument('--flags', default='')
    p.add_argument('--run')
    p.add_argument('--eval')
    p.add_argument('--train-s', type=float)
    p.add_argument('--note', default='')
    args = p.parse_args(argv)
    if args.ablation:
        store_ablation(args.ablation)
    if args.default:
        store_default(args.default)
    if args.pilot:
        store_pilot(args.pilot, args.flags, args.run, args.eval, args.train_s, args.note)
    stale = []
    for path, text in outputs().items():
        full = os.path.join(ROOT, path)
        with open(full) as f:
            if f.read() == text:
                continue
        stale.append(path)
        if not args.check:
            with open(full, 'w') as f:
                f.write(text)
    if args.check and stale:
        raise SystemExit(f'tables disagree with docs/results/*.json in {stale}: run python scripts/tables.py')
    print(('stale: ' if args.check else 'rewrote: ') + (', '.join(stale) or 'nothing'))


if __name__ == '__main__':
    main()
