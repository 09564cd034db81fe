"""
Several posed frames of one room: a camera path, every frame rendered exactly, and questions across views.

Why. One image with the camera at the origin has a zero Plücker moment o × d̂, so the pose half of
the camera embedding never carries anything. Video benchmarks of spatial intelligence (VSI-Bench:
Yang et al. 2025, "Thinking in Space", §2) ask about a room filmed by a moving camera: how many
objects it holds, how far apart two objects are that no single frame shows together, the room's
floor area, which object is nearest another, left or right from someone's point of view, which
appears first. Here a hand-held camera walks and pans through a scenes.py room: N frames, each with
a known pose and its own K, and every answer exact.

World frame. Gravity-aligned as in scenes.py (x right, y down, z forward, metres), walls along its
axes, origin on the floor under the first camera. Camera k (t_k = k/(N−1) along the path):
    c2w_k = [[R_k, o_k], [0, 1]],   R_k = R_y(ψ_k)·R_pitch(θ_k),   o_k = (t_k·w_x, −h, t_k·w_z)
    X_world = R_k·X_cam + o_k,   X_cam = R_kᵀ(X_world − o_k),   pixel x = K·X_cam / Z_cam
    ray of pixel (u, v): d̂ = normalize(R_k·K⁻¹[u, v, 1]);  line o_k + t·d̂;  moment m = o_k × d̂ = X × d̂
for every X on the line (camera_embed.plucker): a point seen in two frames lies on both lines.
The heading ψ pans from ∓pan to ±pan (× U(0.6, 1)), θ is drawn in pitch_range per frame, and the
camera moves by (w_x, w_z), |w_x| <= walk, 0 <= w_z <= walk, at a constant height h.

Rendering. raycast.render draws a room about a camera at its origin with a rotation only, so frame k
is the room moved by −o_k: walls left + o_x, right − o_x, back − o_z, floor y = h, objects at
R_kᵀ(c − o_k), the checker kept in place (room['tile_offset'] = (o_x, o_z)), c2w = [R_k | 0]. Each
frame is therefore exact through any K, and its point map (camera frame, as render returns it)
goes to the world by c2w_k. The camera stays at z <= walk < object_z[0] (no object in its way), and
|ψ| + the half field of view < 90°: it never faces the front wall, FRONT metres behind its start,
which is therefore not drawn.

Seen. Object i is seen in frame k when it covers >= min_pixels pixels of frame k's instance map
(occlusion included), pixels of a 64×64 frame: the threshold scales with the frame's area and the
zoom², one solid angle at any resolution. Questions refer only to seen objects; a count counts
each seen object once.

Questions (VSI-Bench's types; answers plain text as synthetic.py writes them):
    object_count      How many objects appear in these frames?            "4"       (an integer)
    abs_distance      distance between the centres of A and B             "3.27"    |c_A − c_B|
    object_size       longest side of A                                   "1.23"    max(w, h, l)
    room_size         floor area of the room                              "41.60"   (left + right)·(back + front)
    rel_distance      which of B, C (, D) is closest to A                 "B"          (centres; lettered options)
    rel_direction     standing at A facing B, is C left or right          "left"    sign of (C − A)·(down × (B − A))
    appearance_order  which appears first, A or B                         "A"          (its first frame is earlier)
and one auxiliary for training, a grounding question (each name tied to the pixels it names):
    frame_objects     the objects of every frame, left to right           "1: blue stool, red bin; 2: red bin; 3: none"
With questions > 1 a training room is asked up to that many of its askable tasks in one sequence
(follow_ups; tokens.conversation): one vision pass, an answer for each. With reasons (train.py
--reasons) a choice's answer shows the two measurements that decide it first, 'A 3.61, B 1.20: B'
(with_reasons): each a single measurement like abs_distance, and the choice their comparison.
Shapes: N frames, H×W pixels; image (N, H, W, 3) uint8, K (N, 3, 3), c2w (N, 4, 4), seen (N, n objects).
"""
import math
from dataclasses import dataclass

import numpy as np

