"""
Evaluation on posed multi-frame rooms (views.py): VSI-Bench scoring, the camera-shift sweep, the
pose-scale check and the floor-ruler check. eval.py hands a checkpoint trained with --frames to main() here.

    python eval.py --ckpt runs/views/full runs/views/no_camera --camera-shift --n-scenes 64 --out out/views

Scoring (VSI-Bench, Yang et al. 2025, §3; metrics.score): the numbers (object_count, abs_distance,
object_size, room_size) by MRA, the choices (rel_distance, rel_direction, appearance_order) by
accuracy. Next to each, the constant-answer baseline on the same items: for a number, the MRA of
always answering the median of 512 training rooms; for a choice, the accuracy of the best fixed
option (always the first named, always the second, ...; always 'left' or always 'right'), chosen
on the test items themselves, so an upper bound for any constant answer.
A --reasons run (views.with_reasons) answers a choice with its two measurements first: the
choice after the last colon is scored as above, and reasons_summary splits it into its steps: are
the measurements stated, is the choice the one they make (the comparing), do they make the right
one (the measuring), and how far off are they (measurement_error).

Camera shift. The held-out rooms and questions through zoomed lenses, every frame rendered
exactly (f' = s·f about the principal point), in two protocols:
    all_zoom_s    every frame zoomed by s
    some_zoom_s   only the odd frames (2nd, 4th, ...): one sample mixes two focal lengths
Paired: questions are drawn through the base lens and enter only if they stay asked and answered
the same through every camera of the sweep (still_asked: zooming changes which objects each frame
sees, and so a count or an appearance order). The zoom response per protocol, d log ŷ / d log s ÷
the answer's power over the paired questions, is −1 for a model that reads sizes off the pixels with
the training lens assumed and 0 for one that reads K (eval.py's shortcut slope). Two checkpoints on
the same rooms also get a paired row of their difference per question type.

Pose scale. The same room and path with every length times k (scale_views): the frames are
the same pixels, only the translations of the poses differ, and every metric answer scales (k for
distances and sizes, k² for the floor area). Per task: MRA against the scaled answers and the
response d log ŷ / d log k over the pairs (k, k = 1), divided by the answer's power of k: 1 for a
model that takes the scale from the poses, 0 for one that ignores them (a model without the
camera embedding sees identical inputs, so 0 by construction).

Floor ruler. The same rooms with the floor checker's tiles times f (0.5 m by default): nothing
metric changes but the tiles, so the answers should not. The response d log ŷ / d log f ÷ power is
−1 for a model that measures the room in tiles (a ruler in every frame, and a hidden constant of
the training world, like the training camera's focal length) and 0 for one that does not.
Shapes: one item is image (N, 3, H, W) uint8, K (N, 3, 3), c2w (N, 4, 4) for N frames.
"""
import json
import math
import os
from dataclasses import replace

import numpy as np
import torch

from common.intervals import bootstrap, interval, mean_interval
from common.metrics import fit_slope, mra, parse_answer, parse_name
from data import synthetic
from multiframe import views
from multiframe.items import room_objects
from world import pinhole, scenes

SCALES = (0.5, 0.75, 1.0, 1.5, 2.0)
TILES = (0.5, 1.0, 2.0)       # the floor-ruler check: tile size × f
POWER = dict(object_count=0, abs_distance=1, object_size=1, room_size=2)   # answer ∝ k^power


def views_config(train_cfg) -> views.ViewsConfig:
    """The training rooms of a --frames checkpoint (train.py views_config, from train_config.json)."""
    tasks = [t for t in str(train_cfg.get('tasks', '')).split(',') if t in views.VIEW_TASKS] or views.VIEW_TASKS
    size = int(train_cfg.get('image_size', 64))
    return views.ViewsConfig(frames=int(train_cfg['frames']), image_hw=(size, size), tasks=tuple(tasks),
                             camera=train_cfg.get('camera', 'standard'), min_pixels=float(train_cfg.get('min_pixels', 6)),
                             n_objects=room_objects(train_cfg['room_objects']) if 'room_objects' in train_cfg
                             else views.ViewsConfig.n_objects,                     # older runs: the default rooms
                             reasons=bool(train_cfg.get('reasons', False)))


def questions(v: views.Views, tasks, reasons=False) -> dict:
    """{task: qa}: one question per feasible task, from rng([seed, QA_STREAM + task index]) (views.ask)."""
    return {t: views.ask(v, t, v.seed, reasons) for t in tasks if views.feasible(v, t)}


