"""
The renderer: a scenes.py room ray-cast exactly through any K and camera rotation.

Why. The cross-camera benchmark needs the same scene seen through many lenses, each image exact
(not an interpolated zoom) and with its exact depth, point map and instance ids: the answers of
data.py and the teacher of distill.py are read from them.

The math. The ray of pixel (u, v), in the camera frame and in the world frame, is
    d_cam = K⁻¹ [u+½, v+½, 1] = (a_u, b_v, 1),  a_u = (u+½−cx)/fx,  b_v = (v+½−cy)/fy;   d = R·d_cam
(pinhole.py's convention and ray). Every surface is intersected in the world frame; since
d = R·d_cam, the ray parameter t of a hit is its camera-frame z-depth (d_cam,z = 1), and the
camera-frame point is t·d_cam. For a level camera d = d_cam is separable (a depends on the column
only, b on the row only), so the room costs one value per row or column; a tilted camera's rays
are dense (H, W). Per surface:
    floor y = h:        t = h / d_y           (level: one value per row, fy·h/(v+½−cy) in pixels)
    wall x = ±X:        t = ±X / d_x;          back wall z = Z: t = Z / d_z   (level: per column)
    box (slabs):        in the box frame o' = R_y(yaw)ᵀ(0 − c), d' = R_y(yaw)ᵀd, t = max_k min(t1k, t2k)
    sphere:             t² |d|² − 2t d·c + |c|² − r² = 0, nearest root
    cylinder (gravity): side (t·d_x − c_x)² + (t·d_z − c_z)² = r² with y = t·d_y in range; caps y = const
The room is convex and holds the camera, so its first surface is the nearest plane ahead;
objects are z-buffered over it, each only over the pixels of its projected bounding box.
Shading: colour · (AMBIENT + DIFFUSE · max(0, n·L)), one directional light from above.

Worked number. 128 px at 60° (fy = 110.9, cy = 64), a level camera 1.4 m above the floor: row
v = 100 looks down along b = (100.5 − 64) / 110.9 = 0.329 and meets the floor at t = 1.4 / 0.329 =
4.25 m, where a 0.5 m tile spans about fy·h·tile / t² = 4.3 rows (drawn as a checker: more than
MIN_TILE_PX).

Shapes: H×W image, a (W,), b (H,), window (h, w) of one object's pixels; ray components
(d_x, d_y, d_z) broadcast to (H, W): (1, W), (H, 1), 1 for a level camera, (H, W) each if tilted.
"""
import math

import numpy as np

from world import pinhole
from world.scenes import COLORS, Scene, box_corners, project, rot_y, to_world

