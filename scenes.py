"""
The synthetic world: random rooms of metric objects, ray-cast exactly through a known pinhole.

Why. Metric 3D answers under many cameras need a world whose geometry is exact and free: a floor
with a checker of `tile` metres (a scale cue, as real floors give), walls, a ceiling, and 1-4
objects (boxes with a yaw, spheres, vertical cylinders) resting on the floor, each with a unique
name ("red box") and its own random metric size: a class constant size would give depth away.

The math. Camera frame OpenCV (x right, y down, z forward), level camera at height h, so the
floor is the plane y = +h. The ray of pixel (u, v) is
    d(u, v) = K⁻¹ [u+½, v+½, 1] = (a_u, b_v, 1),   a_u = (u+½−cx)/fx,  b_v = (v+½−cy)/fy
and it is separable: a depends on the column only, b on the row only. With d_z = 1 the ray
parameter t of a hit *is* its z-depth, and the point is t·d. So, per surface:
    floor y = h:        t = h / b_v           (one value per row; fy·h/(v+½−cy) in pixels)
    wall x = ±X:        t = ±X / a_u          (one value per column);  back wall z = Z: t = Z
    box (slabs):        in the box frame o' = Rᵀ(0 − c), d' = Rᵀd, t = max_k min(t1k, t2k)
    sphere:             t² |d|² − 2t d·c + |c|² − r² = 0, nearest root
    cylinder (y axis):  side (t·a − cx)² + (t − cz)² = r² with y = t·b in range; caps y = const
The room is convex and holds the camera, so its first surface is the nearest plane ahead;
objects are z-buffered over it, each only over the pixels of its projected bounding box.
Shading: colour · (ambient + diffuse · max(0, n·L)), one directional light from above.

Placement. An object is visible for every zoom f' = s·f, s in [s_min, s_max], iff its 8 box
corners project inside the image at s_max (zooming about the principal point pushes points out).
Its bottom at depth z is on screen iff cy + s·fy·h/z ≤ H, i.e. z ≥ s·fy·h/(H−cy). So candidates
draw a depth in the interval that keeps the bounding circle (radius r in x-z) in view and every
side S >= MIN_OBJECT_PX pixels at s_min (z + r ≤ s_min·f·S/MIN_OBJECT_PX), then x in the visible
cone; we reject overlaps on the floor and objects whose 2D box lies mostly (> MAX_HIDDEN) in a
nearer one's. Without visible_zoom, s_min = s_max = 1 (the base camera).

Shapes: H×W image, a (W,), b (H,), window (h, w) of one object's pixels.
"""
import math
from dataclasses import dataclass, field

import numpy as np

CAMERAS = {'standard': 60.0, 'wide': 90.0, 'tele': 35.0, 'normal': 45.0}  # horizontal FOV, degrees
# all profiles are within a zoom of [0.5, 2] of 'standard', the default visible_zoom range of eval
COLORS = {'red': (200, 40, 40), 'green': (40, 160, 60), 'blue': (45, 85, 215),
          'yellow': (235, 205, 40), 'purple': (135, 65, 185), 'orange': (240, 135, 30),
          'cyan': (40, 195, 210), 'pink': (245, 125, 190)}
SHAPES = ('box', 'sphere', 'cylinder')
FLOORS = (((175, 165, 145), (115, 105, 90)), ((155, 155, 155), (95, 95, 100)),
          ((190, 165, 125), (130, 95, 65)))               # (light, dark) tiles: greys and browns