from data import synthetic
from world import raycast, scenes

VIEW_TASKS = ('object_count', 'abs_distance', 'object_size', 'room_size', 'rel_distance', 'rel_direction',
              'appearance_order')
NUMBER_TASKS = ('object_count', 'abs_distance', 'object_size', 'room_size')     # MRA; the others: accuracy
                                                                                # (metrics.score, as VSI-Bench)
AUX_TASKS = ('frame_objects',)   # training only (--tasks ...,frame_objects): never evaluated, not VSI-Bench's
TRAIN_TASKS = VIEW_TASKS + AUX_TASKS                                              # what --tasks may name
FRONT = 1.0                # metres: the front wall behind the first camera (never in view)
PATH_STREAM, QA_STREAM = 1, 200
REL_GAP = 0.3              # metres: the nearest object of rel_distance beats the next by this, when it can
SIDE_MIN = math.radians(15)  # rel_direction: C is at least this far off the line A -> B, when it can

PHRASES = {
    'object_count': ("How many objects appear in these frames?",
                     "Count the different objects seen across the frames."),
    'abs_distance': ("What is the distance in metres between the centres of the {a} and the {b}?",
                     "How far apart are the {a} and the {b}? Answer the centre-to-centre distance in metres."),
    'object_size': ("What is the length of the longest side of the {a}, in metres?",
                    "How long is the longest dimension (length, width or height) of the {a}, in metres?"),
    'room_size': ("What is the floor area of this room in square metres?",
                  "How large is this room? Answer its floor area in square metres."),
    'rel_distance': ("Which of these is closest to the {a}? {options}",
                     "Measuring between centres, which object is nearest to the {a}? {options}"),
    'rel_direction': ("If I stand at the {a} facing the {b}, is the {c} to my left or to my right?",
                      "Standing by the {a} and looking at the {b}, is the {c} on my left or on my right?"),
    'appearance_order': ("Which appears first in the video? {options}",
                         "Which object is seen first? {options}"),
    'frame_objects': ("Which objects does each frame show, from left to right?",
                      "List the objects in every frame, left to right."),
}


@dataclass
class ViewsConfig:
    frames: int = 3
    image_hw: tuple = (64, 64)
    camera: str = 'standard'           # a key of scenes.CAMERAS: the same lens for every frame
    n_objects: tuple = (3, 5)          # inclusive range
    height_range: tuple = (1.3, 1.5)   # camera height, metres (hand-held, as scenes.py)
    pitch_range: tuple = (10.0, 20.0)  # degrees down, drawn per frame
    pan: float = 30.0                  # degrees: the heading sweeps across the room, at most ±pan
    walk: float = 1.5                  # metres: the path moves up to this far sideways and forward
    object_x: float = 3.5              # object centres in |x| <= object_x, z in object_z
    object_z: tuple = (2.5, 8.0)
    min_pixels: float = 6.0            # an object is seen in a frame from this many pixels (of a 64×64 frame) on
    tasks: tuple = VIEW_TASKS
    task_weights: tuple | None = None  # one per task; None: uniform
    questions: int = 1                 # > 1: up to this many questions per room in one sequence (follow_ups)
    object_channels: bool = True       # items carry object_depths (the teacher's object channels per frame)
    reasons: bool = False              # the choices' answers show their measurements first (with_reasons)


@dataclass
class Views:
    objects: list            # scenes.Object, centre and yaw in the WORLD frame (R_cam = R_y(yaw))
    room: dict               # walls left/right/back/front, height, tile, colours, light (world frame)
    c2w: np.ndarray          # (N, 4, 4) camera-to-world poses
    K: np.ndarray            # (3, 3) of the base lens (every frame)
    image_hw: tuple
    camera_height: float
    seed: int
    seen: np.ndarray = None  # (N, n) bool: object i covers >= min_pixels of frame k (base lens)


# ----------------------------------------------------------------------------- the room and the path

