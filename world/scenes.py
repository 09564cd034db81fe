"""
The synthetic world: random rooms of metric objects, placed so that they stay in view of a lens.

Why. Metric 3D answers under many cameras need a world whose geometry is exact and free: a floor
with a checker of `tile` metres (a scale cue, as real floors give), walls, a ceiling, and 1-4
objects (boxes with a yaw, spheres, vertical cylinders) resting on the floor. As in real rooms,
the camera is hand-held at chest height (1.3-1.5 m) and objects belong to categories of
characteristic size (a table about 1.2 × 0.75 × 0.7 m, ±12 %), named by colour and category
("red table", unique in its scene): the familiar-size cue makes metric answers well posed at the
training camera, and is exactly what a camera-blind model overfits to (apparent size f·H/Z).

Frames and pose. Camera frame OpenCV (x right, y down, z forward). The world frame is
gravity-aligned, with its origin at the camera: y down along gravity, z the camera's heading in
the horizontal plane, x = y × z (right); the floor is the plane y = +h (h: camera height). The
camera is pitched by θ (its optical axis θ below the horizon) and then rolled by φ about that axis
(the horizon then rises to the right in the image), drawn from SceneConfig.pitch_range/roll_range:
    X_world = R·X_cam,   c2w = [[R, 0], [0, 1]],   R = R_pitch(θ)·R_roll(φ)
    R_pitch = [[1, 0, 0], [0, cos θ, sin θ], [0, −sin θ, cos θ]]      (optical axis R e_z = (0, sin θ, cos θ))
    R_roll = [[cos φ, −sin φ, 0], [sin φ, cos φ, 0], [0, 0, 1]]
The default camera is level (θ = φ = 0): c2w = I and the two frames are one. The origin stays at
the camera (no translation), so a single view's Plücker moment o × d is zero and the model is
given gravity, not the camera height (which would hand it the metric scale).
Annotations. Object.center is in the CAMERA frame, so 'depth' (its z) means what it means for
a level camera; Object.yaw turns the object about gravity, and Object.R_cam = Rᵀ·R_y(yaw) is its
rotation in the camera frame (X_cam = R_cam·X_local + center; for exporters). Worked number:
pitched θ = 10° down, a centre 1.00 m below the camera and 5.00 m ahead, world (0, 1.00, 5.00),
is at camera (0, 1.00·cos θ − 5.00·sin θ, 1.00·sin θ + 5.00·cos θ) = (0, 0.12, 5.10): depth 5.10.

Placement. An object is visible for every zoom f' = s·f, s in [s_min, s_max], iff its 8 box
corners project inside the image at s_max (zooming about the principal point pushes points out).
Its bottom at depth z is on screen iff cy + s·fy·h/z ≤ H, i.e. z ≥ s·fy·h/(H−cy). So candidates
draw a depth in the interval that keeps the bounding circle (radius r in x-z) in view and every
side S >= MIN_OBJECT_PX pixels at s_min (z + r ≤ s_min·f·S/MIN_OBJECT_PX), then x in the visible
cone; we reject overlaps on the floor and objects whose 2D box lies mostly (> MAX_HIDDEN) in a
nearer one's. Without visible_zoom, s_min = s_max = 1 (the base camera).
A tilted camera places objects exactly (_tilted_positions): each of those conditions is linear in
the camera frame, n·X >= c (inside an image edge: (fx, 0, cx − m)·X >= 0, ...; z <= z_far), so
over the 8 world corners p + δ_j it is the half-plane (R n)·p >= c + max_j −(R n)·δ_j in the floor
position (x, z); depth and x are drawn as above, in the convex polygon of those half-planes.
raycast.py renders a scene exactly through any K; pinhole.py holds the camera's rules (K, rays, zoom).
"""
import math
from dataclasses import dataclass, field

import numpy as np

from world.pinhole import check_hw, zoom_K

