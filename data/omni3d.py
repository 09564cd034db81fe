"""
Real data: Omni3D-format JSON annotations read into samples, and synthetic scenes written out as them.

The idea. Any Omni3D-format file (SUN RGB-D, ARKitScenes, Hypersim, Objectron, KITTI, nuScenes;
Brazil et al. 2023) becomes a dataset of synthetic.py's samples: an image, its K, and one question per
image about its annotated 3D boxes, asked and answered exactly as for a synthetic scene. The
exporter writes synthetic scenes in that format, so the whole path is tested end to end.

Conventions (Cube R-CNN's cubercnn/util/math_util.py), converted on the way in and back on the way
out, so a box written here gives the corners Omni3D's own tools give:
    dimensions [W, H, L]: L along the object's own x axis, H along y, W along z. Our size (w, h, l)
        is along x, y, z, so size = (L, H, W).     X_cam = R_cam · X_local + center_cam.
    bbox3D_cam: the 8 corners X_local = (±L/2, ±H/2, ±W/2) in get_cuboid_verts_faces' order:
        v0..v3 the face z = −W/2 going (−x,−y) (+x,−y) (+x,+y) (−x,+y); v4..v7 the same at z = +W/2.
    K puts pixel centres at integer coordinates; ours at integer + ½ (pinhole.py). So cx, cy gain ½
        on load and lose it on export (PIXEL_CENTRE_SHIFT), and so do the exporter's 2D boxes.
    The yaw of a box is the heading of its local x axis in the camera's x-z plane (yaw_from_R):
        records carry no pose, so boxes stay in the camera frame.
Worked number: a table of dimensions [0.70, 0.75, 1.20] (W, H, L) has our size (1.20, 0.75, 0.70);
in a 128 px image with Omni3D's cx = 63.5, ours is cx = 64.0, the exact centre.

Usable records: valid3D true and behind_camera false (the others are counted and skipped); an image
is kept if some task of positive weight can be asked about it. Anything malformed raises a
ValueError naming the file, the record and the field.
"""
import json
import math
import os

import numpy as np
import torch
from PIL import Image

from common.checkpoint import read_json
from data import synthetic
from world import pinhole, raycast, scenes

PIXEL_CENTRE_SHIFT = np.array([[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]])   # ours = Omni3D's K + this
OMNI3D_CORNER_SIGNS = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1],
                                [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], dtype=float)   # (8, 3)


def omni3d_corners(center, dimensions, R) -> np.ndarray:
    """bbox3D_cam (8, 3) of an Omni3D box: center (3,), dimensions [W, H, L], R (3, 3)."""
    W, H, L = dimensions
    return (OMNI3D_CORNER_SIGNS * [L / 2, H / 2, W / 2]) @ np.asarray(R, float).T + center


def yaw_from_R(R) -> float:
    """Heading of the object's local x axis R e_x in the camera's x-z plane: R_y(yaw) -> yaw.
    Real cameras are not level, so for them this is the yaw about the camera's own y axis."""
    return math.atan2(-R[2, 0], R[0, 0])


class Omni3DDataset(torch.utils.data.Dataset):
    """Items from an Omni3D JSON; validated at load, images read when asked for. With a length
    beyond the records (training for several epochs), item i is record i mod n in epoch e = i // n,
    asked and augmented with a seed drawn from (image id, e): a new question each epoch. Epoch 0
    uses the image id itself, so an exported synthetic set asks what the synthetic dataset did."""

    def __init__(self, records, tasks=synthetic.TASKS, task_weights=None, augment=None, skipped=0, empty=0, length=None):
        self.records, self.tasks, self.task_weights, self.augment = records, tasks, task_weights, augment
        self.skipped_annotations, self.images_without_questions = skipped, empty
        self.length = len(records) if length is None else int(length)

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        i = synthetic.item_index(i, self.length)
        r, epoch = self.records[i % len(self.records)], i // len(self.records)
        seed = r['seed'] if epoch == 0 else int(np.random.SeedSequence([r['seed'], epoch]).generate_state(1)[0])
        try:
            with Image.open(r['file']) as im:
                image = np.array(im.convert('RGB'))                          # (H, W, 3), writable
        except (OSError, SyntaxError, ValueError) as e:                      # truncated, not an image
            raise ValueError(f"{r['file']}: cannot read the image ({e})") from None
        if image.shape[:2] != r['hw']:
            raise ValueError(f"{r['file']}: image is {image.shape[:2]} but its record says (height, width) = {r['hw']}")
        qa = synthetic.sample_qa(r['objects'], seed, self.tasks, self.task_weights)
        H, W = r['hw']
        return synthetic.make_item(image, r['K'], np.zeros((H, W), np.float32), np.zeros((H, W, 3), np.float32),
                         qa, seed, self.augment)