def sample_objects(rng, cfg: ViewsConfig) -> list:
    """n objects of familiar size (scenes.CATEGORIES) on the floor, bounding circles apart."""
    n = int(rng.integers(cfg.n_objects[0], cfg.n_objects[1] + 1))
    placed, cats, J = [], list(scenes.CATEGORIES), scenes.CATEGORY_JITTER
    for color in [list(scenes.COLORS)[i] for i in rng.permutation(len(scenes.COLORS))[:n]]:
        for _ in range(scenes.TRIES):
            cat = cats[rng.integers(len(cats))]
            shape, base = scenes.CATEGORIES[cat]
            size = np.array(base) * rng.uniform(1 - J, 1 + J, 3)             # (w, h, l)
            size[2] = size[0] if shape != 'box' else size[2]                 # round: w = l
            size[1] = size[0] if shape == 'sphere' else size[1]
            yaw = float(rng.uniform(-math.pi / 2, math.pi / 2)) if shape == 'box' else 0.0
            ob = scenes.Object(f'{color} {cat}', shape, color,
                               np.array([rng.uniform(-cfg.object_x, cfg.object_x), -size[1] / 2,
                                         rng.uniform(*cfg.object_z)]), size, yaw)   # resting on y = 0
            r = scenes._footprint(ob)
            if all(math.hypot(*(ob.center - o.center)[[0, 2]]) >= r + scenes._footprint(o) + scenes.GAP
                   for o in placed):
                placed.append(ob)
                break
    return placed


def camera_path(rng, cfg: ViewsConfig, h: float) -> np.ndarray:
    """c2w (N, 4, 4) of the module docstring: walk (w_x, w_z), pan ∓ψ -> ±ψ, pitch per frame."""
    N = cfg.frames
    t = np.linspace(0.0, 1.0, N) if N > 1 else np.zeros(1)                 # (N,)
    wx, wz = rng.uniform(-cfg.walk, cfg.walk), rng.uniform(0.0, cfg.walk)
    side = 1.0 if rng.random() < 0.5 else -1.0
    psi0, psi1 = -side * cfg.pan * rng.uniform(0.6, 1.0), side * cfg.pan * rng.uniform(0.6, 1.0)
    pitch = rng.uniform(*cfg.pitch_range, N)
    c2w = np.tile(np.eye(4), (N, 1, 1))                                     # (N, 4, 4)
    for k in range(N):
        c2w[k, :3, :3] = scenes.rot_y(math.radians(psi0 + t[k] * (psi1 - psi0))) @ scenes.camera_pose(pitch[k], 0)[:3, :3]
        c2w[k, :3, 3] = (t[k] * wx, -h, t[k] * wz)
    return c2w


def sample_room(rng, objects, c2w) -> dict:
    """Walls beyond every object and camera, a ceiling above the camera, colours and a light."""
    xs = [(o.center[0], scenes._footprint(o)) for o in objects] + [(p, 0.5) for p in c2w[:, 0, 3]]
    light = np.array([rng.uniform(-0.6, 0.6), -1.0, -rng.uniform(0.2, 0.8)])
    return dict(walls=True, tile=0.5, front=FRONT,
                back=float(max(o.center[2] + scenes._footprint(o) for o in objects) + rng.uniform(0.3, 2.0)),
                left=float(max(r - x for x, r in xs) + rng.uniform(0.5, 2.0)),
                right=float(max(x + r for x, r in xs) + rng.uniform(0.5, 2.0)),
                height=float(max(-c2w[0, 1, 3] + 0.5, rng.uniform(2.6, 3.5))),
                floor_rgb=scenes.FLOORS[rng.integers(len(scenes.FLOORS))],
                wall_rgb=scenes.WALLS[rng.integers(len(scenes.WALLS))], light=(light / np.linalg.norm(light)).tolist())