CAMERAS = {'standard': 60.0, 'wide': 90.0, 'tele': 35.0, 'normal': 45.0}  # horizontal FOV, degrees
# all profiles are within a zoom of augment.ZOOM_RANGE = [0.5, 2] of 'standard', eval's visible_zoom range
COLORS = {'red': (200, 40, 40), 'green': (40, 160, 60), 'blue': (45, 85, 215),
          'yellow': (235, 205, 40), 'purple': (135, 65, 185), 'orange': (240, 135, 30),
          'cyan': (40, 195, 210), 'pink': (245, 125, 190)}
SHAPES = ('box', 'sphere', 'cylinder')
BOX, SPHERE, CYLINDER = range(len(SHAPES))   # indices into SHAPES
# Object categories with characteristic sizes (w, h, l) in metres, as real rooms have them: the
# familiar-size cue (a table is about 0.75 m tall) that pins the scale of a scene at the training
# camera, and that a camera-blind model turns into a focal-length shortcut (apparent size f·H/Z).
# Each instance varies every side by up to ±CATEGORY_JITTER. Round shapes keep w = l (= h: sphere).
CATEGORIES = {'crate': ('box', (0.45, 0.40, 0.45)), 'table': ('box', (1.20, 0.75, 0.70)),
              'cabinet': ('box', (0.80, 1.20, 0.45)), 'sofa': ('box', (1.80, 0.85, 0.90)),
              'ball': ('sphere', (0.35, 0.35, 0.35)), 'boulder': ('sphere', (0.80, 0.80, 0.80)),
              'stool': ('cylinder', (0.40, 0.45, 0.40)), 'bin': ('cylinder', (0.35, 0.65, 0.35)),
              'barrel': ('cylinder', (0.60, 0.90, 0.60))}
CATEGORY_JITTER = 0.12
FLOORS = (((175, 165, 145), (115, 105, 90)), ((155, 155, 155), (95, 95, 100)),
          ((190, 165, 125), (130, 95, 65)))               # (light, dark) tiles: greys and browns
WALLS = ((215, 210, 200), (200, 205, 215), (222, 208, 188))
MIN_OBJECT_PX = 2.0      # every side of an object spans at least this many pixels at the smallest zoom
MARGIN_PX = 1.0          # visible objects keep this many pixels from the border of the zoomed image
GAP = 0.05               # metres between the bounding circles of two objects on the floor
MAX_HIDDEN = 0.5         # at most this fraction of an object's 2D box behind a nearer object's
TRIES = 64               # scenes tried (each with a fresh camera height); candidates per object
POSE_STREAM = 1          # the pose is drawn from rng([seed, POSE_STREAM]): a level config draws nothing


@dataclass
class SceneConfig:
    image_hw: tuple = (128, 128)
    camera: str = 'standard'           # a key of CAMERAS
    n_objects: tuple = (1, 4)          # inclusive range
    depth_range: tuple = (1.5, 10.0)   # z of object centres, metres
    height_range: tuple = (1.3, 1.5)   # camera height above the floor, metres: a hand-held camera
                                       # at chest height. A level camera sees the floor from z =
                                       # fy·h/(H/2), so with visible_zoom=(0.5, 2) objects stand at
                                       # z >~ 3.5 h: 4.5-10 m here, 2-10 m at h = 0.6
    walls: bool = True                 # back + side walls and a ceiling; else floor to the horizon
    tile: float = 0.5                  # floor checker tile, metres
    sizes: str = 'category'            # 'category': CATEGORIES (familiar sizes, names "red table");
                                       # 'uniform': every side uniform in size_range ("red box")
    size_range: tuple = (0.2, 1.5)     # each side of an object, metres, for sizes='uniform'
    visible_zoom: tuple | None = None  # (a, b): every object fully in view for f' = s·f, s in [a, b];
                                       # None: fully in view through the base camera (s = 1)
    pitch_range: tuple = (0.0, 0.0)    # camera pitch θ, degrees, uniform (> 0 looks down); |θ| < 90
    roll_range: tuple = (0.0, 0.0)     # roll φ about the optical axis, degrees (> 0: horizon rises to
                                       # the right); both (0, 0): the level camera, c2w = I