WALLS = ((215, 210, 200), (200, 205, 215), (222, 208, 188))
CEILING, NOTHING = (235, 235, 232), (165, 185, 210)      # NOTHING: the sky without walls
AMBIENT, DIFFUSE = 0.5, 0.5     # the darkest face keeps half its colour: names stay readable
SHADE_NORMALS = np.array([[0, -1, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [1, 0, 0], [-1, 0, 0], [0, 0, 0],
                          [0, -1, 0]], dtype=float)   # outward normals of the room surfaces, by surface id
MIN_TILE_PX = 1.5        # floor rows where a tile spans fewer pixels get the mean tile colour (no moiré)
MIN_OBJECT_PX = 2.0      # every side of an object spans at least this many pixels at the smallest zoom
MARGIN_PX = 1.0          # visible objects keep this many pixels from the border of the zoomed image
GAP = 0.05               # metres between the bounding circles of two objects on the floor
MAX_HIDDEN = 0.5         # at most this fraction of an object's 2D box behind a nearer object's
TRIES = 64               # scenes tried (each with a fresh camera height); candidates per object


@dataclass
class SceneConfig:
    image_hw: tuple = (128, 128)
    camera: str = 'standard'           # a key of CAMERAS
    n_objects: tuple = (1, 4)          # inclusive range
    depth_range: tuple = (1.5, 8.0)    # z of object centres, metres
    height_range: tuple = (0.6, 1.6)   # camera height above the floor, metres (low enough that
                                       # visible_zoom=(0.5, 2) still leaves near objects: z >~ 3.5 h)
    walls: bool = True                 # back + side walls and a ceiling; else floor to the horizon
    tile: float = 0.5                  # floor checker tile, metres
    size_range: tuple = (0.2, 1.5)     # each side of an object, metres (per instance)
    visible_zoom: tuple | None = None  # (a, b): every object fully in view for f' = s·f, s in [a, b];
                                       # None: fully in view through the base camera (s = 1)


@dataclass
class Object:
    name: str                # "red box", unique in its scene
    shape: str               # 'box' | 'sphere' | 'cylinder'
    color: str               # a key of COLORS
    center: np.ndarray       # (3,) centre of the 3D bounding box, camera frame, metres
    size: np.ndarray         # (3,) (w, h, l) along the object's local x, y, z
    yaw: float               # radians about the camera y axis, in [−π/2, π/2) for boxes; 0 for
                             # spheres and cylinders (symmetric about y: a yaw could not be seen)


@dataclass
class Scene:
    objects: list
    K: np.ndarray            # (3, 3) of the base camera, pixels
    image_hw: tuple
    camera_height: float     # metres above the floor (the floor is y = +camera_height)
    seed: int = 0
    room: dict = field(default_factory=dict)   # walls/back/left/right/height/tile/colours/light


# ----------------------------------------------------------------------------- cameras

def camera_K(camera: str, image_hw) -> np.ndarray:
    """Intrinsics of a named profile: square pixels, fx = (W/2)/tan(fov/2), c = (W/2, H/2)."""
    if camera not in CAMERAS:
        raise ValueError(f"unknown camera {camera!r}; profiles: {sorted(CAMERAS)}")
    H, W = check_hw(image_hw)
    f = (W / 2) / math.tan(math.radians(CAMERAS[camera]) / 2)
    return np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]], dtype=np.float64)


def zoom_K(K, s: float) -> np.ndarray:
    """f' = s·f about the principal point (the camera that augment.zoom emulates)."""
    K2 = np.array(K, dtype=np.float64)
    K2[[0, 1], [0, 1]] *= s
    return K2


def check_hw(image_hw) -> tuple:
    try:
        H, W = (int(x) for x in image_hw)
        ok = (H, W) == tuple(image_hw) and H > 0 and W > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"image_hw must be two positive ints (H, W), got {image_hw!r}")
    return H, W


def check_K(K) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"K must have shape (3, 3), got {K.shape}")
    if not np.isfinite(K).all():
        raise ValueError(f"K has non-finite values: {K.tolist()}")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"K needs fx > 0 and fy > 0, got fx={K[0, 0]}, fy={K[1, 1]}")
    if K[0, 1] != 0 or K[1, 0] != 0 or (K[2] != (0, 0, 1)).any():
        raise ValueError(f"K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew), got {K.tolist()}")
    return K


def pixel_rays(K, image_hw, _cache={}):
    """a (W,) = (u+½−cx)/fx and b (H,) = (v+½−cy)/fy, cached (read-only) for the last 64 cameras."""
    key = (np.asarray(K, dtype=np.float64).tobytes(), tuple(image_hw))
    if key not in _cache:
        _cache.clear() if len(_cache) > 64 else None
        (K, (H, W)) = check_K(K), check_hw(image_hw)
        a, b = (np.arange(W) + 0.5 - K[0, 2]) / K[0, 0], (np.arange(H) + 0.5 - K[1, 2]) / K[1, 1]
        a.flags.writeable = b.flags.writeable = False
        _cache[key] = (a, b)
    return _cache[key]


# ----------------------------------------------------------------------------- geometry

def rot_y(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


_SIGNS = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], dtype=float) / 2


