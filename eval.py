"""Evaluation: do the model's metric answers survive a change of camera?

A pinhole maps height H at depth Z to h = f·H/Z pixels, so pixels fix (f, H, Z) only up to
(λf, H, λZ). A model that ignores K learns its training f as a constant: through a lens zoomed
by s (f' = s·f) its depths shrink to Z/s. The *shortcut slope*, d log(Z_pred/Z) / d log s by
least squares over the zooms, is about −1 for such a model and about 0 for one that reads K (or
answers a constant: the *depth gain* d log Z_pred / d log Z at s = 1 tells these apart).

Protocol: the same held-out scenes (test-split seeds, every object fully in view through every
camera of the sweep: paired) and questions (one rng seed per scene and task) through the cameras
  zoom_s      f' = s·f, s in {0.5, 0.67, 0.8, 1, 1.25, 1.5, 2} (or --zooms), rendered exactly
  shift_*     principal point moved by ±10 % of the width (x) or +10 % of the height (y)
  <profile>   the other scenes.CAMERAS, s = f_profile / f_train (if within the zooms' range): 'tele'
              (35°) through a 'standard' (60°) training camera is s = tan 30° / tan 17.5° = 1.83
Real data (Omni3D JSON) has no renderer: each image is letterboxed to the model's size (aspect
ratio kept, K exact) and augment's exact warp (zoom, shift) stands in for the lens; questions are
asked only about objects fully in view through every camera of the sweep (paired again).

Metrics (common/metrics.py has the definitions); an answer that is not exactly data/synthetic.py's format scores
zero and counts as unparsed, save a one-number answer that lmms-eval's lenient reading takes
('3.27 m', '3.27.'): it is scored, and the share of such answers is reported beside the unparsed:
  depth, size, distance  MRA = 1/10 Σ_θ 1[|p−g|/g ≤ 1−θ], θ in {0.50, ..., 0.95} (VSI-Bench, as
                         lmms-eval), AbsRel |p−g|/g, δ<1.25 = 1[max(p/g, g/p) < 1.25]
  center, box            centre error ‖p−g‖ (m); box: 3D IoU, Acc@0.25 / Acc@0.5 (IoU ≥ k)
  closer                 accuracy
  detect                 F1@0.25 over a camera's answers by VG-LLM's protocol (prediction-order
                         matching, F1 per category, mean over the categories present), and
                         F1@0.25 pooled (one F1 over all categories, greedy highest-IoU matching)
Error metrics (AbsRel, centre error) average the parsed answers only.

  python eval.py --ckpt runs/rgb_only runs/full --camera-shift --n-scenes 64 --out out/eval
writes table.md (printed too), results.json (per checkpoint, camera and task, with unparsed and
lenient counts), records_<ckpt>.jsonl (every answer), zoom.png (with matplotlib); common/report.py makes
the tables and plots, common/intervals.py the seed-pooled rows of seeds.md. Shapes: image (3, H, W) uint8,
K (3, 3), B items per generate call.
"""
import argparse
import json
import os
from collections import defaultdict
from dataclasses import asdict
from functools import partial

import numpy as np
import torch
from tqdm import tqdm

import augment
from common import report
from common.checkpoint import read_json
from common.intervals import differences, seed_summary
from common.metrics import lenient_only, parse_answer, score
from data import omni3d, synthetic
from multiframe import eval_views
from train import TrainConfig
from world import pinhole, raycast, scenes

ZOOMS = (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0)   # the sweep's zooms s, spanning augment.ZOOM_RANGE
SHIFTS = (('shift_x+10%', 0.1, 0.0), ('shift_x-10%', -0.1, 0.0), ('shift_y+10%', 0.0, 0.1))

