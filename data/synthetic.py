"""
Samples: spatial questions with computed answers, over synthetic scenes (or real data, omni3d.py).

The idea. A sample is an image, its K, and one question whose answer follows from the 3D
annotations in the camera frame (metres), never from the pixels: so zooming or cropping the
image (augment.py) changes K and the pixels but not a single answer. Answers are plain text,
every number `fmt`-ed with two decimals (yaw in radians, wrapped to [−π/2, π/2), where a box
looks the same as at yaw + π), numbers separated by one space:
    depth     "3.27"                                 z of the centre
    center    "0.41 1.12 3.27"                       x y z of the centre
    box       "0.41 1.12 3.27 0.80 0.95 0.60 0.52"   x y z w h l yaw
    size      "0.95"                                 h, the height
    distance  "2.10"                                 |c1 − c2| between two centres
    closer    "red box"                              the one with the smaller centre depth z
    detect    "red box 0.41 1.12 3.27 0.80 0.95 0.60 0.52" one line per object, nearest (z) first
Every task but detect refers to objects by name, so it only picks objects whose name is unique
in the image (synthetic names always are; in Omni3D the name is the category, and an image with
two chairs asks about neither chair, though detect lists both). `closer` prefers pairs whose
depths differ by >= CLOSER_GAP, so the question is answerable from the image.

Frames. Every answer is in the camera frame (depth: the camera's z), except the boxes of `box`
and `detect`: seven numbers with a yaw about the vertical describe a box only in a frame whose y
axis is vertical, so their x y z are in the gravity-aligned camera frame (scenes.py's world frame:
origin at the camera, y down along gravity, z the camera's horizontal heading; X = R·X_cam with
c2w = [R | 0]), where 3D IoU of yawed boxes is exact. For a level camera (SceneConfig's default) the two
frames are one. Pitched 10° down, a centre at camera (0, 0.12, 5.10) answers depth "5.10", center
"0.00 0.12 5.10" and box "0.00 1.00 5.00 w h l yaw". Omni3D records carry no pose: their boxes stay
in the camera frame with the yaw about the camera's y axis (yaw_from_R).

Seeding. Item i of split S renders scene seed scene_seed(S, i) = SPLIT_BASE·index(S) + i: the
same on every machine and rank, and the splits never share a scene. The task is drawn with
rng([seed, 100]); the question of (seed, task) with rng([seed, TASKS.index(task)]) exactly as
eval.py draws it; the augmentation with rng([seed, 101]). Omni3D items (omni3d.py) use the image id
as seed, so export_omni3d then load_omni3d asks the same questions as the synthetic dataset did.

Shapes: image (3,H,W) uint8, K (3,3), depth (H,W), points (H,W,3) (0 = unknown); B in batches.
"""
import math
from dataclasses import dataclass, field

import numpy as np
import torch

import augment
import camera_embed
from world import pinhole, raycast, scenes

TASKS = ('depth', 'center', 'box', 'size', 'distance', 'closer', 'detect')
SPLITS = ('train', 'val', 'test')
SPLIT_BASE = 10 ** 9          # scene seeds of split k are k·SPLIT_BASE + i, 0 <= i < SPLIT_BASE
CLOSER_GAP = 0.25             # metres: `closer` pairs differ in depth by at least this when they can
TASK_STREAM, AUG_STREAM = 100, 101

