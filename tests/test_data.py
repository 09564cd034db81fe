"""
Guards data.py: answers have the documented format and parse back (here and with metrics.py's
parsers) to their targets; referring tasks name only unique objects; dataset items are a pure
function of (split, index) with disjoint splits, weighted task mixes and exact augmentation;
collate stacks; the Omni3D export -> load round trip gives back the same samples; malformed Omni3D
files fail naming the file and the record; a tilted camera's pose rides with its items and its box
answers are exact in the gravity-aligned frame.

    python -m pytest tests/test_data.py -q
"""
import copy
import json
import math
import os
import re

import numpy as np
import pytest
import torch

import augment
import data
import metrics
import raycast
import scenes

TINY = data.DataConfig(scene=scenes.SceneConfig(image_hw=(32, 32)))
NUM = r'-?\d+\.\d\d'


def objects(seed=0, n=4):
    return data.scene_objects(scenes.sample_scene(seed, scenes.SceneConfig(n_objects=(n, n))))


def test_fmt_two_decimals_no_negative_zero():
    assert [data.fmt(x) for x in (3.14159, -0.001, 0.0, -1.236, 2)] == ['3.14', '0.00', '0.00', '-1.24', '2.00']


@pytest.mark.parametrize('task', data.TASKS)
def test_answers_parse_back_to_targets(task):
    for seed in range(8):
        objs = objects(seed)
        by_name = {o['name']: o for o in objs}
        qa = data.make_qa(objs, task, np.random.default_rng(seed))
        a, t = qa['answer'], qa['target']
        assert qa['task'] == task and qa['question'].endswith(('?', '.'))
        if task in ('depth', 'size', 'distance'):
            assert re.fullmatch(NUM, a) and abs(float(a) - t) <= 0.005 + 1e-9
        elif task in ('center', 'box'):
            assert re.fullmatch(' '.join([NUM] * len(t)), a) and len(t) == (3 if task == 'center' else 7)
            assert np.allclose([float(x) for x in a.split()], t, atol=0.005 + 1e-9)
        elif task == 'closer':
            names = [n for n in by_name if n in qa['question']]
            assert a == t and a in names and len(names) == 2
            assert by_name[a]['center'][2] == min(by_name[n]['center'][2] for n in names)
        else:
            lines = a.split('\n')
            assert len(lines) == len(objs) == len(t)
            assert [n for n, _ in t] == sorted(by_name, key=lambda n: by_name[n]['center'][2])
            for line, (name, box) in zip(lines, t):
                assert re.fullmatch(re.escape(name) + ' ' + ' '.join([NUM] * 7), line)
        if task in ('box', 'detect'):
            yaws = [t[6]] if task == 'box' else [b[6] for _, b in t]
            assert all(-math.pi / 2 <= y < math.pi / 2 for y in yaws)
        parsed = metrics.parse_answer(task, a)                     # the consumer's parser agrees
        assert parsed is not None
        if task == 'detect':
            assert [n for n, _ in parsed] == [n for n, _ in t]


def test_several_phrasings_per_task():
    objs = objects(1)
    for task in data.TASKS:
        qs = {data.make_qa(objs, task, np.random.default_rng(s))['question'] for s in range(30)}
        assert len(qs) >= 3, task


def test_referring_tasks_name_only_unique_objects():
    objs = [dict(name=n, center=np.array(c, float), size=np.ones(3), yaw=0.0)
            for n, c in [('chair', (0, 1, 2)), ('table', (1, 1, 4)), ('chair', (-1, 1, 3))]]
    for s in range(10):
        for task in ('depth', 'center', 'box', 'size'):
            qa = data.make_qa(objs, task, np.random.default_rng(s))
            assert 'table' in qa['question'] and 'chair' not in qa['question']
    for task in ('distance', 'closer'):
        with pytest.raises(ValueError, match='unique names'):
            data.make_qa(objs, task, np.random.default_rng(0))
    assert data.make_qa(objs, 'detect', np.random.default_rng(0))['answer'].count('chair') == 2


def test_items_are_a_function_of_split_and_index():
    a, b = data.SyntheticDataset(TINY, 'train', 6), data.SyntheticDataset(TINY, 'train', 6)
    it = a[3]
    assert it['image'].dtype == torch.uint8 and it['image'].shape == (3, 32, 32)
    assert it['K'].dtype == torch.float32 and it['K'].shape == (3, 3)
    assert it['depth'].shape == (32, 32) and it['points'].shape == (32, 32, 3)
    for key, v in b[3].items():
        assert torch.equal(v, it[key]) if torch.is_tensor(v) else v == it[key], key
    assert it['seed'] == data.scene_seed('train', 3)
    seeds = {s: {data.SyntheticDataset(TINY, s, 3)[i]['seed'] for i in range(3)} for s in data.SPLITS}
    assert not (seeds['train'] & seeds['val'] or seeds['val'] & seeds['test'] or seeds['train'] & seeds['test'])
    with pytest.raises(IndexError):
        a[6]