# ----------------------------------------------------------------------------- the camera sweep
def camera_sweep(scene_cfg, zooms=ZOOMS, shifts=SHIFTS, profiles=True):
    """[(name, s, K_fn)]: K_fn maps the training camera's K to the evaluated one (s = f'/f)."""
    H, W = scene_cfg.image_hw
    sweep = [(f'zoom_{s:.2f}', float(s), partial(pinhole.zoom_K, s=s)) for s in zooms]
    # (cx, cy) + (dx, dy) pixels, same f: K after augment.shift_principal_point
    sweep += [(name, 1.0, partial(shift_K, dx=frac_x * W, dy=frac_y * H)) for name, frac_x, frac_y in shifts]
    f0, s_max = scenes.camera_K(scene_cfg.camera, (H, W))[0, 0], (scene_cfg.visible_zoom or (1, 1))[1]
    for name in scenes.CAMERAS if profiles else ():   # profiles differ in f only (c = centre)
        s = float(scenes.camera_K(name, (H, W))[0, 0] / f0)
        if name != scene_cfg.camera and s <= s_max + 1e-9:   # kept if the scenes stay in view
            sweep.append((name, s, partial(pinhole.zoom_K, s=s)))
    return sweep


def shift_K(K, dx: float, dy: float) -> np.ndarray:
    """K (3, 3) after augment.shift_principal_point by (dx, dy) pixels: K' = A·K, A = shift_affine."""
    return (augment.shift_affine(dx, dy) @ torch.as_tensor(np.asarray(K, np.float64))).numpy()   # (3, 3)


def build_eval_items(scene_cfg, sweep, n_scenes: int | range, tasks=None, split='test'):
    """Each test scene, one question per feasible task (drawn with rng([seed, task index]) as
    synthetic.py does: the same through every camera), through every camera of the sweep. Items:
    dict(image uint8 (3, H, W), K float32 (3, 3), question, answer, task, target, scene, seed, camera, s)."""
    items = []
    for i in synthetic.scene_range(n_scenes):
        seed = synthetic.scene_seed(split, i)   # 'val' to choose a recipe, 'test' for the figures (docs/protocol.md)
        scene = scenes.sample_scene(seed, scene_cfg)
        objects = synthetic.scene_objects(scene)
        qas = [synthetic.make_qa(objects, t, np.random.default_rng([seed, synthetic.TASKS.index(t)]))
               for t in tasks or synthetic.TASKS if synthetic.feasible(objects, t)]   # closer/distance need 2
        for name, s, K_fn in sweep:
            K = K_fn(scene.K)                                                  # (3, 3)
            image = torch.from_numpy(raycast.render(scene, K=K)['image']).permute(2, 0, 1)  # (3, H, W)
            items += [dict(qa, image=image, K=torch.tensor(K, dtype=torch.float32), scene=i, seed=seed,
                           camera=name, s=s, c2w=torch.tensor(scene.c2w, dtype=torch.float32)) for qa in qas]
    return items


def train_medians(scene_cfg, tasks, n_scenes=512) -> dict:
    """{task: median target} over training-split scenes drawn with the evaluated scene config (the
    training world, its visibility widened to the sweep), for the one-number tasks (depth, size,
    distance), questions drawn as build_eval_items draws them: the constant answer a model
    that ignores the image would learn. Its MRA on the evaluated items is the baseline to beat."""
    targets = defaultdict(list)
    for i in range(n_scenes):
        seed = synthetic.scene_seed('train', i)
        objects = synthetic.scene_objects(scenes.sample_scene(seed, scene_cfg))
        for t in tasks:
            if t in ('depth', 'size', 'distance') and synthetic.feasible(objects, t):
                qa = synthetic.make_qa(objects, t, np.random.default_rng([seed, synthetic.TASKS.index(t)]))
                targets[t].append(qa['target'])
    return {t: float(np.median(v)) for t, v in targets.items()}