PHRASES = {
    'depth': ("How far from the camera is the {a}? Answer the depth of its centre in metres.",
              "What is the depth (z, in metres) of the centre of the {a}?",
              "Estimate the depth of the {a}'s centre in metres.",
              "At what depth along the camera's viewing axis is the {a}? Metres."),
    'center': ("Where is the centre of the {a}? Answer x y z in metres, camera frame.",
               "Give the 3D position of the {a}'s centre as x y z in metres.",
               "Locate the {a}: the camera-frame coordinates x y z of its centre, in metres."),
    'box': ("Give the 3D bounding box of the {a} as x y z w h l yaw.",
            "What is the 3D box of the {a}? Answer centre x y z, size w h l in metres, and yaw in radians.",
            "Output the {a}'s 3D bounding box: x y z w h l yaw."),
    'size': ("How tall is the {a} in metres?",
             "What is the height of the {a}, in metres?",
             "Estimate the vertical size of the {a} in metres."),
    'distance': ("How far apart are the {a} and the {b}? Answer the distance between their centres in metres.",
                 "What is the distance in metres between the centres of the {a} and the {b}?",
                 "Estimate the centre-to-centre distance between the {a} and the {b} in metres."),
    'closer': ("Which is closer to the camera, the {a} or the {b}?",
               "Which object is nearer to the camera: the {a} or the {b}?",
               "Of the {a} and the {b}, which one is closer to the camera?"),
    'detect': ("Detect every object: one line each with its name and 3D box x y z w h l yaw, nearest first.",
               "List all objects in the image, nearest first, each as: name x y z w h l yaw.",
               "Find each object; give its name and 3D box (x y z w h l yaw), one per line, nearest first."),
}


def tokenizer_corpus(camera_text: bool = False) -> list[str]:
    """Every phrase with the synthetic world's names, and the names alone (answers of closer and
    detect): the text a tiny BPE tokenizer (tokens.bpe_tokenizer) is trained on. camera_text: and
    the intrinsics as text (camera_embed.camera_text) of a few cameras, for the text baseline."""
    kinds = list(scenes.CATEGORIES) + list(scenes.SHAPES)
    names = [f'{c} {k}' for c in scenes.COLORS for k in kinds]
    pairs = list(zip(names, names[1:] + names[:1]))
    corpus = names + [p.format(a=a, b=b) for ps in PHRASES.values() for p in ps for a, b in pairs]
    if camera_text:
        corpus += [camera_embed.camera_text(pinhole.zoom_K(scenes.camera_K(c, (128, 128)), s))
                   for c in scenes.CAMERAS for s in (augment.ZOOM_RANGE[0], 1.0, augment.ZOOM_RANGE[1])]
    return corpus


def fmt(x: float) -> str:
    s = f"{x:.2f}"
    return '0.00' if s == '-0.00' else s


def wrap_yaw(yaw: float) -> float:
    """Into [−π/2, π/2): a box at yaw + π is the same box."""
    return (yaw + math.pi / 2) % math.pi - math.pi / 2


def scene_seed(split: str, i: int) -> int:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0 <= i < SPLIT_BASE:
        raise ValueError(f"index {i} outside [0, {SPLIT_BASE})")
    return SPLITS.index(split) * SPLIT_BASE + int(i)


def scene_range(n, first: int = 0) -> range:
    """The scene indices of an evaluation: n of them from `first` (eval.py --first-scene), or a range as it is."""
    return n if isinstance(n, range) else range(first, first + n)


# ----------------------------------------------------------------------------- questions

def scene_objects(scene) -> list:
    """Dicts of name, center (camera frame), size, yaw (about gravity) and box_center: the centre in
    the gravity-aligned camera frame, R·center (the same for a level camera), for box answers."""
    R = scene.c2w[:3, :3]
    return [dict(name=o.name, center=o.center, size=o.size, yaw=o.yaw, box_center=R @ o.center)
            for o in scene.objects]


def _box(o) -> list:
    """x y z w h l yaw, x y z in the gravity-aligned frame where known (box_center), else the camera's."""
    return [float(v) for v in (*o.get('box_center', o['center']), *o['size'])] + [wrap_yaw(float(o['yaw']))]


def _unique(objects) -> list:
    names = [o['name'] for o in objects]
    return [o for o in objects if names.count(o['name']) == 1]


def feasible(objects, task) -> bool:
    """Can `task` be asked about these objects (unique names to refer to, enough of them)?"""
    need = dict(distance=2, closer=2).get(task, 1)
    return len(objects if task == 'detect' else _unique(objects)) >= need