def box_corners(center, size, yaw) -> np.ndarray:
    """The 8 corners (8, 3) of the bounding box: X_cam = R_y(yaw) · X_local + centre."""
    return (_SIGNS * size) @ rot_y(yaw).T + center


def project(K, X) -> np.ndarray:
    """Camera points (N, 3) -> continuous pixel coordinates (N, 2)."""
    X = np.asarray(X, dtype=np.float64)
    return X[:, :2] / X[:, 2:] * (K[0, 0], K[1, 1]) + (K[0, 2], K[1, 2])


def _hit_box(a, b, c, size, yaw, L):
    """Slab test in the box frame. a (w,), b (h,) -> t (h, w) (inf: miss) and n·L (h, w)."""
    R = rot_y(yaw)
    o = -R.T @ c                                            # camera origin in the box frame
    d = (R[0, 0] * a + R[2, 0], R[0, 2] * a + R[2, 2])      # local dx, dz of d = (a, b, 1): (w,)
    dirs = ((d[0][None, :], 0), (b[:, None], 1), (d[1][None, :], 2))   # (1, w), (h, 1), (1, w)
    near, far, nl = [], [], []
    with np.errstate(divide='ignore', invalid='ignore'):
        for dk, k in dirs:
            t1, t2 = (-size[k] / 2 - o[k]) / dk, (size[k] / 2 - o[k]) / dk
            near.append(np.minimum(t1, t2))
            far.append(np.maximum(t1, t2))
            nl.append(-np.sign(dk) * (R[:, k] @ L))         # face normal −sign(d'_k)·R e_k, dotted with L
    tn = np.maximum(np.maximum(near[0], near[1]), near[2])  # (h, w)
    tf = np.minimum(np.minimum(far[0], far[1]), far[2])
    hit = (tn <= tf) & (tn > 0)
    ndl = np.where(near[0] >= tn, nl[0], np.where(near[1] >= tn, nl[1], nl[2]))
    return np.where(hit, tn, np.inf), ndl


def _hit_sphere(a, b, c, r, L):
    A, B = a[None, :], b[:, None]
    dd = A * A + B * B + 1                                  # |d|² (h, w)
    bc = A * c[0] + B * c[1] + c[2]                         # d·c
    disc = bc * bc - dd * (c @ c - r * r)
    t = (bc - np.sqrt(np.maximum(disc, 0))) / dd
    ndl = ((t * A - c[0]) * L[0] + (t * B - c[1]) * L[1] + (t - c[2]) * L[2]) / r
    return np.where((disc >= 0) & (t > 0), t, np.inf), ndl


def _hit_cylinder(a, b, c, r, height, L):
    A, B = a[None, :], b[:, None]
    y0, y1 = c[1] - height / 2, c[1] + height / 2           # top and bottom (y grows downwards)
    qa, qb = A * A + 1, A * c[0] + c[2]                     # side: quadratic in the x-z plane (1, w)
    disc = qb * qb - qa * (c[0] ** 2 + c[2] ** 2 - r * r)
    ts = (qb - np.sqrt(np.maximum(disc, 0))) / qa           # (1, w)
    ys = ts * B                                             # (h, w)
    t_side = np.where((disc >= 0) & (ts > 0) & (ys >= y0) & (ys <= y1), ts, np.inf)
    t, ndl = t_side, ((ts * A - c[0]) * L[0] + (ts - c[2]) * L[2]) / r + 0 * B
    with np.errstate(divide='ignore', invalid='ignore'):
        for yc, ny in [(y, n) for y, n in ((y0, -1.0), (y1, 1.0)) if y * n <= 0]:   # front-facing caps,
            tc = yc / B                                     # normals up (−y) or down (+y); (h, 1)
            inside = (tc * A - c[0]) ** 2 + (tc - c[2]) ** 2 <= r * r
            tc = np.where(inside & (tc > 0), tc, np.inf)    # (h, w)
            better = tc < t
            t, ndl = np.where(better, tc, t), np.where(better, ny * L[1], ndl)
    return t, ndl


# ----------------------------------------------------------------------------- sampling

