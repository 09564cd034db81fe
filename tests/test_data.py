"""
Guards data.py: answers have the documented format and parse back (here and with metrics.py's
parsers) to their targets; referring tasks name only unique objects; dataset items are a pure
function of (split, index) with disjoint splits, weighted task mixes and exact augmentation;
collate stacks; the Omni3D export -> load round trip gives back the same samples; malformed Omni3D
files fail naming the file and the record.

    python -m pytest tests/test_data.py -q
"""
import copy
import json
import math
import re

import numpy as np
import pytest
import torch

import augment
import data
import metrics
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


def test_omni3d_repeated_categories_and_invalid_boxes(tmp_path):
    js = json.loads(open(data.export_omni3d([scenes.sample_scene(5, TINY.scene)], str(tmp_path))).read())
    ann = js['annotations'][0]
    named = [('Chair', True), ('chair', True), ('lamp', False), ('Night  Stand', True)]
    js['annotations'] = [dict(ann, id=k, category_name=n, valid3D=v) for k, (n, v) in enumerate(named)]
    ds = data.load_omni3d(write(tmp_path, js), str(tmp_path), tasks=('depth', 'detect'), task_weights=(1, 0))
    assert ds.skipped_annotations == 1 and len(ds) == 1
    assert [o['name'] for o in ds.records[0]['objects']] == ['chair', 'chair', 'night stand']
    assert 'night stand' in ds[0]['question'] and ds[0]['task'] == 'depth'
    ds = data.load_omni3d(write(tmp_path, js), str(tmp_path), tasks=('distance',))
    assert len(ds) == 0 and ds.images_without_questions == 1      # one unique name: nothing to ask