def test_task_mix():
    cfg = data.DataConfig(scene=TINY.scene, tasks=('depth', 'closer', 'size'), task_weights=(0, 0, 1))
    assert {data.SyntheticDataset(cfg, 'val', 8)[i]['task'] for i in range(8)} == {'size'}
    cfg = data.DataConfig(scene=TINY.scene, tasks=('depth', 'closer'))
    assert {data.SyntheticDataset(cfg, 'val', 12)[i]['task'] for i in range(12)} == {'depth', 'closer'}
    with pytest.raises(ValueError, match='tasks'):
        data.SyntheticDataset(data.DataConfig(scene=TINY.scene, tasks=('depth', 'colour')))
    with pytest.raises(ValueError, match='two objects'):
        data.SyntheticDataset(data.DataConfig(scene=TINY.scene, tasks=('closer',)))


def test_collate():
    ds = data.SyntheticDataset(TINY, 'val', 3)
    batch = data.collate([ds[i] for i in range(3)])
    assert batch['images'].shape == (3, 3, 32, 32) and batch['K'].shape == (3, 3, 3)
    assert batch['depth'].shape == (3, 32, 32) and batch['points'].shape == (3, 32, 32, 3)
    assert len(batch['question']) == len(batch['target']) == len(batch['seed']) == 3
    other = data.SyntheticDataset(data.DataConfig(scene=scenes.SceneConfig(image_hw=(16, 16))), 'val', 1)[0]
    with pytest.raises(ValueError, match='one image size'):
        data.collate([ds[0], other])


def test_augmented_items_keep_answers_and_geometry_follows_K():
    plain = data.SyntheticDataset(TINY, 'train', 6)
    aug = data.SyntheticDataset(TINY, 'train', 6, augment=augment.AugmentConfig(p_identity=0.0))
    changed = 0
    for i in range(6):
        p, a = plain[i], aug[i]
        assert (p['question'], p['answer'], p['task']) == (a['question'], a['answer'], a['task'])
        assert a['image'].dtype == torch.uint8 and a['K'].dtype == torch.float32
        changed += not torch.equal(p['K'], a['K'])
        K, d, pts = a['K'].double(), a['depth'].double(), a['points'].double()
        assert torch.equal(pts[..., 2], d)
        v, u = torch.nonzero(d > 0, as_tuple=True)
        proj = (pts[v, u] / d[v, u, None]) @ K.T                   # (M, 3): where each point lands now
        s = float(K[0, 0] / p['K'][0, 0])                          # a source pixel is s pixels wide now
        assert (proj[:, 0] - (u + 0.5)).abs().max() <= 0.5 * s + 1e-3
        assert (proj[:, 1] - (v + 0.5)).abs().max() <= 0.5 * s + 1e-3
    assert changed >= 5


def test_object_depth_is_the_centre_depth_of_the_object_each_pixel_sees():
    # the distillation teacher's object channel: exact on the render, and carried through the
    # augmentation's warp like depth (nearest: only values of the scene's object centres survive)
    cfg = data.DataConfig(scene=scenes.SceneConfig(image_hw=(64, 64), n_objects=(1, 3)), tasks=('depth',))
    plain = data.SyntheticDataset(cfg, 'train', 4)
    aug = data.SyntheticDataset(cfg, 'train', 4, augment=augment.AugmentConfig(p_identity=0.0))
    for i in range(4):
        sc = scenes.sample_scene(data.scene_seed('train', i), cfg.scene)
        inst = torch.from_numpy(raycast.render(sc)['instance'])
        zs = torch.tensor([o.center[2] for o in sc.objects], dtype=torch.float32)
        obj = plain[i]['object_depth']
        assert torch.equal(obj > 0, inst >= 0) and torch.equal(obj[inst >= 0], zs[inst[inst >= 0]])
        warped = aug[i]['object_depth']
        assert set(warped[warped > 0].tolist()) <= set(zs.tolist()) and (warped > 0).any()
    batch = data.collate([plain[i] for i in range(4)])
    assert batch['object_depth'].shape == (4, 64, 64)


