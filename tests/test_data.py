"""
Guards synthetic.py: answers have the documented format and parse back (here and with metrics.py's
parsers) to their targets; referring tasks name only unique objects; dataset items are a pure
function of (split, index) with disjoint splits, weighted task mixes and exact augmentation;
collate stacks; a tilted camera's pose rides with its items and its box answers are exact in the
gravity-aligned frame. (Omni3D files: test_omni3d.py.)

    python -m pytest tests/test_data.py -q
"""
import math
import re

import numpy as np
import pytest
import torch

import augment
from common import metrics
from data import synthetic
from world import raycast, scenes

TINY = synthetic.DataConfig(scene=scenes.SceneConfig(image_hw=(32, 32)))
NUM = r'-?\d+\.\d\d'


def objects(seed=0, n=4):
    return synthetic.scene_objects(scenes.sample_scene(seed, scenes.SceneConfig(n_objects=(n, n))))


def test_fmt_two_decimals_no_negative_zero():
    assert [synthetic.fmt(x) for x in (3.14159, -0.001, 0.0, -1.236, 2)] == ['3.14', '0.00', '0.00', '-1.24', '2.00']


@pytest.mark.parametrize('task', synthetic.TASKS)
def test_answers_parse_back_to_targets(task):
    for seed in range(8):
        objs = objects(seed)
        by_name = {o['name']: o for o in objs}
        qa = synthetic.make_qa(objs, task, np.random.default_rng(seed))
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
    for task in synthetic.TASKS:
        qs = {synthetic.make_qa(objs, task, np.random.default_rng(s))['question'] for s in range(30)}
        assert len(qs) >= 3, task


def test_referring_tasks_name_only_unique_objects():
    objs = [dict(name=n, center=np.array(c, float), size=np.ones(3), yaw=0.0)
            for n, c in [('chair', (0, 1, 2)), ('table', (1, 1, 4)), ('chair', (-1, 1, 3))]]
    for s in range(10):
        for task in ('depth', 'center', 'box', 'size'):
            qa = synthetic.make_qa(objs, task, np.random.default_rng(s))
            assert 'table' in qa['question'] and 'chair' not in qa['question']
    for task in ('distance', 'closer'):
        with pytest.raises(ValueError, match='unique names'):
            synthetic.make_qa(objs, task, np.random.default_rng(0))
    assert synthetic.make_qa(objs, 'detect', np.random.default_rng(0))['answer'].count('chair') == 2


def test_items_are_a_function_of_split_and_index():
    a, b = synthetic.SyntheticDataset(TINY, 'train', 6), synthetic.SyntheticDataset(TINY, 'train', 6)
    it = a[3]
    assert it['image'].dtype == torch.uint8 and it['image'].shape == (3, 32, 32)
    assert it['K'].dtype == torch.float32 and it['K'].shape == (3, 3)
    assert it['depth'].shape == (32, 32) and it['points'].shape == (32, 32, 3)
    for key, v in b[3].items():
        assert torch.equal(v, it[key]) if torch.is_tensor(v) else v == it[key], key
    assert it['seed'] == synthetic.scene_seed('train', 3)
    seeds = {s: {synthetic.SyntheticDataset(TINY, s, 3)[i]['seed'] for i in range(3)} for s in synthetic.SPLITS}
    assert not (seeds['train'] & seeds['val'] or seeds['val'] & seeds['test'] or seeds['train'] & seeds['test'])
    with pytest.raises(IndexError):
        a[6]


def test_task_mix():
    cfg = synthetic.DataConfig(scene=TINY.scene, tasks=('depth', 'closer', 'size'), task_weights=(0, 0, 1))
    assert {synthetic.SyntheticDataset(cfg, 'val', 8)[i]['task'] for i in range(8)} == {'size'}
    cfg = synthetic.DataConfig(scene=TINY.scene, tasks=('depth', 'closer'))
    assert {synthetic.SyntheticDataset(cfg, 'val', 12)[i]['task'] for i in range(12)} == {'depth', 'closer'}
    with pytest.raises(ValueError, match='tasks'):
        synthetic.SyntheticDataset(synthetic.DataConfig(scene=TINY.scene, tasks=('depth', 'colour')))
    with pytest.raises(ValueError, match='two objects'):
        synthetic.SyntheticDataset(synthetic.DataConfig(scene=TINY.scene, tasks=('closer',)))


def test_collate():
    ds = synthetic.SyntheticDataset(TINY, 'val', 3)
    batch = synthetic.collate([ds[i] for i in range(3)])
    assert batch['images'].shape == (3, 3, 32, 32) and batch['K'].shape == (3, 3, 3)
    assert batch['depth'].shape == (3, 32, 32) and batch['points'].shape == (3, 32, 32, 3)
    assert len(batch['question']) == len(batch['target']) == len(batch['seed']) == 3
    other = synthetic.SyntheticDataset(synthetic.DataConfig(scene=scenes.SceneConfig(image_hw=(16, 16))), 'val', 1)[0]
    with pytest.raises(ValueError, match='one image size'):
        synthetic.collate([ds[0], other])