def sample_views(seed: int, cfg: ViewsConfig = ViewsConfig()):
    """(Views, frames): a room, a camera path and the frames rendered through the base lens
    (render_views), a function of (seed, cfg) only. Rooms where fewer than 2 objects are seen are
    drawn again (from the same generator), and so are rooms where none of cfg.tasks can be asked
    (e.g. appearance_order alone needs two objects first seen in different frames)."""
    if not 1 <= cfg.frames <= 16 or cfg.pan + scenes.CAMERAS[cfg.camera] / 2 >= 85 or cfg.walk >= cfg.object_z[0]:
        raise ValueError(f'ViewsConfig needs 1 <= frames <= 16, pan + half the field of view < 85° (the front '
                         f'wall stays out of view) and walk < object_z[0]; got {cfg}')
    rng, path_rng = np.random.default_rng(seed), np.random.default_rng([seed, PATH_STREAM])
    K = scenes.camera_K(cfg.camera, cfg.image_hw)
    for _ in range(scenes.TRIES):
        h = float(path_rng.uniform(*cfg.height_range))
        c2w = camera_path(path_rng, cfg, h)
        objects = sample_objects(rng, cfg)
        views = Views(objects, sample_room(rng, objects, c2w), c2w, K, tuple(cfg.image_hw), h, seed)
        frames = render_views(views)
        views.seen = seen_matrix(frames['instance'], len(objects), cfg.min_pixels)
        if views.seen.any(0).sum() >= 2 and asked_tasks(views, cfg.tasks, cfg.task_weights):
            return views, frames
    raise ValueError(f'no room with two objects in view and one of the tasks askable in {scenes.TRIES} tries '
                     f'(seed {seed}): {cfg}')


def frame_scene(views: Views, k: int) -> scenes.Scene:
    """Frame k as a scenes.Scene: the room moved by −o_k, camera rotation R_k (module docstring)."""
    R, o = views.c2w[k, :3, :3], views.c2w[k, :3, 3]
    objects = [scenes.Object(ob.name, ob.shape, ob.color, R.T @ (ob.center - o), ob.size, ob.yaw,
                             R.T @ scenes.rot_y(ob.yaw)) for ob in views.objects]
    room = dict(views.room, left=views.room['left'] + o[0], right=views.room['right'] - o[0],
                back=views.room['back'] - o[2], tile_offset=(float(o[0]), float(o[2])))
    pose = np.eye(4)
    pose[:3, :3] = R
    return scenes.Scene(objects, views.K, views.image_hw, float(-o[1]), views.seed, room, pose)


def render_views(views: Views, K=None) -> dict:
    """Every frame through K ((3, 3) for all, (N, 3, 3) per frame; default the base lens): image
    (N, H, W, 3), depth (N, H, W), points (N, H, W, 3) in each frame's camera frame, instance (N, H, W)."""
    N = len(views.c2w)
    Ks = np.broadcast_to(views.K if K is None else np.asarray(K, np.float64), (N, 3, 3))
    outs = [raycast.render(frame_scene(views, k), K=Ks[k]) for k in range(N)]
    return {key: np.stack([out[key] for out in outs]) for key in outs[0]}


def world_points(points, c2w) -> np.ndarray:
    """Camera-frame point maps (N, H, W, 3) -> the world frame: X_world = R_k·X_cam + o_k."""
    c2w = np.asarray(c2w, np.float64)
    return np.einsum('nij,nhwj->nhwi', c2w[:, :3, :3], points) + c2w[:, None, None, :3, 3]


def seen_matrix(instance, n_objects: int, min_pixels: float, zoom=1.0) -> np.ndarray:
    """(N, n) bool: object i covers >= min_pixels pixels of frame k, pixels of a 64×64 frame through
    the base lens: an H×W frame zoomed by s (f' = s·f) needs min_pixels·(H·W/64²)·s² (one solid angle)."""
    counts = np.stack([(instance == i).sum((1, 2)) for i in range(n_objects)], 1)   # (N, n)
    area = instance.shape[1] * instance.shape[2] / 64 ** 2
    return counts >= min_pixels * area * np.asarray(zoom, np.float64).reshape(-1, 1) ** 2


# ----------------------------------------------------------------------------- questions

def seen_objects(views: Views) -> list:
    """[(object, first frame it is seen in)] for every object seen in some frame."""
    return [(o, int(np.argmax(views.seen[:, i]))) for i, o in enumerate(views.objects) if views.seen[:, i].any()]