def sweep_cameras(zooms, frames: int) -> list:
    """[(name, s, per-frame zoom factors (N,))] for the two protocols (s = 1 once)."""
    odd = np.arange(frames) % 2 == 1
    cams = [(f'all_zoom_{s:.2f}', s, np.full(frames, s)) for s in zooms]
    return cams + [(f'some_zoom_{s:.2f}', s, np.where(odd, s, 1.0)) for s in zooms if s != 1.0]


def item(qa, frames, K, c2w, i, seed, camera, s) -> dict:
    return dict(qa, image=torch.from_numpy(frames['image']).permute(0, 3, 1, 2).contiguous(),   # (N, 3, H, W)
                K=torch.tensor(np.asarray(K), dtype=torch.float32), c2w=torch.tensor(c2w, dtype=torch.float32),
                scene=i, seed=seed, camera=camera, s=float(s))


def still_asked(qa, v: views.Views, seen) -> bool:
    """Is the question (drawn through the base lens) asked and answered the same with this seen
    matrix (N, n)? Its objects seen in some frame, the same count, the same first frames' order."""
    idx = {o.name: i for i, o in enumerate(v.objects)}
    anywhere, first = seen.any(0), seen.argmax(0)                         # (n,), (n,)
    if qa['task'] == 'object_count':
        return int(anywhere.sum()) == qa['target'] and all(anywhere[idx[n]] for n in qa['objects'])
    if not all(anywhere[idx[n]] for n in qa['objects']):
        return False
    if qa['task'] == 'appearance_order':
        p = qa['objects'][qa['options'].index(qa['target'])]                # the letter's object
        q = next(n for n in qa['objects'] if n != p)
        return first[idx[p]] < first[idx[q]]
    return True


def sweep_items(cfg: views.ViewsConfig, n_rooms: int | range, cameras) -> tuple[list, int]:
    """Paired items of the test rooms through every camera, and how many questions were left out:
    questions drawn through the base lens, kept if still_asked through every camera; and every
    question through the base lens, unpaired (camera 'base': the held-out score per question type)."""
    items, left_out = [], 0
    for i in synthetic.scene_range(n_rooms):
        seed = synthetic.scene_seed('test', i)
        v, base = views.sample_views(seed, cfg)
        qas, shots = questions(v, cfg.tasks, cfg.reasons), []
        for name, s, zoom in cameras:
            K = np.stack([pinhole.zoom_K(v.K, z) for z in zoom])                # (N, 3, 3)
            frames = views.render_views(v, K)
            shots.append((name, s, K, frames, views.seen_matrix(frames['instance'], len(v.objects), cfg.min_pixels, zoom)))
        keep = [t for t, qa in qas.items() if all(still_asked(qa, v, seen) for *_, seen in shots)]
        left_out += len(qas) - len(keep)
        items += [item(qas[t], frames, K, v.c2w, i, seed, name, s) for name, s, K, frames, _ in shots for t in keep]
        items += [item(qa, base, np.broadcast_to(v.K, (cfg.frames, 3, 3)), v.c2w, i, seed, 'base', 1.0)
                  for qa in qas.values()]                                  # every question, the base lens
    return items, left_out


def base_items(cfg: views.ViewsConfig, n_rooms: int | range, tasks) -> list:
    """Items of the test rooms' questions of `tasks` through the base lens alone (camera 'base')."""
    items = []
    for i in synthetic.scene_range(n_rooms):
        seed = synthetic.scene_seed('test', i)
        v, frames = views.sample_views(seed, cfg)
        K = np.broadcast_to(v.K, (cfg.frames, 3, 3))
        items += [item(qa, frames, K, v.c2w, i, seed, 'base', 1.0) for qa in questions(v, tasks, cfg.reasons).values()]
    return items


def scale_views(v: views.Views, s: float) -> views.Views:
    """The same room and path with every length times s (objects, walls, tiles, camera height and
    path): the frames are the same pixels, only the poses' translations say the scale."""
    objects = [scenes.Object(o.name, o.shape, o.color, o.center * s, o.size * s, o.yaw) for o in v.objects]
    room = dict(v.room, **{k: v.room[k] * s for k in ('tile', 'front', 'back', 'left', 'right', 'height')})
    c2w = v.c2w.copy()
    c2w[:, :3, 3] *= s
    return views.Views(objects, room, c2w, v.K, v.image_hw, v.camera_height * s, v.seed, v.seen)