# Surface ids: what a pixel sees, the index of its colour and of its shading. Object i is OBJECT + i.
# The floor's tiles alternate FLOOR and FLOOR_DARK; FAR_FLOOR is floor whose tiles would span too
# few rows to show (MIN_TILE_PX), drawn in the mean tile colour; NOTHING is the sky without walls.
FLOOR, FLOOR_DARK, CEILING, BACK_WALL, LEFT_WALL, RIGHT_WALL, NOTHING, FAR_FLOOR, OBJECT = range(9)
SHADE_NORMALS = np.array([[0, -1, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [1, 0, 0], [-1, 0, 0], [0, 0, 0],
                          [0, -1, 0]], dtype=float)   # outward normals of the room surfaces, by surface id
CEILING_RGB, NOTHING_RGB = (235, 235, 232), (165, 185, 210)
AMBIENT, DIFFUSE = 0.5, 0.5     # the darkest face keeps half its colour: names stay readable
MIN_TILE_PX = 1.5               # floor rows where a tile spans fewer pixels are FAR_FLOOR (no moiré)


# ----------------------------------------------------------------------------- rays

def pixel_rays(K, image_hw, _cache={}):
    """a (W,) = (u+½−cx)/fx and b (H,) = (v+½−cy)/fy (pinhole.ray_xy at the pixel centres; no skew,
    so the ray's x depends on the column only and its y on the row only), cached (read-only) for
    the last 64 cameras. A camera is checked (pinhole.check_K) when it first comes, not every render."""
    K = np.asarray(K, dtype=np.float64)
    key = (K.shape, K.tobytes(), tuple(image_hw))
    if key not in _cache:
        _cache.clear() if len(_cache) > 64 else None
        pinhole.check_K(K, skew=False)
        H, W = pinhole.check_hw(image_hw)
        x, y = pinhole.ray_xy(K, np.arange(W)[None, :] + 0.5, np.arange(H)[:, None] + 0.5)   # (H, W) each
        a, b = x[0], y[:, 0]
        a.flags.writeable = b.flags.writeable = False
        _cache[key] = (a, b)
    return _cache[key]


def world_rays(a, b, R=None) -> tuple:
    """The rays d = R·(a_u, b_v, 1) in the world frame as three components that broadcast to (H, W):
    for a level camera (R None) (1, W), (H, 1) and the number 1 (separable, no (H, W) work); else
    (H, W) each. R: the c2w rotation."""
    if R is None:
        return a[None, :], b[:, None], 1.0
    return tuple(R[k, 0] * a[None, :] + R[k, 1] * b[:, None] + R[k, 2] for k in range(3))


def _crop(d, rows, cols):
    """The window (rows, cols) of one ray component: (H, W) -> (h, w), (1, W) -> (1, w), (H, 1) -> (h, 1)."""
    if np.ndim(d) == 0:
        return d
    return d[rows if d.shape[0] > 1 else slice(None), cols if d.shape[1] > 1 else slice(None)]


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


# ----------------------------------------------------------------------------- hits

def _hit_box(d, c, size, yaw, L):
    """Slab test in the box frame. Ray components d = (d_x, d_y, d_z) that broadcast to (h, w), world
    centre c -> t (h, w) (inf: miss) and n·L (h, w)."""
    R = rot_y(yaw)
    o = -R.T @ c                                            # camera origin in the box frame
    dirs = ((R[0, 0] * d[0] + R[2, 0] * d[2], 0), (d[1], 1), (R[0, 2] * d[0] + R[2, 2] * d[2], 2))  # Rᵀd:
    near, far, nl = [], [], []                              # R_y keeps y; level (1, w), (h, 1), (1, w)
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


def _hit_sphere(d, c, r, L):
    X, Y, Z = d
    dd = X * X + Y * Y + Z * Z                              # |d|² (h, w)
    bc = X * c[0] + Y * c[1] + Z * c[2]                     # d·c
    disc = bc * bc - dd * (c @ c - r * r)
    t = (bc - np.sqrt(np.maximum(disc, 0))) / dd
    ndl = ((t * X - c[0]) * L[0] + (t * Y - c[1]) * L[1] + (t * Z - c[2]) * L[2]) / r
    return np.where((disc >= 0) & (t > 0), t, np.inf), ndl


def _hit_cylinder(d, c, r, height, L):
    X, Y, Z = d
    y0, y1 = c[1] - height / 2, c[1] + height / 2           # top and bottom (y grows downwards)
    qa, qb = X * X + Z * Z, X * c[0] + Z * c[2]             # side: quadratic in the x-z plane (level: (1, w))
    disc = qb * qb - qa * (c[0] ** 2 + c[2] ** 2 - r * r)
    ts = (qb - np.sqrt(np.maximum(disc, 0))) / qa
    ys = ts * Y                                             # (h, w)
    t_side = np.where((disc >= 0) & (ts > 0) & (ys >= y0) & (ys <= y1), ts, np.inf)
    t, ndl = t_side, ((ts * X - c[0]) * L[0] + (ts * Z - c[2]) * L[2]) / r + 0 * Y
    with np.errstate(divide='ignore', invalid='ignore'):
        for yc, ny in [(y, n) for y, n in ((y0, -1.0), (y1, 1.0)) if y * n <= 0]:   # front-facing caps,
            tc = yc / Y                                     # normals up (−y) or down (+y); level (h, 1)
            inside = (tc * X - c[0]) ** 2 + (tc * Z - c[2]) ** 2 <= r * r
            tc = np.where(inside & (tc > 0), tc, np.inf)    # (h, w)
            better = tc < t
            t, ndl = np.where(better, tc, t), np.where(better, ny * L[1], ndl)
    return t, ndl


# ----------------------------------------------------------------------------- rendering

def render(scene: Scene, K=None, image_hw=None) -> dict:
    """Ray-cast the scene through K (default scene.K) at image_hw (default scene.image_hw):
    image (H, W, 3) uint8, depth (H, W) (camera z, inf or 0 where nothing is hit), points (H, W, 3)
    in the camera frame, instance (H, W) (object index, −1 for the room)."""
    K = np.asarray(scene.K if K is None else K, dtype=np.float64)
    H, W = pinhole.check_hw(scene.image_hw if image_hw is None else image_hw)
    a, b = pixel_rays(K, (H, W))                            # (W,), (H,); K is checked there
    room, h, tile = scene.room, scene.camera_height, scene.room['tile']
    L = np.asarray(room['light'])                           # world frame, like every surface below
    R = None if np.array_equal(scene.c2w[:3, :3], np.eye(3)) else scene.c2w[:3, :3]   # None: level
    d = world_rays(a, b, R)                                 # level (1, W), (H, 1), 1; tilted (H, W) each
    # the room: floor and ceiling depend on d_y only, the walls on d_x, d_z (for a level camera, per
    # row or column). A tile of depth `tile` at depth t spans about fy·h·tile/t² rows: FAR_FLOOR below
    # MIN_TILE_PX of them
    with np.errstate(divide='ignore'):
        t_flat = np.where(d[1] > 0, h / d[1], np.inf)       # floor y = h
        sid_flat = np.where(d[1] > 0, np.where(K[1, 1] * h * tile < MIN_TILE_PX * t_flat ** 2, FAR_FLOOR, FLOOR),
                            NOTHING)
        wall_shape = np.broadcast_shapes(np.shape(d[0]), np.shape(d[2]))
        t_wall, sid_wall = np.full(wall_shape, np.inf), np.full(wall_shape, NOTHING)
        if room['walls']:
            t_ceil = np.where(d[1] < 0, (h - room['height']) / d[1], np.inf)
            sid_flat = np.where(t_ceil < t_flat, CEILING, sid_flat)
            t_flat = np.minimum(t_flat, t_ceil)
            t_wall = np.where(d[0] < 0, -room['left'] / d[0], np.where(d[0] > 0, room['right'] / d[0], np.inf))
            t_back = np.where(d[2] > 0, room['back'] / d[2], np.inf)
            sid_wall = np.where(t_back < t_wall, BACK_WALL, np.where(d[0] < 0, LEFT_WALL, RIGHT_WALL))
            t_wall = np.minimum(t_wall, t_back)
    # checker parity of the floor point t·d: floor(x/tile) + floor(z/tile), 0 off the floor; a camera
    # moved to (x0, ·, z0) of a larger world (views.py) keeps that world's tiles: room['tile_offset']
    on_floor = sid_flat == FLOOR
    t_floor = np.where(on_floor, t_flat, 0.0) / tile                          # level (H, 1)
    tx, tz = t_floor * d[0], t_floor * d[2]                                   # in tiles
    if 'tile_offset' in room:                                                 # off the floor parity stays 0
        tx, tz = tx + on_floor * room['tile_offset'][0] / tile, tz + on_floor * room['tile_offset'][1] / tile
    parity = (np.floor(tx).astype(np.int32) + np.floor(tz).astype(np.int32)) & 1  # (H, W): FLOOR or FLOOR_DARK
    sid = np.where(t_flat <= t_wall, parity + sid_flat.astype(np.int32), sid_wall.astype(np.int32))   # (H, W)
    depth = np.minimum(t_flat, t_wall).astype(np.float32)                     # (H, W), inf: nothing
    shade = SHADE_NORMALS @ L                                                 # (8,) n·L per surface
    shade = (AMBIENT + DIFFUSE * np.maximum(shade, 0)).astype(np.float32)
    shade[CEILING], shade[NOTHING] = 0.8, 1.0               # the ceiling is lit by bounce light
    shade = shade.take(sid)                                 # (H, W), always <= 1
    instance = np.full((H, W), -1, dtype=np.int32)
    for i, ob in enumerate(scene.objects):
        rows, cols = _window(K, (H, W), box_corners(ob.center, ob.size, ob.R_cam))
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        dw, c = [_crop(dk, rows, cols) for dk in d], to_world(ob.center, R)   # rays (h, w) or (1, w), (h, 1)
        if ob.shape == 'box':
            t, ndl = _hit_box(dw, c, ob.size, ob.yaw, L)
        elif ob.shape == 'sphere':
            t, ndl = _hit_sphere(dw, c, ob.size[0] / 2, L)
        else:
            t, ndl = _hit_cylinder(dw, c, ob.size[0] / 2, ob.size[1], L)
        m = t < depth[rows, cols]                           # (h, w) z-buffer; the slices are views
        np.copyto(depth[rows, cols], t, where=m, casting='unsafe')
        np.copyto(shade[rows, cols], AMBIENT + DIFFUSE * np.maximum(ndl, 0), where=m, casting='unsafe')
        np.copyto(sid[rows, cols], OBJECT + i, where=m)
        np.copyto(instance[rows, cols], i, where=m)
    image = (_palette(room, scene.objects).take(sid, 0) * shade[..., None]).astype(np.uint8)  # (H, W, 3), <= 255
    if not room['walls']:
        depth[np.isinf(depth)] = 0.0                        # rays above the horizon hit nothing
    points = np.empty((H, W, 3), dtype=np.float32)          # depth · (a, b, 1)
    np.multiply(depth, a[None, :], out=points[..., 0], casting='unsafe')
    np.multiply(depth, b[:, None], out=points[..., 1], casting='unsafe')
    points[..., 2] = depth
    return dict(image=image, depth=depth, points=points, instance=instance)


def _palette(room, objects) -> np.ndarray:
    """(OBJECT + objects, 3) float32: the colour of each surface id."""
    walls, far = [room['wall_rgb']] * 3, np.mean(room['floor_rgb'], 0)      # back, left, right
    return np.array([*room['floor_rgb'], CEILING_RGB, *walls, NOTHING_RGB, far] + [COLORS[o.color] for o in objects],
                    dtype=np.float32)