def test_omni3d_round_trip(tmp_path):
    ds = data.SyntheticDataset(TINY, 'val', 5)
    path = data.export_omni3d(ds, str(tmp_path))
    back = data.load_omni3d(path, str(tmp_path), TINY.tasks, TINY.task_weights)
    assert len(back) == 5
    for i in range(5):
        a, b = ds[i], back[i]
        assert (a['question'], a['answer'], a['task'], a['seed']) == (b['question'], b['answer'], b['task'], b['seed'])
        assert torch.equal(a['image'], b['image']) and torch.equal(a['K'], b['K'])
        assert not b['depth'].any() and not b['points'].any()     # real data: geometry unknown (0)
        for task in data.TASKS:                                    # every task, not just the drawn one
            objs = data.scene_objects(scenes.sample_scene(a['seed'], TINY.scene))
            if data.feasible(objs, task):
                qa = data.make_qa(objs, task, np.random.default_rng(7))
                qb = data.make_qa(back.records[i]['objects'], task, np.random.default_rng(7))
                assert (qa['question'], qa['answer']) == (qb['question'], qb['answer'])


def write(tmp_path, js):
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps(js))
    return str(path)


def test_malformed_omni3d_files_name_the_record(tmp_path):
    good = json.loads(open(data.export_omni3d(data.SyntheticDataset(TINY, 'test', 2), str(tmp_path))).read())
    cases = [  # (what to break, the error it must name)
        (lambda js: js['annotations'][1].pop('center_cam'), r"annotations\[1\].*missing key 'center_cam'"),
        (lambda js: js['annotations'][0].update(dimensions=['1', 1, 1]), r"annotations\[0\].*'dimensions'"),
        (lambda js: js['annotations'][0].update(image_id=7), r"annotations\[0\].*unknown image_id 7"),
        (lambda js: js['images'][1].update(K='f=50'), r"images\[1\].*'K'"),
        (lambda js: js['images'][0]['K'][0].__setitem__(0, 0), r"images\[0\].*fx > 0"),
        (lambda js: js['images'][0].update(width=32.0), r"images\[0\].*'width' must be int"),
        (lambda js: js['images'][0].update(file_path='nope.png'), r"images\[0\].*image file"),
        (lambda js: js.pop('images'), "missing key 'images'"),
        (lambda js: js['annotations'][0].update(center_cam=[0.1, 0.2, -3.0]), r"annotations\[0\].*'center_cam'.*z > 0"),
        (lambda js: js['annotations'][1].update(R_cam=[[0, 0, 0]] * 3), r"annotations\[1\].*'R_cam' must be a rotation"),
        (lambda js: js['annotations'][0].update(R_cam=[[2, 0, 0], [0, 1, 0], [0, 0, 1]]), r"annotations\[0\].*'R_cam'"),
        (lambda js: js['annotations'][0].update(valid3D='false'), r"annotations\[0\].*'valid3D' must be bool"),
        (lambda js: js['annotations'][1].update(behind_camera=0), r"annotations\[1\].*'behind_camera' must be bool"),
        (lambda js: js['annotations'][0].update(dimensions=[0.5, 0.0, 1.0]), r"annotations\[0\].*'dimensions' must be positive"),
        (lambda js: [a.update(valid3D=False) for a in js['annotations']], r"no usable image: 2 images, \d+ annotations"),
    ]
    for breaks, pattern in cases:
        js = copy.deepcopy(good)
        breaks(js)
        with pytest.raises(ValueError, match=pattern) as e:
            data.load_omni3d(write(tmp_path, js), str(tmp_path))
        assert 'bad.json' in str(e.value)
    (tmp_path / 'bad.json').write_text('{"images": [')
    with pytest.raises(ValueError, match='bad.json: not valid JSON'):
        data.load_omni3d(str(tmp_path / 'bad.json'), str(tmp_path))
    ds = data.load_omni3d(write(tmp_path, good), str(tmp_path))      # a truncated image: its path named
    png = ds.records[1]['file']
    with open(png, 'rb') as f:
        head = f.read(200)
    with open(png, 'wb') as f:
        f.write(head)
    ds[0]
    with pytest.raises(ValueError, match=re.escape(png) + ': cannot read the image'):
        ds[1]