def scale_items(cfg: views.ViewsConfig, n_rooms: int | range, scales=SCALES) -> list:
    """The metric questions of the test rooms, each room and path scaled by k (camera 'pose_x{k}')."""
    items, tasks = [], [t for t in cfg.tasks if POWER.get(t, 0) > 0]
    for i in synthetic.scene_range(n_rooms):
        seed = synthetic.scene_seed('test', i)
        base, _ = views.sample_views(seed, cfg)
        for k in scales:
            v = scale_views(base, k)
            K = np.broadcast_to(v.K, (cfg.frames, 3, 3))
            items += [item(qa, views.render_views(v), K, v.c2w, i, seed, f'pose_x{k:g}', k)
                      for qa in questions(v, tasks).values()]
    return items


def tile_items(cfg: views.ViewsConfig, n_rooms: int | range, factors=TILES) -> list:
    """The metric questions of the test rooms with the floor tiles scaled by f (camera 'tile_x{f}'):
    the same answers, the same poses and lenses; only the checker on the floor changes."""
    items, tasks = [], [t for t in cfg.tasks if POWER.get(t, 0) > 0]
    for i in synthetic.scene_range(n_rooms):
        seed = synthetic.scene_seed('test', i)
        base, _ = views.sample_views(seed, cfg)
        K, qas = np.broadcast_to(base.K, (cfg.frames, 3, 3)), questions(base, tasks).values()
        for f in factors:
            frames = views.render_views(replace(base, room=dict(base.room, tile=base.room['tile'] * f)))
            items += [item(qa, frames, K, base.c2w, i, seed, f'tile_x{f:g}', f) for qa in qas]
    return items


def train_medians(cfg: views.ViewsConfig, n_rooms: int = 512) -> dict:
    """{number task: median target over training rooms}: the constant answer to beat."""
    targets = {t: [] for t in cfg.tasks if t in views.NUMBER_TASKS}
    for i in range(n_rooms):
        seed = synthetic.scene_seed('train', i)
        v, _ = views.sample_views(seed, cfg)
        for t, qa in questions(v, list(targets)).items():
            targets[t].append(qa['target'])
    return {t: float(np.median(v)) for t, v in targets.items() if v}


def constant_scores(task, recs, medians) -> np.ndarray | None:
    """Per question, the score of the constant answer: a number's MRA of the training median; a
    choice's accuracy of the fixed option position that is best on these questions (so the bar is,
    if anything, set high)."""
    if task in views.NUMBER_TASKS:
        return np.array([mra(medians[task], r['target']) for r in recs]) if task in medians else None
    fixed = [np.array([r['options'][min(j, len(r['options']) - 1)] == r['target'] for r in recs], float)
             for j in range(max(len(r['options']) for r in recs))]
    return max(fixed, key=np.mean)


def gap_interval(score, const, n_boot=1000, seed=0) -> tuple[float, float]:
    """95 % bootstrap interval of mean(score − const) over the questions (paired: one draw, both)."""
    return mean_interval(np.asarray(score, float) - np.asarray(const, float), n_boot, seed)[1:]


def summarize(records, medians) -> dict:
    """{camera: {task: dict(n, score, scores, const, gap, unparsed, lenient)}}: score MRA (numbers) or
    accuracy (choices), per question in scores, const the constant answer's, gap the 95 % interval of
    score − const; lenient counts the answers read only by metrics' lenient rule ('3 chairs')."""
    out = {}
    for r in records:
        out.setdefault(r['camera'], {}).setdefault(r['task'], []).append(r)
    for cam, tasks in out.items():
        for t, rs in tasks.items():
            scores = [r['mra' if t in views.NUMBER_TASKS else 'acc'] for r in rs]
            const = constant_scores(t, rs, medians)
            tasks[t] = dict(n=len(rs), score=float(np.mean(scores)), scores=scores,
                            const=None if const is None else float(const.mean()),
                            gap=None if const is None else gap_interval(scores, const),
                            unparsed=sum(not r['parsed'] for r in rs), lenient=sum(r.get('lenient', False) for r in rs))
    return out