def make_qa(objects: list, task: str, rng: np.random.Generator) -> dict:
    """One question about `objects` (dicts with name, center (3,), size (3,), yaw) and its answer."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; tasks: {TASKS}")
    if not feasible(objects, task):
        raise ValueError(f"task {task!r} needs {'objects' if task == 'detect' else 'objects with unique names'}"
                         f" (2 for distance/closer); got names {[o['name'] for o in objects]}")
    phrase = PHRASES[task][rng.integers(len(PHRASES[task]))]
    if task == 'detect':
        target = [(o['name'], _box(o)) for o in sorted(objects, key=lambda o: float(o['center'][2]))]
        return dict(question=phrase, answer=answer_text(task, target), task=task, target=target)
    cand = _unique(objects)
    if task in ('distance', 'closer'):
        pairs = [(p, q) for i, p in enumerate(cand) for q in cand[i + 1:]]
        if task == 'closer':
            apart = [pq for pq in pairs if abs(pq[0]['center'][2] - pq[1]['center'][2]) >= CLOSER_GAP]
            pairs = apart or pairs
        p, q = pairs[rng.integers(len(pairs))]
        p, q = (q, p) if rng.random() < 0.5 else (p, q)             # either may be named first
        question = phrase.format(a=p['name'], b=q['name'])
        if task == 'distance':
            target = float(np.linalg.norm(np.subtract(p['center'], q['center'], dtype=float)))
            return dict(question=question, answer=fmt(target), task=task, target=target)
        target = p['name'] if p['center'][2] <= q['center'][2] else q['name']
        return dict(question=question, answer=target, task=task, target=target)
    o = cand[rng.integers(len(cand))]
    box, center = _box(o), [float(v) for v in o['center']]                # box: gravity-aligned frame
    target = dict(depth=center[2], center=center, box=box, size=box[4])[task]
    return dict(question=phrase.format(a=o['name']), answer=answer_text(task, target), task=task, target=target)


def answer_text(task: str, target) -> str:
    """The answer format of the docstring: '3.27', '0.41 1.12 3.27', names, detect lines."""
    if task == 'detect':
        return '\n'.join(name + ' ' + ' '.join(map(fmt, box)) for name, box in target)
    if task == 'closer':
        return target
    return ' '.join(map(fmt, target)) if isinstance(target, list) else fmt(target)


def active_tasks(tasks, task_weights) -> list[int]:
    """Indices of the tasks that can be drawn: all without weights, else those of weight > 0."""
    return [i for i in range(len(tasks)) if task_weights is None or task_weights[i] > 0]


def sample_qa(objects, seed: int, tasks=TASKS, task_weights=None) -> dict:
    """The sample's task (by weight, among the feasible ones) and its question, from the seed alone."""
    ok = [i for i in active_tasks(tasks, task_weights) if feasible(objects, tasks[i])]
    if not ok:
        raise ValueError(f"no task of {tasks} with weight > 0 can be asked about {[o['name'] for o in objects]}")
    w = np.array([1.0 if task_weights is None else task_weights[i] for i in ok])
    task = tasks[ok[np.random.default_rng([seed, TASK_STREAM]).choice(len(ok), p=w / w.sum())]]
    return make_qa(objects, task, np.random.default_rng([seed, TASKS.index(task)]))