def build_real_items(dataset, sweep, image_hw, n=None):
    """Real data (omni3d.load_omni3d) -> (items, left_out). Each image is letterboxed to the model's
    size (aspect ratio kept), then warped by A = K' K⁻¹ with K' = K_fn(K) (augment.zoom /
    shift_principal_point exactly); camera-frame labels stay. Paired as the synthetic sweep: the
    question (drawn as synthetic.sample_qa does) is about objects whose 3D box is fully in view through
    every camera of the sweep; detect only where every object is. left_out counts the images of
    the first n that allow no such question."""
    items, left_out, tasks = [], 0, dataset.tasks
    for i in range(min(len(dataset), n or len(dataset))):
        it, objects = dataset[i], dataset.records[i]['objects']
        image, K0 = letterbox(it['image'], it['K'].double(), image_hw)       # (3, H, W), (3, 3)
        Ks = [K_fn(K0.numpy()) for _, _, K_fn in sweep]                    # (3, 3) each
        kept = [o for o in objects if all(box_in_view(o, K, image_hw) for K in Ks)]
        weights = list(dataset.task_weights or [1.0] * len(tasks))
        if len(kept) < len(objects) and 'detect' in tasks:
            weights[tasks.index('detect')] = 0.0                           # its answer lists every object
        if not any(w > 0 and synthetic.feasible(kept, t) for t, w in zip(tasks, weights)):
            left_out += 1
            continue
        qa = synthetic.sample_qa(kept, it['seed'], tasks, tuple(weights))
        for (name, s, _), K in zip(sweep, Ks):
            view, K = augment.apply_affine(image, K0, augment.affine_from_K(K0, torch.from_numpy(K))[0], image_hw)
            items.append(dict(qa, image=view, K=K.float(), scene=i, seed=it['seed'], camera=name, s=s))
    return items, left_out


def letterbox(image, K, image_hw):
    """Fit (3, H, W) into image_hw keeping the aspect ratio: scaled by a = min(H'/H, W'/W),
    centred, padded with 0 (augment.crop of a box larger than the image: K' = A K exactly)."""
    (H, W), (H2, W2) = image.shape[-2:], image_hw
    a = min(H2 / H, W2 / W)                                                # output pixels per input pixel
    bw, bh = W2 / a, H2 / a                                                # the box, in input pixels
    return augment.crop(image, K, ((W - bw) / 2, (H - bh) / 2, (W + bw) / 2, (H + bh) / 2), size_hw=image_hw)


def box_in_view(obj, K, image_hw) -> bool:
    """Are the 8 corners of obj's 3D box (synthetic.py's dict) in front of the camera and inside the image?"""
    corners = scenes.box_corners(obj['center'], obj['size'], obj['yaw'])  # (8, 3)
    uv = scenes.project(np.asarray(K, np.float64), corners) if (corners[:, 2] > 0).all() else None
    H, W = image_hw
    return uv is not None and bool(((uv >= 0) & (uv <= [W, H])).all())


# ----------------------------------------------------------------------------- generation
@torch.no_grad()
def evaluate(model, items, batch_size=32, max_new_tokens=None, progress=True, canonical_f=0.0):
    """Answer every item with model.generate (batched, one task per batch) and score it -> one
    record per item. The default token budget is 1.25x the task's longest reference answer in
    characters (>= tokens for ASCII) + 8: per task, so no answer leaks. canonical_f > 0: the
    model answers in that focal length's label space (train.py --canonical-focal), and each
    answer is mapped back to metres with its item's K (synthetic.canonical_target) before scoring."""
    device, records, batches = next(model.parameters()).device, [None] * len(items), []
    for task in dict.fromkeys(it['task'] for it in items):
        idx = [i for i, it in enumerate(items) if it['task'] == task]
        budget = int(1.25 * max(len(items[i]['answer']) for i in idx)) + 8
        batches += [(budget, idx[k:k + batch_size]) for k in range(0, len(idx), batch_size)]
    for budget, idx in tqdm(batches, desc='eval', disable=not progress):
        batch = [items[i] for i in idx]
        image, K = (torch.stack([it[k] for it in batch]).to(device) for k in ('image', 'K'))  # (B, 3, H, W), (B, 3, 3)
        c2w = torch.stack([it['c2w'] for it in batch]) if all('c2w' in it for it in batch) else None  # (B, 4, 4)
        texts = model.generate(image, K, [it['question'] for it in batch], max_new_tokens=max_new_tokens or budget,
                               c2w=c2w)
        for i, text in zip(idx, texts):
            records[i] = make_record(items[i], from_canonical(items[i], text, canonical_f) if canonical_f else text)
            if canonical_f:   # the mapped-back text is exact: whether the model's own was, it alone says
                records[i].update(canonical_text=text, lenient=lenient_only(items[i]['task'], text))
    return records


def from_canonical(item, text, f_c):
    """An answer in f_c's label space -> the same answer in metres for the item's K and pose (an
    answer that does not parse stays as it is, and scores zero)."""
    value = parse_answer(item['task'], text)
    if value is None:
        return text
    c2w = item.get('c2w', torch.eye(4))
    return synthetic.answer_text(item['task'], synthetic.canonical_target(item['task'], value, item['K'], c2w, f_c, inverse=True))