def measurement_error(task: str, got: float, true: float) -> float:
    """How far one stated measurement is off: a bearing in degrees (wrapped), a distance 1 − MRA, a frame 0 or 1."""
    if task == 'rel_direction':
        return abs(views.turn(true, got))
    return 1 - mra(got, true) if task == 'rel_distance' else float(got != true)


def spread(task: str, values) -> float:
    """How widely a set of measurements varies: the standard deviation, circular for bearings
    (sqrt(−2 ln R), R the length of the mean unit vector, in degrees). Stated over true, it is near 1 when
    the model's measurements vary as the questions do and near 0 when it writes one value for all."""
    x = np.asarray(values, float)
    if task != 'rel_direction':
        return float(x.std())
    R = np.abs(np.exp(1j * np.radians(x)).mean())
    return float(np.degrees(np.sqrt(-2 * np.log(max(R, 1e-12)))))


def reasons_summary(records) -> dict:
    """A --reasons run's choices split into their two steps, on the base lens: {task: dict(n, stated (two
    measurements written), consistent (the choice is the one its own measurements make, views.decide),
    decided (its measurements choose the right option), error (measurement_error: the mean, the median
    for bearings), spread (of the stated measurements over that of the true ones))}."""
    out = {}
    for t in ('rel_distance', 'rel_direction', 'appearance_order'):
        rs = [r for r in records if r['task'] == t and r['camera'] == 'base' and ':' in r['answer']]
        ok = [(r, x) for r, x in ((r, views.read_reasons(r['pred_text'])) for r in rs) if x is not None and len(x) == 2]
        if not ok:
            continue
        true = [views.read_reasons(r['answer']) for r, _ in ok]
        err = [measurement_error(t, p, g) for (_, x), y in zip(ok, true) for p, g in zip(x, y)]
        made = [views.decide(t, x, r['options']) for r, x in ok]          # the option its measurements make
        out[t] = dict(n=len(rs), stated=len(ok) / len(rs),
                      consistent=float(np.mean([parse_answer(t, r['pred_text']) == parse_name(m)
                                                for (r, _), m in zip(ok, made)])),
                      decided=float(np.mean([m == r['target'] for (r, _), m in zip(ok, made)])),
                      error=float(np.median(err) if t == 'rel_direction' else np.mean(err)),
                      spread=spread(t, [v for _, x in ok for v in x]) / max(spread(t, sum(true, [])), 1e-12))
    return out


def pose_response(records, scales=SCALES, n_boot=1000) -> dict:
    """{task: dict(mra at each k, response, ci)}: response = d log ŷ / d log k over the pairs with k = 1,
    / power (the pose scale k, or the tile factor f of the floor-ruler check); ci its 95 % bootstrap
    interval over the rooms (a room's pairs drawn together)."""
    out = {}
    for t in sorted({r['task'] for r in records}):
        rs = [r for r in records if r['task'] == t]
        base = {r['scene']: r['pred'] for r in rs if r['s'] == 1.0}
        by_room = {}
        for r in rs:
            if r['pred'] and base.get(r['scene']) and r['pred'] > 0 and base[r['scene']] > 0:
                by_room.setdefault(r['scene'], []).append((math.log(r['s']), math.log(r['pred'] / base[r['scene']])))
        rooms = [np.array(p) for p in by_room.values()]                        # (pairs of a room, 2)
        slope = lambda idx: fit_slope(*np.concatenate([rooms[i] for i in idx]).T) if len(idx) else None
        response = slope(range(len(rooms)))
        draws = bootstrap(lambda _, idx: np.nan if (b := slope(idx)) is None else b, 1, len(rooms), n_boot) \
            if response is not None else None
        out[t] = dict(mra={f"{k:g}": float(np.mean([r['mra'] for r in rs if r['s'] == k])) for k in scales},
                      response=None if response is None else response / POWER[t],
                      ci=None if draws is None else tuple(float(x) / POWER[t] for x in interval(draws)))
    return out


def zoom_response(records, zooms) -> dict:
    """{protocol: {task: (response, ci)}}: d log ŷ / d log s over the paired questions (against s = 1) ÷
    power, per protocol (all_zoom, some_zoom), and its 95 % interval over the rooms: −1 for a model
    that reads metric size off the pixels with the training lens assumed, 0 for one that reads K (the
    shortcut slope of eval.py)."""
    one = [r for r in records if r['camera'] == 'all_zoom_1.00']
    return {p: {t: (v['response'], v['ci']) for t, v in pose_response(
        one + [r for r in records if r['camera'].startswith(p) and r['s'] != 1.0], zooms).items()}
            for p in ('all_zoom', 'some_zoom')}