@dataclass
class Object:
    name: str                # "red table" (colour + category) or "red box", unique in its scene
    shape: str               # 'box' | 'sphere' | 'cylinder'
    color: str               # a key of COLORS
    center: np.ndarray       # (3,) centre of the 3D bounding box, camera frame, metres
    size: np.ndarray         # (3,) (w, h, l) along the object's local x, y, z
    yaw: float               # radians about gravity (world y; the camera y when level), in [−π/2, π/2)
                             # for boxes; 0 for spheres and cylinders (symmetric about y: unseen)
    R_cam: np.ndarray = None  # (3, 3) rotation in the camera frame, Rᵀ·R_y(yaw): X_cam = R_cam·X_local
                              # + center. None (a level camera) means R_y(yaw)

    def __post_init__(self):
        self.R_cam = rot_y(self.yaw) if self.R_cam is None else self.R_cam


@dataclass
class Scene:
    objects: list
    K: np.ndarray            # (3, 3) of the base camera, pixels
    image_hw: tuple
    camera_height: float     # metres above the floor (the floor is y = +camera_height, world frame)
    seed: int = 0
    room: dict = field(default_factory=dict)   # walls/back/left/right/height/tile/colours/light
                                               # (+ tile_offset: the camera's floor x, z in views.py's world)
    c2w: np.ndarray = field(default_factory=lambda: np.eye(4))   # (4, 4) camera-to-world, no translation


# ----------------------------------------------------------------------------- cameras

def camera_K(camera: str, image_hw) -> np.ndarray:
    """Intrinsics of a named profile: square pixels, fx = (W/2)/tan(fov/2), c = (W/2, H/2)."""
    if camera not in CAMERAS:
        raise ValueError(f"unknown camera {camera!r}; profiles: {sorted(CAMERAS)}")
    H, W = check_hw(image_hw)
    f = (W / 2) / math.tan(math.radians(CAMERAS[camera]) / 2)
    return np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]], dtype=np.float64)


def camera_pose(pitch: float, roll: float) -> np.ndarray:
    """c2w (4, 4) of a camera at the world origin pitched by `pitch` and rolled by `roll` degrees
    (module docstring): R = R_pitch·R_roll, so the optical axis R e_z = (0, sin θ, cos θ)."""
    (cp, sp), (cr, sr) = [(math.cos(math.radians(x)), math.sin(math.radians(x))) for x in (pitch, roll)]
    c2w = np.eye(4)
    c2w[:3, :3] = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]]) @ np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return c2w


# ----------------------------------------------------------------------------- geometry

def rot_y(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


_SIGNS = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], dtype=float) / 2


def box_corners(center, size, rotation) -> np.ndarray:
    """The 8 corners (8, 3) of the bounding box: X = R · X_local + centre, R = R_y(rotation) for a
    yaw (a level camera), or rotation itself if it is (3, 3) (Object.R_cam)."""
    R = rot_y(rotation) if np.ndim(rotation) == 0 else np.asarray(rotation)
    return (_SIGNS * size) @ R.T + center


def to_world(center, R):
    """A camera-frame point in the world frame (R: c2w rotation; None: a level camera, the same)."""
    return center if R is None else R @ center


def project(K, X) -> np.ndarray:
    """Camera points (N, 3) -> continuous pixel coordinates (N, 2)."""
    X = np.asarray(X, dtype=np.float64)
    return X[:, :2] / X[:, 2:] * (K[0, 0], K[1, 1]) + (K[0, 2], K[1, 2])


# ----------------------------------------------------------------------------- sampling