def make_record(item, text):
    """The JSON record of one answer: the item without pixels, the text, its score; a box answer
    also carries the camera-frame depth of its centre, predicted and true (z_pred, z_target), for
    the box-centre shortcut slope."""
    meta = {k: item[k] for k in ('scene', 'seed', 'camera', 's', 'task', 'question', 'answer', 'target')}
    rec = dict(meta, pred_text=text, **score(item['task'], text, item['target']))
    if item['task'] == 'box':
        R = np.asarray(item.get('c2w', torch.eye(4)), np.float64)[:3, :3]       # gravity-aligned -> camera: R.T
        rec.update(z_pred=camera_depth(rec['pred'], R), z_target=camera_depth(item['target'], R))
    return rec


def camera_depth(box, R):
    """The camera-frame depth of a box's centre (x y z in the gravity-aligned frame, c2w rotation R)."""
    return None if box is None else float((R.T @ np.asarray(box[:3], np.float64))[2])


# ----------------------------------------------------------------------------- checkpoints, CLI
# what to do about a train_config.json that cannot be read: without one, the flags stand in for it
BAD_TRAIN_CONFIG = ('restore it from a copy, or delete it to evaluate with --camera, --image-size and --tasks '
                    'in place of the training camera, image size and tasks it holds')


def load_checkpoint(path, device='cpu'):
    """(model, train_config dict) from a model.save folder or a train.py run folder (its ckpt/)."""
    from model import CameraAwareMLLM  # imported here: the metrics above need no transformers
    if not os.path.exists(os.path.join(path, 'config.json')) and os.path.isdir(os.path.join(path, 'ckpt')):
        path = os.path.join(path, 'ckpt')
    cfg_path = os.path.join(path, 'train_config.json')
    train_cfg = read_json(cfg_path, BAD_TRAIN_CONFIG) if os.path.exists(cfg_path) else {}
    return CameraAwareMLLM.load(path).to(device), train_cfg


def run_label(path, results) -> str:
    """runs/rgb_only(/ckpt) -> 'rgb_only', made unique among the labels in results."""
    parts = os.path.normpath(path).split(os.sep)
    label = parts[-2] if parts[-1] in ('ckpt', 'ckpt.old') and len(parts) > 1 else parts[-1]
    return f'{label}#{len(results)}' if label in results else label


def trained_frames(path) -> int:
    """The frames of a multi-frame run or checkpoint folder (0: single images, or no train_config.json)."""
    for p in (os.path.join(path, 'train_config.json'), os.path.join(path, 'ckpt', 'train_config.json')):
        if os.path.exists(p):
            return int(read_json(p, BAD_TRAIN_CONFIG).get('frames', 0))
    return 0


def eval_scene_config(train_cfg, camera='standard', image_size=128, zooms=ZOOMS, shifts=SHIFTS):
    """Scenes of the training camera and image size (train_config.json, else the CLI defaults),
    every object fully in view through every zoom and shift of the sweep (visible_range)."""
    hw = train_cfg.get('image_hw') or [train_cfg.get('image_size', image_size)] * 2
    pitch = tuple(float(p) for p in str(train_cfg.get('pitch_range', '0,0')).split(','))   # degrees, as trained
    return scenes.SceneConfig(image_hw=tuple(hw), camera=train_cfg.get('camera', camera), pitch_range=pitch,
                              n_objects=(1, train_cfg.get('max_objects', 4)), visible_zoom=visible_range(zooms, shifts))


def visible_range(zooms, shifts=()):
    """(s_min, s_max): the zooms through which the test scenes keep every object in view. The
    training range augment.ZOOM_RANGE = [0.5, 2] (train.py's too, so test scenes look like training
    ones), widened to every zoom requested, and to s >= 1 / (1 − 2|f|) for a principal-point shift
    by a fraction f of the image: an object inside the view of that zoom stays in the shifted view."""
    f = max([abs(v) for _, frac_x, frac_y in shifts for v in (frac_x, frac_y)], default=0.0)
    lo, hi = augment.ZOOM_RANGE
    return min(lo, *zooms), max(hi, *zooms, 1 / (1 - 2 * f))