def load_omni3d(json_path, image_root, tasks=synthetic.TASKS, task_weights=None, augment=None) -> Omni3DDataset:
    """An Omni3D-format JSON -> Omni3DDataset, one item (one question) per usable image.

    Usable: valid3D true (default true when absent) and behind_camera false (default false);
    the others are counted in `skipped_annotations`; images about which no task of positive
    weight can be asked (no usable object, or only repeated names and no detect) are left out
    and counted in `images_without_questions`; a file with no usable image at all is an error.
    depth and points are zeros (0 = unknown: no teacher geometry). Names are category names,
    lower-cased with single spaces. Sizes, K and 2D coordinates follow the conventions above.
    Anything malformed (a missing or mistyped key, a centre at z <= 0 that is not flagged
    behind_camera, an R_cam that is not a rotation, ...) raises a ValueError naming the file, the
    record (index and id) and the field."""
    synthetic.check_tasks(tasks, task_weights)
    js = read_json(str(json_path))
    images, annotations = (_get(js, k, list, str(json_path)) for k in ('images', 'annotations'))
    by_id = {}
    for idx, rec in enumerate(images):
        where = f"{json_path}: images[{idx}]" + (f" (id={rec.get('id')!r})" if isinstance(rec, dict) else '')
        iid = _get(rec, 'id', int, where)
        if iid < 0 or iid in by_id:
            raise ValueError(f"{where}: image id must be a unique non-negative int")
        K = _get(rec, 'K', 'array', where, (3, 3))
        try:
            pinhole.check_K(np.asarray(K, dtype=np.float64), skew=False)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        hw = (_get(rec, 'height', int, where), _get(rec, 'width', int, where))
        file = os.path.join(image_root, _get(rec, 'file_path', str, where))
        if min(hw) <= 0 or not os.path.isfile(file):
            raise ValueError(f"{where}: needs height, width > 0 and an existing image file, got {hw}, {file}")
        K = K + PIXEL_CENTRE_SHIFT                                          # pixel centres at integer + ½
        by_id[iid] = dict(file=file, K=K, hw=hw, seed=iid, objects=[])
    skipped = 0
    for idx, ann in enumerate(annotations):
        where = f"{json_path}: annotations[{idx}]" + (f" (id={ann.get('id')!r})" if isinstance(ann, dict) else '')
        iid = _get(ann, 'image_id', int, where)
        if iid not in by_id:
            raise ValueError(f"{where}: unknown image_id {iid}")
        name = ' '.join(_get(ann, 'category_name', str, where).lower().split())
        if not name:
            raise ValueError(f"{where}: empty category_name")
        if not _flag(ann, 'valid3D', True, where) or _flag(ann, 'behind_camera', False, where):
            skipped += 1
            continue
        center = _get(ann, 'center_cam', 'array', where, (3,))
        W, H, L = _get(ann, 'dimensions', 'array', where, (3,))
        R = _rotation(ann, where)
        if min(W, H, L) <= 0:
            raise ValueError(f"{where}: 'dimensions' must be positive, got {[W, H, L]}")
        if center[2] <= 0:
            raise ValueError(f"{where}: 'center_cam' must be in front of the camera (z > 0) unless "
                             f"behind_camera is true, got {center.tolist()}")
        size = np.array([L, H, W])                                          # (w, h, l) along local x, y, z
        by_id[iid]['objects'].append(dict(name=name, center=center, size=size, yaw=yaw_from_R(R)))
    records = [r for r in by_id.values()
               if any(synthetic.feasible(r['objects'], tasks[i]) for i in synthetic.active_tasks(tasks, task_weights))]
    if not records:
        raise ValueError(f"{json_path}: no usable image: {len(by_id)} images, {len(annotations)} annotations "
                         f"({skipped} skipped as valid3D false or behind_camera), and no image allows a "
                         f"question of tasks {tuple(tasks)} (weights {task_weights})")
    return Omni3DDataset(records, tasks, task_weights, augment, skipped, len(by_id) - len(records))