def with_ci(x, ci=None) -> str:
    """'0.36 [0.30, 0.41]', or '–' for none."""
    return '–' if x is None else f'{x:.2f}' + ('' if ci is None else f' [{ci[0]:.2f}, {ci[1]:.2f}]')


def response_table(results, key: str, factors, letter: str, title: str) -> list[str]:
    """The lines of a pose-scale or floor-ruler table (results[label][key] from pose_response); [] if none."""
    if not any(r.get(key) for r in results.values()):
        return []
    f = lambda x: '–' if x is None else f'{x:.2f}'
    lines = ['', f'{title}; MRA at {letter} = ' + ', '.join(f'{k:g}' for k in factors), '',
             '| checkpoint | task | ' + ' | '.join(f'MRA {letter}={k:g}' for k in factors) + ' | response |',
             '|---|---|' + '---|' * (len(factors) + 1)]
    for lab, r in results.items():
        for t, p in r.get(key, {}).items():
            lines.append(f'| {lab} | {t} | ' + ' | '.join(f(p['mra'][f'{k:g}']) for k in factors)
                         + f" | {with_ci(p['response'], p.get('ci'))} |")
    return lines


def markdown(results) -> str:
    """The sweep: a row per camera, a column per (checkpoint, task); then the constants and the pose check."""
    f = lambda x: '–' if x is None else f'{x:.2f}'
    labels = list(results)
    tasks = [t for t in views.VIEW_TASKS if any(t in c for r in results.values() for c in r['sweep'].values())]
    head = '| camera | s | ' + ' | '.join(f'{lab}: {t}' for lab in labels for t in tasks) + ' |'
    lines = ['cells: MRA (object_count, abs_distance, object_size, room_size) or accuracy (the others)', '',
             head, '|---|---|' + '---|' * (len(labels) * len(tasks))]
    cams = list(results[labels[0]]['sweep'])
    for cam in cams:
        cells = [f(results[lab]['sweep'].get(cam, {}).get(t, {}).get('score')) for lab in labels for t in tasks]
        lines.append(f'| {cam} | {cam.rsplit("_", 1)[-1]} | ' + ' | '.join(cells) + ' |')
    base = 'base'
    lines.append(f'| constant answer ({base}) | | ' + ' | '.join(
        f(results[lab]['sweep'][base].get(t, {}).get('const')) for lab in labels for t in tasks) + ' |')
    gap = lambda c: '–' if not c.get('gap') else f"{c['score'] - c['const']:+.2f} [{c['gap'][0]:+.2f}, {c['gap'][1]:+.2f}]"
    lines.append(f'| − constant, 95 % ({base}) | | ' + ' | '.join(
        gap(results[lab]['sweep'][base].get(t, {})) for lab in labels for t in tasks) + ' |')
    if len(labels) == 2:   # the same items for both (one config): paired per question
        a, b = (results[lab]['sweep'][base] for lab in labels)
        diff = lambda t: ('–' if t not in a or t not in b or a[t]['n'] != b[t]['n'] else '{:+.2f} [{:+.2f}, {:+.2f}]'.format(
            a[t]['score'] - b[t]['score'], *gap_interval(a[t]['scores'], b[t]['scores'])))
        lines.append(f'| {labels[0]} − {labels[1]}, 95 % ({base}; its columns) | | '
                     + ' | '.join([diff(t) for t in tasks] + [''] * len(tasks)) + ' |')
    lines.append(f'| questions ({base}) | | ' + ' | '.join(
        str(results[lab]['sweep'][base].get(t, {}).get('n', 0)) for lab in labels for t in tasks) + ' |')
    drift = lambda c: f"{c.get('unparsed', 0)} / {c.get('lenient', 0)}"    # format drift: '3 chairs' for '3'
    lines.append(f'| unparsed / read only by the lenient rule ({base}) | | ' + ' | '.join(
        drift(results[lab]['sweep'][base].get(t, {})) for lab in labels for t in tasks) + ' |')
    if any(r.get('reasons') for r in results.values()):
        lines += ['', 'the choices in two steps (--reasons runs, base lens): measurements stated, the choice is the '
                  'one they make, they make the right one; their error (distances 1 − MRA, frames wrong, degrees off: '
                  'median); spread: of the stated measurements over the true ones (0: one value for all)', '',
                  '| checkpoint | task | stated | consistent | decided right | error | spread |',
                  '|---|---|---|---|---|---|---|']
        lines += [f"| {lab} | {t} | {c['stated']:.2f} | {c['consistent']:.2f} | {c['decided']:.2f} | {c['error']:.2f} "
                  f"| {c['spread']:.2f} |"
                  for lab in labels for t, c in results[lab].get('reasons', {}).items()]
    if any(r.get('zoom') for r in results.values()):
        lines += ['', 'zoom response: d log ŷ / d log s ÷ power over the paired questions (−1 reads sizes off the '
                  'pixels with the training lens assumed, 0 reads K)', '',
                  '| checkpoint | task | every frame zoomed | odd frames zoomed |', '|---|---|---|---|']
        for lab in labels:
            z = results[lab].get('zoom', {})
            for t in z.get('all_zoom', {}):
                some = z.get('some_zoom', {}).get(t, (None,))
                lines.append(f"| {lab} | {t} | {with_ci(*z['all_zoom'][t])} | {with_ci(*some)} |")
    lines += response_table(results, 'pose', SCALES, 'k', 'pose scale: room and path × k, same pixels; '
                            'response d log ŷ / d log k ÷ power (1 follows the poses, 0 ignores them)')
    lines += response_table(results, 'tiles', TILES, 'f', 'floor ruler: the tiles × f, nothing else; '
                            'response d log ŷ / d log f ÷ power (−1 measures in tiles, 0 does not)')
    return '\n'.join(lines) + '\n'