def saved_records(path, items):
    """The records of an earlier evaluation (--reuse) if they answer exactly these items (same
    scenes, cameras, tasks and questions, in order), else None: they are evaluated afresh. A file
    cut short or otherwise unreadable is a cache miss too, said with the line that failed."""
    if not os.path.exists(path):
        return None
    keys = ('scene', 'camera', 'task', 'question')
    with open(path, encoding='utf-8', errors='replace') as f:
        lines = f.read().splitlines()
    records = []
    for n, line in enumerate(lines, 1):
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            r = None
        if not isinstance(r, dict) or any(k not in r for k in keys):
            print(f'{path}: line {n} is not a whole record ({line[:60]!r}); evaluated again')
            return None
        records.append(r)
    same = len(records) == len(items) and all(
        tuple(r[k] for k in keys) == tuple(it[k] for k in keys) for r, it in zip(records, items))
    print(f"{path}: {'reused' if same else 'answers other items; evaluated again'}")
    return records if same else None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--ckpt', nargs='+', default=[TrainConfig.out],
                   help=f'checkpoint or train.py run folders (default: {TrainConfig.out}, what python train.py writes)')
    p.add_argument('--camera-shift', action='store_true', help='the full sweep (else the training camera only)')
    p.add_argument('--n-scenes', type=int, default=64, help='held-out test scenes')
    p.add_argument('--split', default='test', choices=('val', 'test'),
                   help='scenes of this split (val: to choose a recipe; test: the reported figures)')
    p.add_argument('--first-scene', type=int, default=0, help='the index of the first (other rooms: a replication)')
    p.add_argument('--tasks', nargs='+', default=None,
                   help="tasks (space or comma separated); default: the checkpoint's training tasks, else all")
    p.add_argument('--zooms', default=','.join(map(str, ZOOMS)), help='comma-separated zoom factors s')
    p.add_argument('--cameras', default='', help='keep only these sweep entries (comma-separated names)')
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--max-new-tokens', type=int, default=None, help='default: per task from answer lengths')
    p.add_argument('--camera', default='standard', help='training camera if the checkpoint has no train_config.json')
    p.add_argument('--image-size', type=int, default=None,
                   help="image size if the checkpoint has no train_config.json (default: the model's)")
    p.add_argument('--data', default=None, help='Omni3D-format JSON (real data) instead of synthetic scenes')
    p.add_argument('--image-root', default=None, help='image folder for --data')
    p.add_argument('--n-boot', type=int, default=1000,
                   help='bootstrap draws for the intervals of seeds.md (runs NAME_s0, NAME_s1, ... pooled); 0: none')
    p.add_argument('--reference', default='full', help='seeds.md: the rows (comma-separated) the others are compared with')
    p.add_argument('--reuse', action='store_true',
                   help='reuse OUT/records_<run>.jsonl of an earlier evaluation of the same items (e.g. to add seeds)')
    p.add_argument('--device', default='auto')
    p.add_argument('--out', default='out/eval')
    args = p.parse_args(argv)
    args.tasks = [t for arg in args.tasks or [] for t in arg.split(',') if t] or None
    try:
        args.zooms = [augment.check_number('zoom', float(z), positive=True) for z in args.zooms.split(',')]
    except ValueError as e:
        p.error(f'--zooms {args.zooms!r}: {e}')
    if unknown := [t for t in args.tasks or [] if t not in synthetic.TASKS]:
        p.error(f'unknown task(s) {unknown}; known: {synthetic.TASKS}')
    if args.data and not args.image_root:
        p.error('--data needs --image-root')
    if args.first_scene < 0 or (args.first_scene and args.data):
        p.error(f'--first-scene {args.first_scene}: a test-room index >= 0, for synthetic scenes (not --data)')
    return args