def room_area(room) -> float:
    return (room['left'] + room['right']) * (room['back'] + room['front'])


def bearing(a, b) -> float:
    """Degrees in (−180, 180]: the floor-plan direction from a to b, 0 forward (+z), 90 right (+x).
    c is right of someone at a facing b iff turn(bearing(a, b), bearing(a, c)) > 0 (side_of)."""
    return math.degrees(math.atan2(b[0] - a[0], b[2] - a[2]))


def turn(from_deg: float, to_deg: float) -> float:
    """to − from in degrees, wrapped to [−180, 180): > 0 turns clockwise on the floor plan (to the right)."""
    return (to_deg - from_deg + 180) % 360 - 180


def side_of(a, b, c) -> float:
    """> 0: c is to the right of someone at a facing b (world frame, y down: right = down × forward)."""
    f, v = (np.asarray(b) - a)[[0, 2]], (np.asarray(c) - a)[[0, 2]]
    return float(v[0] * f[1] - v[1] * f[0])                                  # v · (f_z, −f_x)


def feasible(views: Views, task: str) -> bool:
    seen = seen_objects(views)
    need = dict(abs_distance=2, rel_distance=3, rel_direction=3, appearance_order=2).get(task, 1)
    if task == 'appearance_order':
        return len({k for _, k in seen}) >= 2
    return len(seen) >= need


def lettered(names) -> tuple[str, list[str]]:
    """VSI-Bench's multiple choice: ('A. red table B. blue ball', ['A', 'B']); the answer is a letter."""
    letters = [chr(ord('A') + i) for i in range(len(names))]
    return ' '.join(f'{x}. {n}' for x, n in zip(letters, names)), letters


def make_view_qa(views: Views, task: str, rng) -> dict:
    """One question of `task` about the seen objects and its exact answer: dict(question, answer,
    task, target, options, objects) (options: the answers offered, in the order asked: letters for
    the two multiple-choice tasks (VSI-Bench: a letter needs no copying of a name), left/right, [] for numbers;
    objects: the names the question refers to)."""
    if task not in TRAIN_TASKS or not feasible(views, task):
        raise ValueError(f'task {task!r} cannot be asked here (tasks {TRAIN_TASKS}, '
                         f'seen {len(seen_objects(views))})')
    phrase, seen = PHRASES[task][rng.integers(len(PHRASES[task]))], seen_objects(views)
    objs = [o for o, _ in seen]
    pick = lambda n: [objs[i] for i in rng.permutation(len(objs))[:n]]
    options, measured = [], ''
    if task == 'object_count':
        question, target, named = phrase, float(len(objs)), objs
    elif task == 'room_size':
        question, target, named = phrase, room_area(views.room), []
    elif task == 'frame_objects':
        question, target, named = phrase, frame_listing(views), objs
    elif task == 'object_size':
        named = pick(1)
        question, target = phrase.format(a=named[0].name), float(max(named[0].size))
    elif task == 'abs_distance':
        named = a, b = pick(2)
        question, target = phrase.format(a=a.name, b=b.name), float(np.linalg.norm(a.center - b.center))
    elif task == 'rel_distance':
        for _ in range(16):     # the nearest beats the next by REL_GAP, when some draw allows it
            a, *cands = pick(min(4, len(objs)))
            dist = sorted(np.linalg.norm(c.center - a.center) for c in cands)
            if dist[1] - dist[0] >= REL_GAP:
                break
        listed, options = lettered([c.name for c in cands])
        named, dist = [a, *cands], [float(np.linalg.norm(c.center - a.center)) for c in cands]
        target, question = options[int(np.argmin(dist))], phrase.format(a=a.name, options=listed)
        measured = ', '.join(f'{x} {synthetic.fmt(d)}' for x, d in zip(options, dist))           # 'A 3.61, B 1.20'
    elif task == 'rel_direction':
        for _ in range(16):     # c well off the line a -> b, when some draw allows it
            a, b, c = pick(3)
            f, v = (b.center - a.center)[[0, 2]], (c.center - a.center)[[0, 2]]
            if abs(side_of(a.center, b.center, c.center)) >= math.sin(SIDE_MIN) * np.linalg.norm(f) * np.linalg.norm(v):
                break
        question, options, named = phrase.format(a=a.name, b=b.name, c=c.name), ['left', 'right'], [a, b, c]
        target = 'right' if side_of(a.center, b.center, c.center) > 0 else 'left'
        measured = ', '.join(f'{o.name} {bearing(a.center, o.center):.0f}' for o in (b, c))  # 'red bin 12, blue ball 75'
    else:                       # appearance_order: two objects first seen in different frames
        first = dict((o.name, k) for o, k in seen)
        pairs = [(p, q) for p in objs for q in objs if first[p.name] < first[q.name]]
        p, q = pairs[rng.integers(len(pairs))]
        pair = [p, q] if rng.random() < 0.5 else [q, p]
        listed, options = lettered([o.name for o in pair])
        question, target, named = phrase.format(options=listed), options[pair.index(p)], pair
        measured = ', '.join(f'{x} {first[o.name] + 1}' for x, o in zip(options, pair))      # 'A 2, B 1'
    answer = (str(len(objs)) if task == 'object_count' else synthetic.fmt(target) if task in NUMBER_TASKS
              else target)                                                 # '4', '3.27', a name or left/right
    return dict(question=question, answer=answer, task=task, target=target, options=options,
                objects=[o.name for o in named], measured=measured)