def test_omni3d_repeated_categories_and_invalid_boxes(tmp_path):
    js = json.loads(open(data.export_omni3d([scenes.sample_scene(5, TINY.scene)], str(tmp_path))).read())
    ann = js['annotations'][0]
    named = [('Chair', True), ('chair', True), ('lamp', False), ('Night  Stand', True)]
    js['annotations'] = [dict(ann, id=k, category_name=n, valid3D=v) for k, (n, v) in enumerate(named)]
    ds = data.load_omni3d(write(tmp_path, js), str(tmp_path), tasks=('depth', 'detect'), task_weights=(1, 0))
    assert ds.skipped_annotations == 1 and len(ds) == 1
    assert [o['name'] for o in ds.records[0]['objects']] == ['chair', 'chair', 'night stand']
    assert 'night stand' in ds[0]['question'] and ds[0]['task'] == 'depth'
    with pytest.raises(ValueError, match=r"no usable image: 1 images, 4 annotations \(1 skipped.*'distance'"):
        data.load_omni3d(write(tmp_path, js), str(tmp_path), tasks=('distance',))   # one unique name: nothing to ask
    js['images'].append(dict(js['images'][0], id=js['images'][0]['id'] + 1))      # an image with no object
    ds = data.load_omni3d(write(tmp_path, js), str(tmp_path), tasks=('depth',))
    assert len(ds) == 1 and ds.images_without_questions == 1 and ds.skipped_annotations == 1


# ----------------------------------------------------------------------------- Omni3D's own conventions
def cube_rcnn_corners(box3d, R):
    """Cube R-CNN's get_cuboid_verts_faces (cubercnn/util/math_util.py), re-typed in numpy:
    box3d = [X, Y, Z, W, H, L], R (3, 3) -> verts (8, 3)."""
    x3d, y3d, z3d, w3d, h3d, l3d = box3d
    verts = np.zeros((3, 8))
    verts[0, [0, 3, 4, 7]], verts[0, [1, 2, 5, 6]] = -l3d / 2, l3d / 2
    verts[1, [0, 1, 4, 5]], verts[1, [2, 3, 6, 7]] = -h3d / 2, h3d / 2
    verts[2, [0, 1, 2, 3]], verts[2, [4, 5, 6, 7]] = -w3d / 2, w3d / 2
    verts = np.asarray(R) @ verts + np.array([[x3d], [y3d], [z3d]])
    return verts.T


def same_corners(a, b, atol=1e-6):
    """The same 8 points, in any order."""
    d = np.linalg.norm(np.asarray(a, float)[:, None] - np.asarray(b, float)[None], axis=-1)   # (8, 8)
    return d.min(0).max() < atol and d.min(1).max() < atol


def hand_written_omni3d(tmp_path, dims, yaw, K):
    """One 32x48 image and one annotation written the way an Omni3D file has them."""
    from PIL import Image
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(tmp_path / 'im.png')
    center, R = [0.3, 0.4, 4.0], scenes.rot_y(yaw)
    ann = dict(id=0, image_id=0, category_name='sofa', center_cam=center, dimensions=dims, R_cam=R.tolist(),
               bbox3D_cam=cube_rcnn_corners(center + dims, R).tolist(), valid3D=True, behind_camera=False)
    js = dict(images=[dict(id=0, file_path='im.png', width=48, height=32, K=K)], annotations=[ann])
    return write(tmp_path, js), ann


def test_omni3d_dimensions_are_w_h_l_with_l_along_the_object_x_axis(tmp_path):
    K = [[40.0, 0, 23.5], [0, 40.0, 15.5], [0, 0, 1]]
    path, ann = hand_written_omni3d(tmp_path, dims=[0.5, 1.0, 2.0], yaw=0.7, K=K)   # W != L, yaw != 0
    o = data.load_omni3d(path, str(tmp_path), ('box',)).records[0]['objects'][0]
    assert np.allclose(o['size'], [2.0, 1.0, 0.5]) and o['yaw'] == pytest.approx(0.7)
    assert same_corners(scenes.box_corners(o['center'], o['size'], o['yaw']), ann['bbox3D_cam'])
    box = data.make_qa([o], 'box', np.random.default_rng(0))['target']
    assert metrics.box_iou_3d(box, [0.3, 0.4, 4.0, 2.0, 1.0, 0.5, 0.7]) == pytest.approx(1.0)


def test_omni3d_intrinsics_gain_half_a_pixel_on_load_and_lose_it_on_export(tmp_path):
    K = [[40.0, 0, 23.5], [0, 40.0, 15.5], [0, 0, 1]]            # Omni3D: the image centre is (23.5, 15.5)
    path, _ = hand_written_omni3d(tmp_path, dims=[0.5, 1.0, 2.0], yaw=0.7, K=K)
    K_ours = data.load_omni3d(path, str(tmp_path), ('box',)).records[0]['K']
    assert np.allclose(K_ours, [[40, 0, 24], [0, 40, 16], [0, 0, 1]])   # ours: (W/2, H/2)
    X = np.array([[0.5, -0.2, 3.0]])                               # a point seen at Omni3D pixel (u, v) ...
    assert np.allclose(scenes.project(K_ours, X), scenes.project(np.array(K), X) + 0.5)   # ... is (u+½, v+½) here
    sc = scenes.sample_scene(3, TINY.scene)
    js = json.loads(open(data.export_omni3d([sc], str(tmp_path / 'out'))).read())
    assert np.allclose(js['images'][0]['K'], sc.K - [[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]])


