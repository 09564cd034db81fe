"""
Guards omni3d.py: the export -> load round trip of synthetic scenes gives back the same samples;
malformed files fail naming the file, the record and the field; repeated categories and invalid
boxes are counted, not asked about; Omni3D's own conventions hold: dimensions [W, H, L] with L
along the object's x axis, Cube R-CNN's corner order, pixel centres at integers (½ px on load and
export), and a tilted camera's exact R_cam.

    python -m pytest tests/test_omni3d.py -q
"""
import copy
import json
import math
import os
import re

import numpy as np
import pytest
import torch

from common import metrics
from data import omni3d, synthetic
from world import scenes

TINY = synthetic.DataConfig(scene=scenes.SceneConfig(image_hw=(32, 32)))


def test_omni3d_round_trip(tmp_path):
    ds = synthetic.SyntheticDataset(TINY, 'val', 5)
    path = omni3d.export_omni3d(ds, str(tmp_path))
    back = omni3d.load_omni3d(path, str(tmp_path), TINY.tasks, TINY.task_weights)
    assert len(back) == 5
    for i in range(5):
        a, b = ds[i], back[i]
        assert (a['question'], a['answer'], a['task'], a['seed']) == (b['question'], b['answer'], b['task'], b['seed'])
        assert torch.equal(a['image'], b['image']) and torch.equal(a['K'], b['K'])
        assert not b['depth'].any() and not b['points'].any()     # real data: geometry unknown (0)
        for task in synthetic.TASKS:                                    # every task, not just the drawn one
            objs = synthetic.scene_objects(scenes.sample_scene(a['seed'], TINY.scene))
            if synthetic.feasible(objs, task):
                qa = synthetic.make_qa(objs, task, np.random.default_rng(7))
                qb = synthetic.make_qa(back.records[i]['objects'], task, np.random.default_rng(7))
                assert (qa['question'], qa['answer']) == (qb['question'], qb['answer'])


def write(tmp_path, js):
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps(js))
    return str(path)


def test_malformed_omni3d_files_name_the_record(tmp_path):
    good = json.loads(open(omni3d.export_omni3d(synthetic.SyntheticDataset(TINY, 'test', 2), str(tmp_path))).read())
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
            omni3d.load_omni3d(write(tmp_path, js), str(tmp_path))
        assert 'bad.json' in str(e.value)
    (tmp_path / 'bad.json').write_text('{"images": [')
    with pytest.raises(ValueError, match='bad.json: not valid JSON'):
        omni3d.load_omni3d(str(tmp_path / 'bad.json'), str(tmp_path))
    ds = omni3d.load_omni3d(write(tmp_path, good), str(tmp_path))      # a truncated image: its path named
    png = ds.records[1]['file']
    with open(png, 'rb') as f:
        head = f.read(200)
    with open(png, 'wb') as f:
        f.write(head)
    ds[0]
    with pytest.raises(ValueError, match=re.escape(png) + ': cannot read the image'):
        ds[1]


def test_omni3d_repeated_categories_and_invalid_boxes(tmp_path):
    js = json.loads(open(omni3d.export_omni3d([scenes.sample_scene(5, TINY.scene)], str(tmp_path))).read())
    ann = js['annotations'][0]
    named = [('Chair', True), ('chair', True), ('lamp', False), ('Night  Stand', True)]
    js['annotations'] = [dict(ann, id=k, category_name=n, valid3D=v) for k, (n, v) in enumerate(named)]
    ds = omni3d.load_omni3d(write(tmp_path, js), str(tmp_path), tasks=('depth', 'detect'), task_weights=(1, 0))
    assert ds.skipped_annotations == 1 and len(ds) == 1
    assert [o['name'] for o in ds.records[0]['objects']] == ['chair', 'chair', 'night stand']
    assert 'night stand' in ds[0]['question'] and ds[0]['task'] == 'depth'
    with pytest.raises(ValueError, match=r"no usable image: 1 images, 4 annotations \(1 skipped.*'distance'"):
        omni3d.load_omni3d(write(tmp_path, js), str(tmp_path), tasks=('distance',))   # one unique name: nothing to ask
    js['images'].append(dict(js['images'][0], id=js['images'][0]['id'] + 1))      # an image with no object
    ds = omni3d.load_omni3d(write(tmp_path, js), str(tmp_path), tasks=('depth',))
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
    o = omni3d.load_omni3d(path, str(tmp_path), ('box',)).records[0]['objects'][0]
    assert np.allclose(o['size'], [2.0, 1.0, 0.5]) and o['yaw'] == pytest.approx(0.7)
    assert same_corners(scenes.box_corners(o['center'], o['size'], o['yaw']), ann['bbox3D_cam'])
    box = synthetic.make_qa([o], 'box', np.random.default_rng(0))['target']
    assert metrics.box_iou_3d(box, [0.3, 0.4, 4.0, 2.0, 1.0, 0.5, 0.7]) == pytest.approx(1.0)


def test_omni3d_intrinsics_gain_half_a_pixel_on_load_and_lose_it_on_export(tmp_path):
    K = [[40.0, 0, 23.5], [0, 40.0, 15.5], [0, 0, 1]]            # Omni3D: the image centre is (23.5, 15.5)
    path, _ = hand_written_omni3d(tmp_path, dims=[0.5, 1.0, 2.0], yaw=0.7, K=K)
    K_ours = omni3d.load_omni3d(path, str(tmp_path), ('box',)).records[0]['K']
    assert np.allclose(K_ours, [[40, 0, 24], [0, 40, 16], [0, 0, 1]])   # ours: (W/2, H/2)
    X = np.array([[0.5, -0.2, 3.0]])                               # a point seen at Omni3D pixel (u, v) ...
    assert np.allclose(scenes.project(K_ours, X), scenes.project(np.array(K), X) + 0.5)   # ... is (u+½, v+½) here
    sc = scenes.sample_scene(3, TINY.scene)
    js = json.loads(open(omni3d.export_omni3d([sc], str(tmp_path / 'out'))).read())
    assert np.allclose(js['images'][0]['K'], sc.K - [[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]])   # written out, not omni3d's constant


def test_exported_boxes_give_cube_rcnn_corners(tmp_path):
    checked = 0
    for seed in range(20):
        sc = scenes.sample_scene(seed, TINY.scene)
        js = json.loads(open(omni3d.export_omni3d([sc], str(tmp_path / str(seed)))).read())
        back = omni3d.load_omni3d(os.path.join(tmp_path, str(seed), 'omni3d.json'), str(tmp_path / str(seed)), ('detect',))
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


def test_export_of_a_tilted_camera_writes_the_exact_R_cam(tmp_path):
    tilt = scenes.SceneConfig(image_hw=(32, 32), n_objects=(2, 2), pitch_range=(5, 20), roll_range=(-10, 10))
    for seed in range(3):
        sc = scenes.sample_scene(seed, tilt)
        R = sc.c2w[:3, :3]
        js = json.loads(open(omni3d.export_omni3d([sc], str(tmp_path / str(seed)))).read())
        for o, ann in zip(sc.objects, js['annotations']):
            assert np.allclose(ann['R_cam'], R.T @ scenes.rot_y(o.yaw))
            assert same_corners(ann['bbox3D_cam'], scenes.box_corners(o.center, o.size, o.R_cam))