def camera_centres(views: Views) -> np.ndarray:
    """(N, n, 3): every object's centre in every frame's camera, X = R_kᵀ(c − o_k)."""
    c = np.stack([o.center for o in views.objects])                            # (n, 3) world
    return np.einsum('kji,knj->kni', views.c2w[:, :3, :3], c[None] - views.c2w[:, None, :3, 3])


def frame_listing(views: Views) -> str:
    """'1: blue stool, red bin; 2: red bin; 3: none': every frame's seen objects by the image column
    u of their centre (K·X), left to right."""
    uvw = camera_centres(views) @ views.K.T                                    # (N, n, 3)
    out = []
    for k, (u, seen) in enumerate(zip(uvw[..., 0] / uvw[..., 2], views.seen)):
        names = [views.objects[i].name for i in np.argsort(u, kind='stable') if seen[i]]
        out.append(f"{k + 1}: {', '.join(names) or 'none'}")
    return '; '.join(out)


def asked_tasks(views: Views, tasks, task_weights=None) -> list[int]:
    """Indices of the tasks (weight > 0) that can be asked about this room."""
    return [i for i, t in enumerate(tasks) if (task_weights is None or task_weights[i] > 0) and feasible(views, t)]


def sample_view_qa(views: Views, seed: int, tasks=VIEW_TASKS, task_weights=None, reasons=False) -> dict:
    """The task (by weight, among the feasible) from rng([seed, synthetic.TASK_STREAM]), its question
    from rng([seed, QA_STREAM + task index]): the same question through every camera."""
    ok = asked_tasks(views, tasks, task_weights)
    if not ok:
        raise ValueError(f'none of the tasks {tasks} can be asked about the room of seed {seed} '
                         f'({len(seen_objects(views))} objects seen)')
    w = np.array([1.0 if task_weights is None else task_weights[i] for i in ok])
    task = tasks[ok[np.random.default_rng([seed, synthetic.TASK_STREAM]).choice(len(ok), p=w / w.sum())]]
    return ask(views, task, seed, reasons)


def ask(views: Views, task: str, seed: int, reasons=False) -> dict:
    """The question of `task` about this room: make_view_qa with rng([seed, QA_STREAM + task index]),
    so a task is asked the same whether it comes first, as a follow-up, or in evaluation.
    reasons: a choice's answer shows its two measurements first, 'A 3.61, B 1.20: B' (with_reasons)."""
    qa = make_view_qa(views, task, np.random.default_rng([seed, QA_STREAM + TRAIN_TASKS.index(task)]))
    return dict(qa, answer=with_reasons(qa)) if reasons else qa