def test_exported_boxes_give_cube_rcnn_corners(tmp_path):
    checked = 0
    for seed in range(20):
        sc = scenes.sample_scene(seed, TINY.scene)
        js = json.loads(open(data.export_omni3d([sc], str(tmp_path / str(seed)))).read())
        back = data.load_omni3d(os.path.join(tmp_path, str(seed), 'omni3d.json'), str(tmp_path / str(seed)), ('detect',))
        for o, ann, b in zip(sc.objects, js['annotations'], back.records[0]['objects']):
            W, H, L = ann['dimensions']
            assert (W, H, L) == (o.size[2], o.size[1], o.size[0])
            assert np.allclose(ann['bbox3D_cam'], cube_rcnn_corners(ann['center_cam'] + ann['dimensions'], ann['R_cam']))
            assert same_corners(ann['bbox3D_cam'], scenes.box_corners(o.center, o.size, o.yaw))
            assert np.allclose(b['size'], o.size) and np.allclose(b['center'], o.center)
            checked += abs(W - L) > 0.1 and abs(math.sin(2 * o.yaw)) > 0.1   # W != L, yaw not a multiple of 90°
        if checked >= 3:
            break
    assert checked >= 3


def test_tilted_camera_pose_in_items_and_boxes_in_the_gravity_aligned_frame(tmp_path):
    # items carry c2w (identity when level), unchanged by crops and zooms; depth and center answers
    # stay in the camera frame; box answers' x y z w h l yaw describe the box exactly in the
    # gravity-aligned frame (R·centre, yaw about gravity); Omni3D export writes the exact R_cam
    tilt = scenes.SceneConfig(image_hw=(32, 32), n_objects=(2, 2), pitch_range=(5, 20), roll_range=(-10, 10))
    cfg = data.DataConfig(scene=tilt, tasks=('depth', 'center', 'box'))
    plain = data.SyntheticDataset(cfg, 'train', 3)
    aug = data.SyntheticDataset(cfg, 'train', 3, augment=augment.AugmentConfig(p_identity=0.0))
    for i in range(3):
        c2w = torch.tensor(scenes.sample_scene(data.scene_seed('train', i), tilt).c2w, dtype=torch.float32)
        assert torch.equal(plain[i]['c2w'], c2w) and not torch.equal(c2w[:3, :3], torch.eye(3))
        assert torch.equal(aug[i]['c2w'], c2w) and not torch.equal(aug[i]['K'], plain[i]['K'])
    assert data.collate([plain[i] for i in range(3)])['c2w'].shape == (3, 4, 4)
    level = data.collate([data.SyntheticDataset(TINY, 'val', 2)[i] for i in range(2)])
    assert torch.equal(level['c2w'], torch.eye(4).expand(2, 4, 4))
    for seed in range(3):
        sc = scenes.sample_scene(seed, tilt)
        R, objs = sc.c2w[:3, :3], data.scene_objects(sc)
        for task in ('depth', 'center', 'box', 'detect'):
            qa = data.make_qa(objs, task, np.random.default_rng(seed))
            if task == 'detect':
                boxes = dict(qa['target'])
            else:
                o = next(o for o in sc.objects if o.name in qa['question'])
                boxes = {o.name: qa['target']} if task == 'box' else {}
                expect = dict(depth=o.center[2], center=o.center).get(task)
                assert expect is None or np.allclose(qa['target'], expect)
            for o in sc.objects:
                if o.name in boxes:
                    x, y, z, w, h, l, yaw = boxes[o.name]
                    assert np.allclose([x, y, z], R @ o.center) and np.allclose([w, h, l], o.size)
                    world = scenes.box_corners(np.array([x, y, z]), np.array([w, h, l]), yaw)   # (8, 3)
                    assert same_corners(world @ R, scenes.box_corners(o.center, o.size, o.R_cam))   # Rᵀ·X
        js = json.loads(open(data.export_omni3d([sc], str(tmp_path / str(seed)))).read())
        for o, ann in zip(sc.objects, js['annotations']):
            assert np.allclose(ann['R_cam'], R.T @ scenes.rot_y(o.yaw))
            assert same_corners(ann['bbox3D_cam'], scenes.box_corners(o.center, o.size, o.R_cam))