def sample_scene(seed: int, cfg: SceneConfig = SceneConfig()) -> Scene:
    """A random room, a function of (seed, cfg) only. Raises ValueError if cfg cannot be met."""
    K = camera_K(cfg.camera, cfg.image_hw)
    s_max = 1.0 if cfg.visible_zoom is None else cfg.visible_zoom[1]
    if cfg.visible_zoom is not None and not 0 < cfg.visible_zoom[0] <= s_max:
        raise ValueError(f"visible_zoom must be (a, b) with 0 < a <= b, got {cfg.visible_zoom}")
    n_lo, n_hi = cfg.n_objects
    if not 1 <= n_lo <= n_hi <= len(COLORS):
        raise ValueError(f"n_objects must be (lo, hi) with 1 <= lo <= hi <= {len(COLORS)}, got {cfg.n_objects}")
    for name, (lo, hi), limit in (('pitch_range', cfg.pitch_range, 90), ('roll_range', cfg.roll_range, 180)):
        if not -limit < lo <= hi < limit:
            raise ValueError(f"{name} must be (lo, hi) degrees with -{limit} < lo <= hi < {limit}, got {(lo, hi)}")
    tilted = tuple(cfg.pitch_range) + tuple(cfg.roll_range) != (0, 0, 0, 0)
    Kv = zoom_K(K, s_max)                                   # the camera that must see everything
    f_min = min(K[0, 0], K[1, 1]) * (1.0 if cfg.visible_zoom is None else cfg.visible_zoom[0])
    # heights where a level camera can place something; a tilted one is checked exactly, per object
    h_lo, h_hi = cfg.height_range[0], min(cfg.height_range[1], _max_height(cfg, Kv, f_min))
    setting = (f"fully visible for zoom in {cfg.visible_zoom or (1, 1)} (>= {MIN_OBJECT_PX} px), camera "
               f"{cfg.camera!r}, image {cfg.image_hw}, depth_range {cfg.depth_range}, height_range "
               f"{cfg.height_range}, sizes {cfg.sizes!r}" + (f", pitch_range {cfg.pitch_range}, roll_range "
                                                            f"{cfg.roll_range}" if tilted else ''))
    if h_hi < h_lo:
        raise ValueError(f"no object can be placed {setting}: from every camera height its floor contact is "
                         f"out of view; lower the camera or widen depth_range")
    rng, pose = np.random.default_rng(seed), np.random.default_rng([seed, POSE_STREAM]) if tilted else None
    n = int(rng.integers(n_lo, n_hi + 1))
    for k in range(TRIES):
        h = float(rng.uniform(h_lo, h_hi - (h_hi - h_lo) * k / TRIES))   # lower cameras after failures
        c2w = camera_pose(pose.uniform(*cfg.pitch_range), pose.uniform(*cfg.roll_range)) if tilted else np.eye(4)
        R = c2w[:3, :3] if tilted else None                 # a fresh pose per try too
        colors = [list(COLORS)[i] for i in rng.permutation(len(COLORS))[:n]]
        objects = []
        for color in colors:
            got = _place(rng, cfg, Kv, f_min, h, objects, R)
            if got is None:
                break
            objects.append(Object(f"{color} {got[0]}", *got[1:2], color, *got[2:]))   # shape, centre, size, yaw, R_cam
        if len(objects) == n:
            return Scene(objects, K, tuple(cfg.image_hw), h, seed, _room(rng, cfg, h, objects, R), c2w)
    raise ValueError(f"could not place {n} objects {setting} in {TRIES} tries (seed {seed}): widen depth_range, "
                     f"lower the camera, shrink visible_zoom, use larger images or fewer objects")