def _footprint(o) -> float:
    """Radius of the object's bounding circle in the x-z plane."""
    return 0.5 * math.hypot(o.size[0], o.size[2]) if o.shape == 'box' else o.size[0] / 2


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
        hs, S = np.linspace(*cfg.height_range, 65)[:, None], np.linspace(*cfg.size_range, 64)   # (65, 1), (64,)
        z_lo, z_hi = _depth_interval(cfg, K, f_min, hs, np.stack([S, S, S], -1), S / 2)          # (65, 64)
        ok = (z_lo <= z_hi).any(1)
        _cache.clear() if len(_cache) > 64 else None
        _cache[repr(cfg)] = float(hs[ok].max()) if ok.any() else -math.inf
    return _cache[repr(cfg)]


def _candidates(rng, cfg, K, f_min, h, n=8):
    """n random objects in one vectorised draw: shape, size, yaw, then depth in the visible
    interval, then x in the cone. Returns those whose interval is not empty, as arrays."""
    W, fx, cx = cfg.image_hw[1], K[0, 0], K[0, 2]
    shape = rng.integers(len(SHAPES), size=n)               # 0 box, 1 sphere, 2 cylinder
    size = rng.uniform(*cfg.size_range, (n, 3))             # (n, 3) as (w, h, l)
    size[shape > 0, 2] = size[shape > 0, 0]                 # round in x-z: diameter d = w = l
    size[shape == 1, 1] = size[shape == 1, 0]               # sphere: h = d too
    yaw = np.where(shape == 0, rng.uniform(-math.pi / 2, math.pi / 2, n), 0.0)
    r = np.where(shape == 0, 0.5 * np.hypot(size[:, 0], size[:, 2]), size[:, 0] / 2)   # footprint
    z_lo, z_hi = _depth_interval(cfg, K, f_min, h, size, r)                            # (n,), (n,)
    z = z_lo + rng.random(n) * (z_hi - z_lo)
    x_lo = -(cx - MARGIN_PX) / fx * (z - r) + r             # bounding circle inside the cone
    x_hi = (W - MARGIN_PX - cx) / fx * (z - r) - r
    x = x_lo + rng.random(n) * (x_hi - x_lo)
    ok = z_lo <= z_hi
    return shape[ok], np.stack([x, h - size[:, 1] / 2, z], 1)[ok], size[ok], yaw[ok], r[ok]


def _place(rng, cfg, K, f_min, h, placed):
    """The first candidate clear of the placed objects on the floor and (mostly) in the image."""
    others = [(_box2d(K, box_corners(o.center, o.size, o.yaw)), o.center[2]) for o in placed]
    xz = np.array([[o.center[0], o.center[2], _footprint(o)] for o in placed]).reshape(-1, 3)   # (placed, 3)
    for _ in range(TRIES // 8):
        shape, center, size, yaw, r = _candidates(rng, cfg, K, f_min, h)
        dist = np.hypot(center[:, None, 0] - xz[:, 0], center[:, None, 2] - xz[:, 1])   # (n, placed)
        for i in np.nonzero((dist >= r[:, None] + xz[:, 2] + GAP).all(1))[0]:
            box = _box2d(K, box_corners(center[i], size[i], yaw[i]))   # (u0, v0, u1, v1), in view
            if all(_hidden(box, center[i, 2], b, zb) <= MAX_HIDDEN for b, zb in others):
                return SHAPES[shape[i]], center[i], size[i], float(yaw[i])
    return None


def _box2d(K, corners) -> tuple:
    uv = project(K, corners)                                # (8, 2)
    return (*uv.min(0).tolist(), *uv.max(0).tolist())      # (u0, v0, u1, v1)


def _hidden(b1, z1, b2, z2) -> float:
    """Fraction of the farther object's projected 2D box inside the nearer one's (a cheap proxy
    of occlusion; the same for every zoom about the principal point, as areas scale alike)."""
    far = b1 if z1 > z2 else b2
    iw, ih = min(b1[2], b2[2]) - max(b1[0], b2[0]), min(b1[3], b2[3]) - max(b1[1], b2[1])
    return max(iw, 0) * max(ih, 0) / ((far[2] - far[0]) * (far[3] - far[1]))


def sample_scene(seed: int, cfg: SceneConfig = SceneConfig()) -> Scene:
    """A random room, a function of (seed, cfg) only. Raises ValueError if cfg cannot be met."""
    K = camera_K(cfg.camera, cfg.image_hw)
    s_max = 1.0 if cfg.visible_zoom is None else cfg.visible_zoom[1]
    if cfg.visible_zoom is not None and not 0 < cfg.visible_zoom[0] <= s_max:
        raise ValueError(f"visible_zoom must be (a, b) with 0 < a <= b, got {cfg.visible_zoom}")
    n_lo, n_hi = cfg.n_objects
    if not 1 <= n_lo <= n_hi <= len(COLORS):
        raise ValueError(f"n_objects must be (lo, hi) with 1 <= lo <= hi <= {len(COLORS)}, got {cfg.n_objects}")
    Kv = zoom_K(K, s_max)                                   # the camera that must see everything
    f_min = min(K[0, 0], K[1, 1]) * (1.0 if cfg.visible_zoom is None else cfg.visible_zoom[0])
    h_lo, h_hi = cfg.height_range[0], min(cfg.height_range[1], _max_height(cfg, Kv, f_min))
    setting = (f"fully visible for zoom in {cfg.visible_zoom or (1, 1)} (>= {MIN_OBJECT_PX} px), camera "
               f"{cfg.camera!r}, image {cfg.image_hw}, depth_range {cfg.depth_range}, height_range "
               f"{cfg.height_range}, size_range {cfg.size_range}")
    if h_hi < h_lo:
        raise ValueError(f"no object can be placed {setting}: from every camera height its floor contact is "
                         f"out of view; lower the camera or widen depth_range")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(n_lo, n_hi + 1))
    for k in range(TRIES):
        h = float(rng.uniform(h_lo, h_hi - (h_hi - h_lo) * k / TRIES))   # lower cameras after failures
        colors = [list(COLORS)[i] for i in rng.permutation(len(COLORS))[:n]]
        objects = []
        for color in colors:
            got = _place(rng, cfg, Kv, f_min, h, objects)
            if got is None:
                break
            objects.append(Object(f"{color} {got[0]}", got[0], color, *got[1:]))   # shape, centre, size, yaw
        if len(objects) == n:
            return Scene(objects, K, tuple(cfg.image_hw), h, seed, _room(rng, cfg, h, objects))
    raise ValueError(f"could not place {n} objects {setting} in {TRIES} tries (seed {seed}): widen depth_range, "
                     f"lower the camera, shrink visible_zoom, use larger images or fewer objects")