def export_omni3d(source, out_dir, limit=None) -> str:
    """Write scenes (a SyntheticDataset or an iterable of scenes.Scene) as PNGs + omni3d.json.

    Image id = scene seed. A dataset is exported un-augmented, rendered through its own camera.
    Dimensions, corners, K and 2D boxes in Omni3D's conventions (above).
    Returns the JSON path; load it with load_omni3d(path, out_dir)."""
    if isinstance(source, synthetic.SyntheticDataset):
        n = len(source) if limit is None else min(limit, len(source))
        split, cfg = source.split, source.cfg.scene
        source = (scenes.sample_scene(synthetic.scene_seed(split, i), cfg) for i in range(n))
    os.makedirs(os.path.join(out_dir, 'images'), exist_ok=True)
    images, annotations, categories, seen = [], [], {}, set()
    for k, sc in enumerate(source):
        if limit is not None and k >= limit:
            break
        if sc.seed in seen:
            raise ValueError(f"two scenes share the seed {sc.seed}: image ids must be unique")
        seen.add(sc.seed)
        out = raycast.render(sc)
        H, W = sc.image_hw
        path = f"images/{sc.seed:010d}.png"
        Image.fromarray(out['image']).save(os.path.join(out_dir, path))
        K = sc.K - PIXEL_CENTRE_SHIFT                                        # Omni3D: centres at integers
        images.append(dict(id=int(sc.seed), file_path=path, width=W, height=H, K=K.tolist(),
                           camera_height=sc.camera_height, dataset_id=0))
        for i, o in enumerate(sc.objects):
            dims, R = [o.size[2], o.size[1], o.size[0]], o.R_cam             # [W, H, L] = our (l, h, w)
            corners = omni3d_corners(o.center, dims, R)                       # (8, 3) Cube R-CNN's order
            uv = scenes.project(K, corners)                                   # (8, 2) Omni3D's pixels
            v, u = np.nonzero(out['instance'] == i)                           # pixel u spans [u − ½, u + ½]
            tight = [u.min() - 0.5, v.min() - 0.5, u.max() + 0.5, v.max() + 0.5] if len(u) else [-1.0] * 4
            cid = categories.setdefault(o.name, len(categories))
            annotations.append(dict(
                id=len(annotations), image_id=int(sc.seed), dataset_id=0, category_id=cid,
                category_name=o.name, valid3D=True, behind_camera=False, center_cam=o.center.tolist(),
                dimensions=[float(d) for d in dims], R_cam=R.tolist(), bbox3D_cam=corners.tolist(),
                bbox2D_proj=[*uv.min(0).tolist(), *uv.max(0).tolist()], bbox2D_tight=[float(t) for t in tight],
                depth=float(o.center[2]), visibility=-1.0, truncation=-1.0))
    js = dict(info=dict(description='synthetic rooms exported by omni3d.export_omni3d', id=0),
              categories=[dict(id=i, name=n) for n, i in categories.items()],
              images=images, annotations=annotations)
    json_path = os.path.join(out_dir, 'omni3d.json')
    with open(json_path, 'w') as f:
        json.dump(js, f)
    return json_path


# ----------------------------------------------------------------------------- record checks

def _get(rec, key, kind, where, shape=None):
    """rec[key] checked: present, of the right JSON type, numbers finite and of the given shape."""
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: expected an object (dict), got {type(rec).__name__}")
    if key not in rec:
        raise ValueError(f"{where}: missing key {key!r}")
    v = rec[key]
    if kind == 'array':
        a = np.array(v, dtype=object) if isinstance(v, list) else np.empty(0, dtype=object)
        ok = a.shape == shape and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in a.flat)
        a = a.astype(np.float64) if ok else a
        if not ok or not np.isfinite(a).all():
            raise ValueError(f"{where}: {key!r} must be finite numbers of shape {shape}, got {v!r}")
        return a
    if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
        raise ValueError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, got {v!r}")
    return v


def _flag(rec, key, default, where) -> bool:
    """An optional JSON boolean (valid3D, behind_camera): a string such as "false" is an error."""
    return _get(rec, key, bool, where) if key in rec else default


def _rotation(rec, where) -> np.ndarray:
    """R_cam checked to be a rotation (orthonormal, det +1, to 1e-3): an all-zero R is an error."""
    R = _get(rec, 'R_cam', 'array', where, (3, 3))
    if not (np.allclose(R.T @ R, np.eye(3), atol=1e-3) and abs(np.linalg.det(R) - 1) < 1e-3):
        raise ValueError(f"{where}: 'R_cam' must be a rotation matrix (R^T R = I, det R = 1), got {R.tolist()}")
    return R