def _room(rng, cfg, h, objects, R=None) -> dict:
    """Walls beyond every object (so they never hide one), a ceiling above the camera, a light;
    all in the world frame (R: c2w rotation; None: level)."""
    ext = [(*to_world(o.center, R)[[0, 2]], _footprint(o)) for o in objects]
    light = np.array([rng.uniform(-0.6, 0.6), -1.0, -rng.uniform(0.2, 0.8)])
    return dict(walls=bool(cfg.walls), tile=float(cfg.tile),
                back=float(max(z + r for x, z, r in ext) + rng.uniform(0.3, 3.0)),
                left=float(max(1.5, max(r - x for x, z, r in ext) + rng.uniform(0.5, 4.0))),
                right=float(max(1.5, max(x + r for x, z, r in ext) + rng.uniform(0.5, 4.0))),
                height=float(max(h + 0.5, rng.uniform(2.6, 3.5))),
                floor_rgb=FLOORS[rng.integers(len(FLOORS))], wall_rgb=WALLS[rng.integers(len(WALLS))],
                light=(light / np.linalg.norm(light)).tolist())


def _place(rng, cfg, K, f_min, h, placed, R=None):
    """The first candidate clear of the placed objects on the floor and (mostly) in the image:
    (category, shape, centre, size, yaw, R_cam) in the camera frame, or None. R: c2w rotation (None: level)."""
    others = [(_box2d(K, box_corners(o.center, o.size, o.R_cam)), o.center[2]) for o in placed]
    world = [to_world(o.center, R) for o in placed]
    xz = np.array([[c[0], c[2], _footprint(o)] for c, o in zip(world, placed)]).reshape(-1, 3)   # (placed, 3)
    for _ in range(TRIES // 8):
        kind, shape, center, size, yaw, r = _candidates(rng, cfg, K, f_min, h, R)
        dist = np.hypot(center[:, None, 0] - xz[:, 0], center[:, None, 2] - xz[:, 1])   # (n, placed)
        for i in np.nonzero((dist >= r[:, None] + xz[:, 2] + GAP).all(1))[0]:
            c, R_cam = (center[i], rot_y(yaw[i])) if R is None else (R.T @ center[i], R.T @ rot_y(yaw[i]))
            box = _box2d(K, box_corners(c, size[i], R_cam))    # (u0, v0, u1, v1), in view
            if all(_hidden(box, c[2], b, zb) <= MAX_HIDDEN for b, zb in others):
                category = SHAPES[kind[i]] if cfg.sizes == 'uniform' else list(CATEGORIES)[kind[i]]
                return category, SHAPES[shape[i]], c, size[i], float(yaw[i]), R_cam
    return None


def _candidates(rng, cfg, K, f_min, h, R=None, n=8):
    """n random objects in one vectorised draw: category (or shape), size, yaw, then depth in the
    visible interval, then x in the cone (R: the c2w rotation of a tilted camera; None: level).
    Returns those whose interval is not empty, as arrays; centres in the world frame."""
    W, fx, cx = cfg.image_hw[1], K[0, 0], K[0, 2]
    if cfg.sizes == 'uniform':
        kind = rng.integers(len(SHAPES), size=n)            # index into SHAPES
        shape = kind
        size = rng.uniform(*cfg.size_range, (n, 3))         # (n, 3) as (w, h, l)
    elif cfg.sizes == 'category':
        kind = rng.integers(len(CATEGORIES), size=n)        # index into CATEGORIES
        cats = list(CATEGORIES.values())
        shape = np.array([SHAPES.index(cats[k][0]) for k in kind])   # BOX, SPHERE or CYLINDER
        size = np.array([cats[k][1] for k in kind]) * rng.uniform(1 - CATEGORY_JITTER, 1 + CATEGORY_JITTER, (n, 3))
    else:
        raise ValueError(f"SceneConfig.sizes must be 'category' or 'uniform', got {cfg.sizes!r}")
    box, sphere = shape == BOX, shape == SPHERE
    size[~box, 2] = size[~box, 0]                           # round in x-z: diameter d = w = l
    size[sphere, 1] = size[sphere, 0]                       # sphere: h = d too
    yaw = np.where(box, rng.uniform(-math.pi / 2, math.pi / 2, n), 0.0)
    r = np.where(box, 0.5 * np.hypot(size[:, 0], size[:, 2]), size[:, 0] / 2)   # footprint
    if R is not None:
        x, z, ok = _tilted_positions(rng, cfg, K, f_min, h, R, size, yaw)
        return kind[ok], shape[ok], np.stack([x, h - size[:, 1] / 2, z], 1)[ok], size[ok], yaw[ok], r[ok]
    z_lo, z_hi = _depth_interval(cfg, K, f_min, h, size, r)                            # (n,), (n,)
    z = z_lo + rng.random(n) * (z_hi - z_lo)
    x_lo = -(cx - MARGIN_PX) / fx * (z - r) + r             # bounding circle inside the cone
    x_hi = (W - MARGIN_PX - cx) / fx * (z - r) - r
    x = x_lo + rng.random(n) * (x_hi - x_lo)
    ok = z_lo <= z_hi
    return kind[ok], shape[ok], np.stack([x, h - size[:, 1] / 2, z], 1)[ok], size[ok], yaw[ok], r[ok]


def _tilted_positions(rng, cfg, K, f_min, h, R, size, yaw):
    """Floor positions x, z (n,) of objects (size (n, 3), yaw (n,)) for a camera of rotation R and
    intrinsics K: in view with MARGIN_PX, sides >= MIN_OBJECT_PX through f_min, centre depth (camera
    z) in depth_range. Each condition is n·X >= c in the camera frame, so over the world corners
    X = Rᵀ(p + δ_j) it is a half-plane A·x + B·z >= C of the floor position p = (x, y, z):
    (A, ·, B) = R n, C = c − (R n)_y·y + max_j −(R n)·δ_j. The z range of their convex intersection
    is spanned by its vertices (the feasible crossings of two lines); z is drawn in it, then x in the
    slice at z, as for a level camera. Returns x, z and ok (the intersection is not empty)."""
    (H, W), (fx, fy, cx, cy), m, n = cfg.image_hw, (K[0, 0], K[1, 1], K[0, 2], K[1, 2]), MARGIN_PX, len(size)
    normals = np.array([[fx, 0, cx - m], [-fx, 0, W - m - cx], [0, fy, cy - m], [0, -fy, H - m - cy],
                        [0, 0, -1], [0, 0, 1], [0, 0, -1]]) @ R.T    # (7, 3) rows (R n)ᵀ: 4 image edges,
    c = np.zeros((n, 7))                                             # corners' z <= z_far, centre z in range
    c[:, 4], c[:, 5], c[:, 6] = -f_min * size.min(1) / MIN_OBJECT_PX, cfg.depth_range[0], -cfg.depth_range[1]
    local, cos, sin = _SIGNS * size[:, None], np.cos(yaw)[:, None], np.sin(yaw)[:, None]   # (n, 8, 3), (n, 1)
    delta = np.stack([cos * local[..., 0] + sin * local[..., 2], local[..., 1],
                      cos * local[..., 2] - sin * local[..., 0]], -1)   # (n, 8, 3) R_y(yaw)·local
    worst = (-delta @ normals.T).max(1)                              # (n, 7) the corner nearest the edge
    worst[:, 5:] = 0                                                 # depth_range holds for the centre
    A, B = normals[:, 0], normals[:, 2]                              # (7,)
    C = c - normals[:, 1] * (h - size[:, 1:2] / 2) + worst           # (n, 7)
    i, j = np.triu_indices(7, 1)                                     # the 21 pairs of lines
    det = A[i] * B[j] - A[j] * B[i]                                  # (21,)
    with np.errstate(divide='ignore', invalid='ignore'):
        vx = (C[:, i] * B[j] - C[:, j] * B[i]) / det                 # (n, 21) vertices by Cramer's rule
        vz = (A[i] * C[:, j] - A[j] * C[:, i]) / det
        vertex = (np.abs(det) > 1e-12) & (vx[..., None] * A + vz[..., None] * B >= C[:, None] - 1e-6).all(-1)
        z_lo, z_hi = np.where(vertex, vz, np.inf).min(1), np.where(vertex, vz, -np.inf).max(1)   # (n,)
        z = z_lo + rng.random(n) * (z_hi - z_lo)                     # nan where empty (dropped)
        bound = (C - B * z[:, None]) / A                             # (n, 7): x >= bound where A > 0
        x_lo = np.where(A > 1e-9, bound, -np.inf).max(1)
        x_hi = np.where(A < -1e-9, bound, np.inf).min(1)
        x = x_lo + rng.random(n) * (x_hi - x_lo)
    return x, z, vertex.any(1)


def _depth_interval(cfg, K, f_min, h, size, r):
    """Centre depths [z_lo, z_hi] that keep an object (size (..., 3), footprint radius r) in view
    through K from height h, and every side >= MIN_OBJECT_PX through focal f_min. Broadcasts."""
    (H, W), (fx, fy, cx, cy) = cfg.image_hw, (K[0, 0], K[1, 1], K[0, 2], K[1, 2])
    z_lo = np.maximum(np.maximum(r + fy * h / (H - MARGIN_PX - cy),                        # bottom edge
                                 r + fy * np.maximum(size[..., 1] - h, 0) / (cy - MARGIN_PX)),  # top edge
                      np.maximum(r * (1 + 2 * fx / (W - 2 * MARGIN_PX)), cfg.depth_range[0]))  # fits across
    return z_lo, np.minimum(cfg.depth_range[1], f_min * size.min(-1) / MIN_OBJECT_PX - r)


def _max_height(cfg, K, f_min, _cache={}) -> float:
    """The highest camera (on a grid of height_range) from which some object can be placed: the
    most compact ones, spheres of every diameter, tried at every height. Cached per config."""
    if repr(cfg) not in _cache:
        hs, S = np.linspace(*cfg.height_range, 65)[:, None], np.linspace(*_size_bounds(cfg), 64)   # (65, 1), (64,)
        z_lo, z_hi = _depth_interval(cfg, K, f_min, hs, np.stack([S, S, S], -1), S / 2)          # (65, 64)
        ok = (z_lo <= z_hi).any(1)
        _cache.clear() if len(_cache) > 64 else None
        _cache[repr(cfg)] = float(hs[ok].max()) if ok.any() else -math.inf
    return _cache[repr(cfg)]


def _size_bounds(cfg) -> tuple:
    """(smallest, largest) side an object of cfg can have, metres."""
    if cfg.sizes == 'uniform':
        return tuple(cfg.size_range)
    sides = np.array([size for _, size in CATEGORIES.values()])
    return float(sides.min() * (1 - CATEGORY_JITTER)), float(sides.max() * (1 + CATEGORY_JITTER))


def _footprint(o) -> float:
    """Radius of the object's bounding circle in the x-z plane."""
    return 0.5 * math.hypot(o.size[0], o.size[2]) if o.shape == 'box' else o.size[0] / 2


def _box2d(K, corners) -> tuple:
    uv = project(K, corners)                                # (8, 2)
    return (*uv.min(0).tolist(), *uv.max(0).tolist())      # (u0, v0, u1, v1)


def _hidden(b1, z1, b2, z2) -> float:
    """Fraction of the farther object's projected 2D box inside the nearer one's (a cheap proxy
    of occlusion; the same for every zoom about the principal point, as areas scale alike)."""
    far = b1 if z1 > z2 else b2
    iw, ih = min(b1[2], b2[2]) - max(b1[0], b2[0]), min(b1[3], b2[3]) - max(b1[1], b2[1])
    return max(iw, 0) * max(ih, 0) / ((far[2] - far[0]) * (far[3] - far[1]))