# ----------------------------------------------------------------------------- canonical focal
# A baseline from the depth literature (Metric3D, Yin et al. 2023), not the paper's method: train
# depth-like answers in the label space of one canonical focal length f_c, and map them back with
# the test camera's fx. Pixels fix a point only up to (x, y, z) -> (x, y, λz) with f -> λf (u =
# fx·x/z + cx is unchanged, and so is x = (u − cx)·z/fx), so the canonical label of a camera-frame
# point is (x, y, z·f_c/fx): z scales, sizes and x, y do not. 128 px at 60°: fx = 110.9 = f_c, so
# the training camera's labels are unchanged; zoomed ×2 (fx = 221.7) a depth of 4.00 m is taught
# as 2.00. Box centres (gravity-aligned, c2w = [R | 0]) go to the camera frame and back.
def canonical_target(task: str, target, K, c2w, f_c: float, inverse: bool = False):
    """target in metres -> the canonical label space of f_c (inverse: back to metres), for the
    camera K (3, 3) with pose c2w (4, 4). Sizes, names and yaw are unchanged; distance, which
    mixes two points' depths and lateral offsets, has no canonical form here."""
    fx = float(np.asarray(K)[0, 0])
    k = fx / f_c if inverse else f_c / fx                                   # z -> k·z
    R = np.asarray(c2w, dtype=np.float64)[:3, :3]

    def scale_box(box):                                                     # (7,) gravity-aligned centre
        p = R.T @ np.asarray(box[:3], dtype=np.float64)                     # camera frame
        return [float(v) for v in R @ (p * [1.0, 1.0, k])] + list(box[3:])

    if task == 'depth':
        return float(target) * k
    if task == 'center':
        return [float(target[0]), float(target[1]), float(target[2]) * k]
    if task == 'box':
        return scale_box(target)
    if task == 'detect':
        return [(name, scale_box(box)) for name, box in target]
    if task in ('size', 'closer'):
        return target
    raise ValueError(f"task {task!r} has no canonical-focal label space (depth, center, box, detect, size, closer do)")


def canonical_focal(camera: str, image_size: int) -> float:
    """f_c of train.py --canonical-focal: the training camera's fx at its image size (pixels)."""
    return float(scenes.camera_K(camera, (image_size, image_size))[0, 0])


def to_canonical(item: dict, f_c: float) -> dict:
    """An item (make_item) with its answer and target in f_c's label space, for its own K and c2w."""
    target = canonical_target(item['task'], item['target'], item['K'], item['c2w'], f_c)
    return dict(item, target=target, answer=answer_text(item['task'], target))


# ----------------------------------------------------------------------------- items and batches

@dataclass
class DataConfig:
    scene: scenes.SceneConfig = field(default_factory=scenes.SceneConfig)
    tasks: tuple = TASKS
    task_weights: tuple | None = None   # one weight per task in `tasks`; None: uniform
    canonical_focal: float = 0.0        # > 0: answers in this focal length's label space (canonical_target)
    render_augment: bool = False        # the augmentation's new camera rendered exactly (a wider lens shows
                                        # more of the room) instead of the image warped (a black border)


def object_depth_map(instance, objects) -> np.ndarray:
    """(H, W): z of the centre of the object each pixel sees (instance id >= 0), 0 elsewhere."""
    z = np.array([float(o['center'][2]) for o in objects] + [0.0], dtype=np.float32)   # id −1 -> 0
    return z[np.where(instance >= 0, instance, len(objects))]


def make_item(image, K, depth, points, qa, seed, augment_cfg=None, object_depth=None, c2w=None) -> dict:
    """numpy (H,W,3) uint8, (3,3), (H,W), (H,W,3) [, (H,W)] -> the item of tensors; optionally
    augmented. object_depth (object_depth_map) only where it is known (synthetic scenes). c2w (4,4):
    the camera pose (scenes.Scene.c2w), identity if None (level, or unknown); crops and zooms about
    the principal point leave it unchanged."""
    image = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()   # (3, H, W)
    K = torch.as_tensor(np.asarray(K), dtype=torch.float32)
    maps = [torch.as_tensor(depth, dtype=torch.float32)[None], torch.as_tensor(points, dtype=torch.float32).permute(2, 0, 1)]
    if object_depth is not None:
        maps.append(torch.as_tensor(object_depth, dtype=torch.float32)[None])
    geometry = torch.cat(maps)                                                         # (4 or 5, H, W)
    if augment_cfg is not None:
        image, K, geometry = augment.random_camera_augment(
            image, K, augment_cfg, np.random.default_rng([seed, AUG_STREAM]), geometry)
        K = K.to(torch.float32)
    c2w = torch.eye(4) if c2w is None else torch.as_tensor(np.asarray(c2w), dtype=torch.float32)   # (4, 4)
    item = dict(image=image, K=K, depth=geometry[0], points=geometry[1:4].permute(1, 2, 0).contiguous(),
                c2w=c2w, seed=int(seed), **qa)                                         # (H', W'), (H', W', 3)
    if object_depth is not None:
        item['object_depth'] = geometry[4]                                             # (H', W')
    return item