def test_augmented_items_keep_answers_and_geometry_follows_K():
    plain = synthetic.SyntheticDataset(TINY, 'train', 6)
    aug = synthetic.SyntheticDataset(TINY, 'train', 6, augment=augment.AugmentConfig(p_identity=0.0))
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
    cfg = synthetic.DataConfig(scene=scenes.SceneConfig(image_hw=(64, 64), n_objects=(1, 3)), tasks=('depth',))
    plain = synthetic.SyntheticDataset(cfg, 'train', 4)
    aug = synthetic.SyntheticDataset(cfg, 'train', 4, augment=augment.AugmentConfig(p_identity=0.0))
    for i in range(4):
        sc = scenes.sample_scene(synthetic.scene_seed('train', i), cfg.scene)
        inst = torch.from_numpy(raycast.render(sc)['instance'])
        zs = torch.tensor([o.center[2] for o in sc.objects], dtype=torch.float32)
        obj = plain[i]['object_depth']
        assert torch.equal(obj > 0, inst >= 0) and torch.equal(obj[inst >= 0], zs[inst[inst >= 0]])
        warped = aug[i]['object_depth']
        assert set(warped[warped > 0].tolist()) <= set(zs.tolist()) and (warped > 0).any()
    batch = synthetic.collate([plain[i] for i in range(4)])
    assert batch['object_depth'].shape == (4, 64, 64)


def same_corners(a, b, atol=1e-6):
    """The same 8 points, in any order."""
    d = np.linalg.norm(np.asarray(a, float)[:, None] - np.asarray(b, float)[None], axis=-1)   # (8, 8)
    return d.min(0).max() < atol and d.min(1).max() < atol


def test_tilted_camera_pose_in_items_and_boxes_in_the_gravity_aligned_frame():
    # items carry c2w (identity when level), unchanged by crops and zooms; depth and center answers
    # stay in the camera frame; box answers' x y z w h l yaw describe the box exactly in the
    # gravity-aligned frame (R·centre, yaw about gravity)
    tilt = scenes.SceneConfig(image_hw=(32, 32), n_objects=(2, 2), pitch_range=(5, 20), roll_range=(-10, 10))
    cfg = synthetic.DataConfig(scene=tilt, tasks=('depth', 'center', 'box'))
    plain = synthetic.SyntheticDataset(cfg, 'train', 3)
    aug = synthetic.SyntheticDataset(cfg, 'train', 3, augment=augment.AugmentConfig(p_identity=0.0))
    for i in range(3):
        c2w = torch.tensor(scenes.sample_scene(synthetic.scene_seed('train', i), tilt).c2w, dtype=torch.float32)
        assert torch.equal(plain[i]['c2w'], c2w) and not torch.equal(c2w[:3, :3], torch.eye(3))
        assert torch.equal(aug[i]['c2w'], c2w) and not torch.equal(aug[i]['K'], plain[i]['K'])
    assert synthetic.collate([plain[i] for i in range(3)])['c2w'].shape == (3, 4, 4)
    level = synthetic.collate([synthetic.SyntheticDataset(TINY, 'val', 2)[i] for i in range(2)])
    assert torch.equal(level['c2w'], torch.eye(4).expand(2, 4, 4))
    for seed in range(3):
        sc = scenes.sample_scene(seed, tilt)
        R, objs = sc.c2w[:3, :3], synthetic.scene_objects(sc)
        for task in ('depth', 'center', 'box', 'detect'):
            qa = synthetic.make_qa(objs, task, np.random.default_rng(seed))
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


def test_render_augment_draws_the_same_camera_and_renders_it_instead_of_warping_it():
    import augment
    from world import scenes as world_scenes
    cfg = synthetic.DataConfig(scene=world_scenes.SceneConfig(image_hw=(64, 64), n_objects=(1, 1), visible_zoom=(0.5, 2.0),
                                                              pitch_range=(5, 15)), tasks=('depth',))
    aug = augment.AugmentConfig(p_identity=0.0, zoom_range=(0.5, 0.6), shift_frac=0.0)     # always zoomed out
    warped = synthetic.SyntheticDataset(cfg, 'train', 4, aug)
    rendered = synthetic.SyntheticDataset(synthetic.DataConfig(**{**cfg.__dict__, 'render_augment': True}), 'train', 4, aug)
    for i in range(4):
        a, b = warped[i], rendered[i]
        assert torch.allclose(a['K'], b['K']) and a['answer'] == b['answer']          # one camera, one question
        assert a['image'][:, 0].sum() == 0 and b['image'][:, 0].sum() > 0            # black border / the room
        assert (b['depth'] > 0).all()                                                # every pixel sees the room