def main(args, evaluate, load_checkpoint, label_of):
    """eval.py's arguments and its evaluate / load_checkpoint / run label (one home for generation)."""
    device = ('cuda' if torch.cuda.is_available() else 'cpu') if args.device == 'auto' else args.device
    os.makedirs(args.out, exist_ok=True)
    results, cache = {}, {}
    for path in args.ckpt:
        model, train_cfg = load_checkpoint(path, device)
        cfg = views_config(train_cfg)
        if repr(cfg) not in cache:
            cameras = sweep_cameras(args.zooms if args.camera_shift else [1.0], cfg.frames)
            rooms = synthetic.scene_range(args.n_scenes, args.first_scene)
            sweep, left_out = sweep_items(cfg, rooms, cameras)
            n_base = sum(it['camera'] == 'base' for it in sweep)
            print(f'{args.n_scenes} rooms: {n_base} questions, {(len(sweep) - n_base) // len(cameras)} of them paired '
                  f'({left_out} left out: an object unseen, or another answer, through some camera)')
            shift = args.camera_shift
            cache[repr(cfg)] = (sweep, scale_items(cfg, rooms) if shift else [], train_medians(cfg),
                                tile_items(cfg, rooms) if shift else [])
        sweep, scaled, medians, tiled = cache[repr(cfg)]
        records = evaluate(model, sweep, args.batch_size, args.max_new_tokens)
        for r, it in zip(records, sweep):
            r['options'] = it['options']
        label = label_of(path, results)
        results[label] = dict(ckpt=path, train_config=train_cfg, medians=medians, sweep=summarize(records, medians),
                              reasons=reasons_summary(records) if cfg.reasons else {})
        if args.camera_shift:
            results[label]['zoom'] = zoom_response([r for r in records if POWER.get(r['task'], 0) > 0],
                                                   sorted(set(args.zooms)))
        if scaled:
            posed = evaluate(model, scaled, args.batch_size, args.max_new_tokens)
            results[label]['pose'], records = pose_response(posed), records + posed
        if tiled:
            tiles = evaluate(model, tiled, args.batch_size, args.max_new_tokens)
            results[label]['tiles'], records = pose_response(tiles, TILES), records + tiles
        with open(os.path.join(args.out, f'records_{label}.jsonl'), 'w') as f:    # sweep, pose_x*, tile_x*
            f.writelines(json.dumps(r, default=lambda x: x.tolist()) + '\n' for r in records)
    with open(os.path.join(args.out, 'results.json'), 'w') as f:
        json.dump(dict(args=vars(args), results=results), f, indent=1, default=lambda x: x.tolist())
    with open(os.path.join(args.out, 'table.md'), 'w') as f:
        f.write(table := markdown(results))
    print(table)
    return results