class SyntheticDataset(torch.utils.data.Dataset):
    """Item i = a rendered scene of seed scene_seed(split, i) and one question about it."""

    def __init__(self, cfg: DataConfig = DataConfig(), split: str = 'train', length: int = 10000,
                 augment: 'augment.AugmentConfig | None' = None):
        check_tasks(cfg.tasks, cfg.task_weights)
        scene_seed(split, max(length - 1, 0))                  # checks split and length
        if cfg.scene.n_objects[0] < 2 and all(cfg.tasks[i] in ('distance', 'closer')
                                              for i in active_tasks(cfg.tasks, cfg.task_weights)):
            raise ValueError(f"tasks {cfg.tasks} all need two objects: use SceneConfig(n_objects=(2, ...))")
        self.cfg, self.split, self.length, self.augment = cfg, split, int(length), augment

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        i = item_index(i, self.length)
        seed = scene_seed(self.split, i)
        scene = scenes.sample_scene(seed, self.cfg.scene)
        out = raycast.render(scene)
        objects = scene_objects(scene)
        qa = sample_qa(objects, seed, self.cfg.tasks, self.cfg.task_weights)
        K, aug = scene.K, self.augment
        if aug is not None and self.cfg.render_augment:   # the same camera draw as the warp, rendered
            A, out_hw = augment.sample_affine(torch.as_tensor(K), scene.image_hw, aug, np.random.default_rng([seed, AUG_STREAM]))
            K, aug = (A.numpy() @ K), None
            out = raycast.render(scene, K=K, image_hw=out_hw)
        item = make_item(out['image'], K, out['depth'], out['points'], qa, seed, aug,
                         object_depth_map(out['instance'], objects), scene.c2w)
        return to_canonical(item, self.cfg.canonical_focal) if self.cfg.canonical_focal > 0 else item


def collate(items: list) -> dict:
    shapes = {tuple(it['image'].shape) for it in items}
    if len(shapes) != 1:
        raise ValueError(f"collate needs one image size per batch, got {sorted(shapes)}: resize first "
                         f"(augment.AugmentConfig.resize_hw)")
    batch = dict(images=torch.stack([it['image'] for it in items]),          # (B, 3, H, W) uint8
                 K=torch.stack([it['K'] for it in items]),                    # (B, 3, 3)
                 depth=torch.stack([it['depth'] for it in items]),            # (B, H, W)
                 points=torch.stack([it['points'] for it in items]))          # (B, H, W, 3)
    if all('object_depth' in it for it in items):
        batch['object_depth'] = torch.stack([it['object_depth'] for it in items])   # (B, H, W)
    if all('c2w' in it for it in items):
        batch['c2w'] = torch.stack([it['c2w'] for it in items])              # (B, 4, 4)
    for key in ('question', 'answer', 'task', 'target', 'seed'):
        batch[key] = [it[key] for it in items]
    if any('turns' in it for it in items):   # follow-up questions (views.follow_ups)
        batch['turns'] = [it.get('turns', []) for it in items]
    return batch


# ----------------------------------------------------------------------------- input checks

def check_tasks(tasks, task_weights):
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {tasks}")
    if task_weights is not None and (len(task_weights) != len(tasks) or min(task_weights) < 0
                                     or sum(task_weights) <= 0):
        raise ValueError(f"task_weights must be {len(tasks)} non-negative numbers, not all 0; got {task_weights}")


def item_index(i, length: int) -> int:
    """i as an int in [0, length), else IndexError (datasets are laid out by index)."""
    i = int(i)
    if not 0 <= i < length:
        raise IndexError(f"item {i} of a dataset of {length}")
    return i