def _room(rng, cfg, h, objects) -> dict:
    """Walls beyond every object (so they never hide one), a ceiling above the camera, a light."""
    ext = [(o.center[0], o.center[2], _footprint(o)) for o in objects]
    light = np.array([rng.uniform(-0.6, 0.6), -1.0, -rng.uniform(0.2, 0.8)])
    return dict(walls=bool(cfg.walls), tile=float(cfg.tile),
                back=float(max(z + r for x, z, r in ext) + rng.uniform(0.3, 3.0)),
                left=float(max(1.5, max(r - x for x, z, r in ext) + rng.uniform(0.5, 4.0))),
                right=float(max(1.5, max(x + r for x, z, r in ext) + rng.uniform(0.5, 4.0))),
                height=float(max(h + 0.5, rng.uniform(2.6, 3.5))),
                floor_rgb=FLOORS[rng.integers(len(FLOORS))], wall_rgb=WALLS[rng.integers(len(WALLS))],
                light=(light / np.linalg.norm(light)).tolist())


# ----------------------------------------------------------------------------- rendering

def render(scene: Scene, K=None, image_hw=None) -> dict:
    """Ray-cast the scene through K (default scene.K) at image_hw (default scene.image_hw)."""
    K = check_K(scene.K if K is None else K)
    H, W = check_hw(scene.image_hw if image_hw is None else image_hw)
    a, b = pixel_rays(K, (H, W))                            # (W,), (H,)
    room, h, tile = scene.room, scene.camera_height, scene.room['tile']
    L = np.asarray(room['light'])
    # the room, surface ids: 0/1 floor tiles, 2 ceiling, 3 back, 4 left, 5 right wall, 6 nothing,
    # 7 far floor (a tile of depth `tile` at depth t spans fy·h·tile/t² rows: too few to show)
    with np.errstate(divide='ignore'):
        t_row = np.where(b > 0, h / b, np.inf)              # floor y = h, (H,)
        sid_row = np.where(b > 0, np.where(K[1, 1] * h * tile < MIN_TILE_PX * t_row ** 2, 7, 0), 6)
        t_col, sid_col = np.full(W, np.inf), np.full(W, 6)  # (W,)
        if room['walls']:
            t_ceil = np.where(b < 0, (h - room['height']) / b, np.inf)
            sid_row = np.where(t_ceil < t_row, 2, sid_row)
            t_row = np.minimum(t_row, t_ceil)
            t_col = np.where(a < 0, -room['left'] / a, np.where(a > 0, room['right'] / a, np.inf))
            sid_col = np.where(room['back'] < t_col, 3, np.where(a < 0, 4, 5))
            t_col = np.minimum(t_col, room['back'])
    # checker parity of the floor point (t·a, h, t): floor(x/tile) + floor(z/tile), 0 off the floor
    t_floor = np.where(sid_row == 0, t_row, 0.0) / tile                        # (H,)
    parity = (np.floor(np.multiply.outer(t_floor, a)).astype(np.int32)
              + np.floor(t_floor).astype(np.int32)[:, None]) & 1              # (H, W)
    row_nearer = t_row[:, None] <= t_col[None, :]                             # (H, W)
    sid = np.where(row_nearer, parity + sid_row[:, None].astype(np.int32), sid_col[None, :].astype(np.int32))
    depth = np.minimum(t_row[:, None], t_col[None, :]).astype(np.float32)     # (H, W), inf: nothing
    shade = SHADE_NORMALS @ L                                                 # (8,) n·L per surface
    shade = (AMBIENT + DIFFUSE * np.maximum(shade, 0)).astype(np.float32)
    shade[2], shade[6] = 0.8, 1.0                           # the ceiling is lit by bounce light
    shade = shade.take(sid)                                 # (H, W), always <= 1
    instance = np.full((H, W), -1, dtype=np.int32)
    for i, ob in enumerate(scene.objects):
        rows, cols = _window(K, (H, W), box_corners(ob.center, ob.size, ob.yaw))
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        aw, bw = a[cols], b[rows]                           # (w,), (h,)
        if ob.shape == 'box':
            t, ndl = _hit_box(aw, bw, ob.center, ob.size, ob.yaw, L)
        elif ob.shape == 'sphere':
            t, ndl = _hit_sphere(aw, bw, ob.center, ob.size[0] / 2, L)
        else:
            t, ndl = _hit_cylinder(aw, bw, ob.center, ob.size[0] / 2, ob.size[1], L)
        m = t < depth[rows, cols]                           # (h, w) z-buffer; the slices are views
        np.copyto(depth[rows, cols], t, where=m, casting='unsafe')
        np.copyto(shade[rows, cols], AMBIENT + DIFFUSE * np.maximum(ndl, 0), where=m, casting='unsafe')
        np.copyto(sid[rows, cols], 8 + i, where=m)
        np.copyto(instance[rows, cols], i, where=m)
    walls, far = [room['wall_rgb']] * 3, np.mean(room['floor_rgb'], 0)
    palette = np.array([*room['floor_rgb'], CEILING, *walls, NOTHING, far] + [COLORS[o.color] for o in scene.objects],
                       dtype=np.float32)                    # (8 + objects, 3) by surface id
    image = (palette.take(sid, 0) * shade[..., None]).astype(np.uint8)   # (H, W, 3), values <= 255
    if not room['walls']:
        depth[np.isinf(depth)] = 0.0                        # rays above the horizon hit nothing
    points = np.empty((H, W, 3), dtype=np.float32)          # depth · (a, b, 1)
    np.multiply(depth, a[None, :], out=points[..., 0], casting='unsafe')
    np.multiply(depth, b[:, None], out=points[..., 1], casting='unsafe')
    points[..., 2] = depth
    return dict(image=image, depth=depth, points=points, instance=instance)


def _window(K, image_hw, corners):
    """Rows and columns whose pixel centres may see the object: its projected bounding box + 1 px."""
    H, W = image_hw
    if (corners[:, 2] <= 1e-6).any():                       # straddles the camera plane: all pixels
        return slice(0, H), slice(0, W)
    uv = project(K, corners)
    (u0, v0), (u1, v1) = uv.min(0), uv.max(0)
    c0, c1 = max(0, math.floor(u0 - 0.5)), min(W, math.ceil(u1 - 0.5) + 1)
    r0, r1 = max(0, math.floor(v0 - 0.5)), min(H, math.ceil(v1 - 0.5) + 1)
    return slice(r0, r1), slice(c0, c1)