def with_reasons(qa: dict) -> str:
    """The answer with its measurements first, for the three choices: rel_distance 'A 3.61, B 1.20: B'
    (each option's distance to the object named, metres), appearance_order 'A 2, B 1: B' (each option's
    first frame), rel_direction 'red bin 12, blue ball 75: right' (the bearings, in degrees, of the object
    faced and of the one asked about, from where one stands: bearing). The choice is then a comparison of
    two numbers the model has just written, each one measurement like abs_distance's; the answer alone
    asks for the measuring and the comparing at once (metrics.parse_answer reads what follows the last ':').
    Other tasks: the answer as it is."""
    return f"{qa['measured']}: {qa['answer']}" if qa['measured'] else qa['answer']


def read_reasons(text: str) -> list[float] | None:
    """'A 3.61, B 1.20: B' -> [3.61, 1.2]: the numbers before the last ':' (None unless each part ends in one)."""
    head = text.rsplit(':', 1)[0] if isinstance(text, str) and ':' in text else ''
    try:
        return [float(part.split()[-1]) for part in head.split(',')]
    except (ValueError, IndexError):
        return None


def decide(task: str, x, options) -> str:
    """The option that measurements x (with_reasons' order) choose: the smaller distance or first frame;
    right when the bearing turns clockwise from the object faced to the one asked about (bearing)."""
    if task == 'rel_direction':
        return 'right' if turn(x[0], x[1]) > 0 else 'left'
    return options[int(np.argmin(x))]


def follow_ups(views: Views, seed: int, first: str, n: int, tasks=VIEW_TASKS, task_weights=None, reasons=False) -> list:
    """Up to n − 1 more questions about the room, [(question, answer), ...]: the other askable tasks
    in a random order (rng([seed, synthetic.TASK_STREAM, 1])), each its own question as sample_view_qa would
    ask it. A sequence of several answers per vision pass (LLaVA's multi-turn conversations) gives every
    task about n times the answers per step for a longer text; every task still comes first as often."""
    others = [tasks[i] for i in asked_tasks(views, tasks, task_weights) if tasks[i] != first]
    order = np.random.default_rng([seed, synthetic.TASK_STREAM, 1]).permutation(len(others))[:max(n - 1, 0)]
    return [(qa['question'], qa['answer']) for qa in (ask(views, others[i], seed, reasons) for i in order)]


def tokenizer_corpus() -> list[str]:
    """The phrases with the world's names, for the tiny BPE tokenizer of a multi-frame run."""
    names = [f'{c} {k}' for c in scenes.COLORS for k in scenes.CATEGORIES]
    trip = list(zip(names, names[1:] + names[:1], names[2:] + names[:2]))
    return names + ['left', 'right'] + [p.format(a=a, b=b, c=c, options=lettered([b, c])[0]) for ps in PHRASES.values()
                                        for p in ps for a, b, c in trip]


# ----------------------------------------------------------------------------- the teacher's object channels

def object_depths(views: Views, instance) -> np.ndarray:
    """(N, H, W): z of the centre of the object each pixel of frame k sees, in frame k's camera
    (camera_centres), 0 where it sees none: the teacher's object channels, per frame (synthetic.object_depth_map)."""
    return at_pixels(camera_centres(views)[..., 2:], instance)[..., 0]


def at_pixels(values, instance) -> np.ndarray:
    """values (N, n, C) of every object in every frame -> (N, H, W, C) float32 at each pixel's object
    (instance id), 0 where a pixel sees none (id −1)."""
    N, n, C = values.shape
    v = np.concatenate([values, np.zeros((N, 1, C))], 1)                                # (N, n + 1, C)
    ids = np.where(instance >= 0, instance, n).reshape(N, -1)                           # (N, H·W)
    return np.take_along_axis(v, ids[..., None], 1).reshape(*instance.shape, C).astype(np.float32)