def main(argv=None):
    args = parse_args(argv)
    if missing := [c for c in args.ckpt if not os.path.isdir(c)]:
        raise SystemExit(f'--ckpt: no such folder {missing}; train one first (python train.py writes {TrainConfig.out})')
    if trained_frames(args.ckpt[0]):   # posed multi-frame rooms (multiframe/train_views.py): their protocols
        return eval_views.main(args, evaluate, load_checkpoint, run_label)
    device = ('cuda' if torch.cuda.is_available() else 'cpu') if args.device == 'auto' else args.device
    zooms, shifts = (args.zooms, SHIFTS) if args.camera_shift else ([1.0], ())
    keep = [c for c in args.cameras.split(',') if c]
    os.makedirs(args.out, exist_ok=True)
    results, cache, constants, all_records, item_keys = {}, {}, {}, {}, {}
    for path in args.ckpt:
        model, train_cfg = load_checkpoint(path, device)
        scene_cfg = eval_scene_config(train_cfg, args.camera, args.image_size or getattr(model, 'image_size', 128),
                                      zooms, shifts)
        tasks = tuple(args.tasks or [t for t in train_cfg.get('tasks', ','.join(synthetic.TASKS)).split(',') if t])
        sweep = [c for c in camera_sweep(scene_cfg, zooms, shifts, profiles=args.camera_shift and not args.data)
                 if not keep or c[0] in keep]
        key = (repr(scene_cfg), tasks, tuple(c[0] for c in sweep))   # same scenes, tasks, cameras: same items
        if key not in cache and args.data:
            cache[key], left_out = build_real_items(omni3d.load_omni3d(args.data, args.image_root, tasks),
                                                    sweep, scene_cfg.image_hw, args.n_scenes)
            print(f'{args.data}: {len(cache[key]) // len(sweep)} images; {left_out} left out, with no question '
                  f'about objects fully in view through every camera of the sweep')
            if not cache[key]:
                raise SystemExit(f'{args.data}: no image to evaluate ({left_out} left out)')
        elif key not in cache:
            cache[key] = build_eval_items(scene_cfg, sweep, synthetic.scene_range(args.n_scenes, args.first_scene), tasks,
                                          args.split)
        if key not in constants:   # real data has no training scenes to take a median of
            constants[key] = {} if args.data else train_medians(scene_cfg, tasks)
        f_c = synthetic.canonical_focal(train_cfg['camera'], train_cfg['image_size']) if train_cfg.get('canonical_focal') else 0.0
        label = run_label(path, results)
        records = saved_records(os.path.join(args.out, f'records_{label}.jsonl'), cache[key]) if args.reuse else None
        if records is None:
            records = evaluate(model, cache[key], args.batch_size, args.max_new_tokens, canonical_f=f_c)
        results[label] = dict(ckpt=path, train_config=train_cfg, scene_config=asdict(scene_cfg),
                              summary=report.summarize(records, constants[key]))
        all_records[label], item_keys[label] = records, key
        with open(os.path.join(args.out, f'records_{label}.jsonl'), 'w') as f:
            f.writelines(json.dumps(r, default=lambda x: x.tolist()) + '\n' for r in records)
        del model
    seeds = {}
    if args.n_boot > 0:   # rows pooled over seeds, with paired-bootstrap intervals
        groups = report.group_runs(results)
        for row, labels in groups.items():
            if len({item_keys[label] for label in labels}) > 1:
                raise SystemExit(f'{row}: runs {labels} were evaluated on different items (scene config, tasks or '
                                 f'cameras differ), so their seeds cannot be pooled; rename them')
        summary, draws = seed_summary(groups, all_records, args.n_boot)
        diffs = {ref: differences(draws, ref) for ref in args.reference.split(',') if ref in summary}
        seeds = dict(rows=summary, differences=diffs)
        with open(os.path.join(args.out, 'seeds.md'), 'w') as f:
            f.write(seed_table := report.seed_tables(summary, diffs))
        report.plot_seeds(summary, os.path.join(args.out, 'seeds.png'))
    with open(os.path.join(args.out, 'results.json'), 'w') as f:
        json.dump(dict(args=vars(args), results=results, seeds=seeds), f, indent=1, default=lambda x: x.tolist())
    with open(os.path.join(args.out, 'table.md'), 'w') as f:
        f.write(table := report.markdown_table(results))
    report.plot_zoom(results, os.path.join(args.out, 'zoom.png'), ZOOMS)
    print(table)
    if seeds:
        print(seed_table)
    return results


if __name__ == '__main__':
    main()
