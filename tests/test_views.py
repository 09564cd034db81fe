"""
Guards views.py (posed multi-frame rooms) and the multi-frame path of model.py: the pose convention,
Plücker lines through points seen in two frames, world-frame point maps that agree across frames,
exact questions, answers that state the measurements deciding them, and frame markers in the prompt.
Run alone: python -m pytest -q tests/test_views.py
"""
import json

import numpy as np
import pytest
import torch

import camera_embed
from common import metrics
from data import synthetic
from data.tokens import char_tokenizer, prompt_ids
from model import CameraAwareMLLM, ModelConfig
from multiframe import eval_views, items, train_views, views
import train
from world import raycast, scenes

CFG = views.ViewsConfig(frames=3, image_hw=(48, 48))


def views_args(argv):
    return train.parse_args(argv, train_views.ViewsTrainConfig)


def test_world_origin_is_on_the_floor_under_the_first_camera_and_rooms_repeat():
    v, frames = views.sample_views(5, CFG)
    assert np.allclose(v.c2w[0, :3, 3], [0, -v.camera_height, 0])
    assert np.allclose(v.c2w[:, 1, 3], -v.camera_height)                 # a hand-held camera at one height
    for R in v.c2w[:, :3, :3]:
        assert np.allclose(R.T @ R, np.eye(3)) and np.isclose(np.linalg.det(R), 1)
    again, frames2 = views.sample_views(5, CFG)
    assert np.array_equal(frames['image'], frames2['image']) and np.array_equal(v.seen, again.seen)
    assert all(o.center[1] == -o.size[1] / 2 for o in v.objects)          # resting on the floor y = 0


def test_pose_round_trip_world_camera_pixel_ray_world():
    v, _ = views.sample_views(7, CFG)
    rng = np.random.default_rng(0)
    for k in range(len(v.c2w)):
        R, o = v.c2w[k, :3, :3], v.c2w[k, :3, 3]
        X = o + np.column_stack([rng.uniform(-1, 1, (20, 2)), rng.uniform(1, 8, 20)]) @ R.T   # (20, 3) ahead
        X_cam = (X - o) @ R                                                # world -> camera: Rᵀ(X − o)
        uv = scenes.project(v.K, X_cam)                                    # -> pixel
        r = camera_embed.camera_rays(torch.tensor(v.K), torch.tensor(uv))[0].double().numpy()   # K⁻¹[u, v, 1]
        back = o + (r * X_cam[:, 2:]) @ R.T                                # ray · depth -> world
        assert np.allclose(back, X, atol=1e-9)


def test_a_point_seen_in_two_frames_lies_on_both_pluecker_lines():
    v, _ = views.sample_views(3, CFG)
    i = int(np.nonzero(v.seen.sum(0) >= 2)[0][0])                         # an object seen in two frames
    X = v.objects[i].center
    moments = []
    for k in np.nonzero(v.seen[:, i])[0]:
        R, o = v.c2w[k, :3, :3], v.c2w[k, :3, 3]
        uv = scenes.project(v.K, ((X - o) @ R)[None])                      # (1, 2)
        dirs = camera_embed.camera_rays(torch.tensor(v.K), torch.tensor(uv)).double()
        d, m = camera_embed.plucker(dirs, torch.tensor(v.c2w[k])).numpy()[0, 0].reshape(2, 3)
        assert np.allclose(m, np.cross(X, d), atol=1e-9)                   # moment = p × d̂ for any p on the line
        assert np.allclose(np.cross(X - o, d), 0, atol=1e-9)               # d̂ points from o to X
        moments.append(m)
    assert np.linalg.norm(moments[0]) > 0.1 and not np.allclose(moments[0], moments[1])   # poses: moments carry them


def test_world_point_maps_of_two_frames_agree_on_the_same_surface():
    """A pixel of frame 0 sees X; frame k is rendered with its principal point moved so X falls on a
    pixel centre exactly; where frame k sees X too (its depth there is X's), its world point is X."""
    v, frames = views.sample_views(11, CFG)
    world0 = views.world_points(frames['points'], v.c2w)[0]               # (H, W, 3)
    rng, checked = np.random.default_rng(1), 0
    for _ in range(60):
        row, col = rng.integers(0, 48, 2)
        if not np.isfinite(frames['depth'][0, row, col]):
            continue
        X, k = world0[row, col].astype(np.float64), int(rng.integers(1, 3))
        R, o = v.c2w[k, :3, :3], v.c2w[k, :3, 3]
        uv = scenes.project(v.K, ((X - o) @ R)[None])[0]
        if not (1 <= uv[0] < 47 and 1 <= uv[1] < 47):
            continue
        K = v.K.copy()
        K[:2, 2] += np.floor(uv) + 0.5 - uv                                 # X now projects to a pixel centre
        out = raycast.render(views.frame_scene(v, k), K=K)
        c, r = np.floor(uv).astype(int)
        if abs(out['depth'][r, c] - ((X - o) @ R)[2]) > 1e-3:               # frame k sees something nearer
            continue
        Xk = views.world_points(out['points'][None], v.c2w[k:k + 1])[0, r, c]
        assert np.allclose(Xk, X, atol=2e-3), (X, Xk)
        checked += 1
    assert checked >= 10


def test_scaled_room_gives_the_same_pixels_and_scaled_answers():
    v, frames = views.sample_views(2, CFG)
    big = eval_views.scale_views(v, 2.0)
    frames2 = views.render_views(big)
    assert (np.abs(frames2['image'].astype(int) - frames['image']).max(-1) > 8).mean() < 0.01   # rounding at edges only
    rng = lambda: np.random.default_rng(0)
    for task, power in (('abs_distance', 1), ('object_size', 1), ('room_size', 2)):
        a, b = views.make_view_qa(v, task, rng()), views.make_view_qa(big, task, rng())
        assert b['question'] == a['question'] and np.isclose(b['target'], a['target'] * 2 ** power)


def test_questions_are_exact():
    v, _ = views.sample_views(4, CFG)
    seen = views.seen_objects(v)
    count = views.make_view_qa(v, 'object_count', np.random.default_rng(0))
    assert count['answer'] == str(len(seen)) == str(int(v.seen.any(0).sum()))
    assert views.side_of(np.zeros(3), np.array([0, 0, 1.0]), np.array([1.0, 0, 1])) > 0   # +x is right facing +z
    assert views.side_of(np.zeros(3), np.array([1.0, 0, 0]), np.array([1.0, 0, 1])) < 0   # facing +x, +z is left
    for task in views.VIEW_TASKS:
        if views.feasible(v, task):
            qa = views.make_view_qa(v, task, np.random.default_rng(3))
            assert metrics.score(task, qa['answer'], qa['target'])[
                'mra' if task in views.NUMBER_TASKS else 'acc'] == 1.0
            assert metrics.score(task, 'no', qa['target'])['mra' if task in views.NUMBER_TASKS else 'acc'] == 0.0
    order = views.make_view_qa(v, 'appearance_order', np.random.default_rng(0))   # lettered options
    first = {o.name: k for o, k in seen}
    assert order['options'] == ['A', 'B'] and f"A. {order['objects'][0]} B. {order['objects'][1]}" in order['question']
    chosen = order['objects'][order['options'].index(order['answer'])]
    assert first[chosen] < first[next(n for n in order['objects'] if n != chosen)]
    near = views.make_view_qa(v, 'rel_distance', np.random.default_rng(1))          # objects: [X, options...]
    centre = {o.name: o.center for o in v.objects}
    dist = [np.linalg.norm(centre[n] - centre[near['objects'][0]]) for n in near['objects'][1:]]
    assert near['answer'] == 'ABC'[int(np.argmin(dist))]


def test_reasoned_answers_state_the_measurements_that_decide_the_choice():
    rng = np.random.default_rng(0)
    for _ in range(200):                                        # the bearing decides the side, as side_of
        a, b, c = rng.normal(size=(3, 3))
        turn = (views.bearing(a, c) - views.bearing(a, b) + 180) % 360 - 180
        assert np.sign(turn) == np.sign(views.side_of(a, b, c)) or abs(views.side_of(a, b, c)) < 1e-12
    assert views.bearing(np.zeros(3), np.array([1.0, 0, 0])) == 90                # +x is right of forward
    cfg, checked = views.ViewsConfig(frames=3, image_hw=(48, 48), n_objects=(3, 4)), set()
    for seed in range(8):
        v, _ = views.sample_views(seed, cfg)
        for task in views.VIEW_TASKS:
            if not views.feasible(v, task):
                continue
            plain, said = views.ask(v, task, seed), views.ask(v, task, seed, reasons=True)
            assert said['question'] == plain['question'] and said['target'] == plain['target']   # the same question
            if task in views.NUMBER_TASKS:
                assert said['answer'] == plain['answer'] and not said['measured']
                continue
            head, choice = said['answer'].rsplit(': ', 1)
            assert choice == plain['answer'] and metrics.score(task, said['answer'], said['target'])['acc'] == 1.0
            names, values = zip(*(p.rsplit(' ', 1) for p in head.split(', ')))
            x = [float(n) for n in values]
            if task == 'rel_direction':                         # the object faced, then the one asked about
                turn = (x[1] - x[0] + 180) % 360 - 180
                assert list(names) == plain['objects'][1:] and choice == ('right' if turn > 0 else 'left')
            else:                                               # the smaller number is the option chosen
                assert list(names) == plain['options'] and choice == names[int(np.argmin(x))]
            assert views.read_reasons(said['answer']) == x and views.decide(task, x, plain['options']) == choice
            if task == 'appearance_order':
                first = {o.name: k + 1 for o, k in views.seen_objects(v)}
                assert x == [first[n] for n in plain['objects']]
            checked.add(task)
    assert checked == set(views.VIEW_TASKS) - set(views.NUMBER_TASKS)
    run = views_args(['--frames', '3', '--image-size', '48', '--room-objects', '3,4', '--questions', '7',
                            '--tasks', 'rel_distance,rel_direction,appearance_order', '--reasons'])
    item = items.ViewsDataset(items.views_config(run), 'train', 4)[0]
    assert all(': ' in a for a in [item['answer'], *(a for _, a in item['turns'])])   # follow-ups too
    assert views.read_reasons('B') is None and views.read_reasons('A x, B 1: A') is None
    assert eval_views.views_config(dict(frames=3, reasons=True)).reasons and not eval_views.views_config(
        dict(frames=3)).reasons                                                   # older runs: the answer alone
    with pytest.raises(SystemExit):
        train.parse_args(['--reasons'])                                           # a multi-frame flag only


def test_grounding_question_lists_each_frames_seen_objects_left_to_right_and_is_never_evaluated():
    agree = total = 0
    for seed in range(6):
        v, frames = views.sample_views(seed, CFG)
        qa = views.ask(v, 'frame_objects', seed)
        rows = [row.split(': ') for row in qa['answer'].split('; ')]
        assert [k for k, _ in rows] == ['1', '2', '3']
        for k, (_, listed) in enumerate(rows):
            w2c = np.linalg.inv(v.c2w[k])                    # the centre's pixel column, through the inverse pose
            u = {o.name: (v.K @ (w2c @ np.append(o.center, 1))[:3])[[0, 2]] for i, o in enumerate(v.objects)
                 if v.seen[k, i]}
            assert listed == (', '.join(sorted(u, key=lambda n: u[n][0] / u[n][1])) or 'none')
            cols = {o.name: np.nonzero(frames['instance'][k] == i)[1].mean() for i, o in enumerate(v.objects)
                    if v.seen[k, i]}                         # the visible pixels' order: the same, but for cut-off ones
            agree, total = agree + (sorted(cols, key=cols.get) == sorted(u, key=lambda n: u[n][0] / u[n][1])), total + 1
        assert {n for _, listed in rows for n in listed.split(', ') if n != 'none'} == {
            o.name for o, _ in views.seen_objects(v)}                       # every seen object, counted once
    assert agree >= 0.75 * total
    cfg = views_args(['--frames', '3', '--tasks', 'object_count,frame_objects', '--questions', '2'])
    item = items.ViewsDataset(items.views_config(cfg), 'train', 4)[0]
    assert {item['question'], *(q for q, _ in item['turns'])} & set(views.PHRASES['frame_objects'])
    assert eval_views.views_config(dict(frames=3, tasks='object_count,frame_objects')).tasks == ('object_count',)


def test_seen_threshold_is_one_solid_angle_at_any_resolution_and_zoom():
    inst = -np.ones((1, 64, 64), int)
    inst[0, :2, :3], inst[0, 10, :5] = 0, 1                               # 6 pixels of object 0, 5 of object 1
    assert views.seen_matrix(inst, 2, 6).tolist() == [[True, False]]
    up = inst.repeat(2, 1).repeat(2, 2)                                   # the same frame at 128²: ×4 pixels
    assert views.seen_matrix(up, 2, 6).tolist() == [[True, False]]
    assert views.seen_matrix(up, 2, 6, zoom=0.5).tolist() == [[True, True]]   # zoomed out: 6 px hold more
    assert views.seen_matrix(inst, 2, 7).tolist() == [[False, False]]
    cfg = views_args(['--frames', '3', '--min-pixels', '24'])
    assert items.views_config(cfg).min_pixels == 24 == eval_views.views_config(dict(frames=3, min_pixels=24)).min_pixels
    assert eval_views.views_config(dict(frames=3)).min_pixels == 6                # older runs
    with pytest.raises(SystemExit):
        train.parse_args(['--min-pixels', '24'])                                  # a multi-frame flag only


def test_a_task_subset_redraws_rooms_where_it_cannot_be_asked():
    cfg = views.ViewsConfig(frames=3, image_hw=(48, 48), tasks=('appearance_order',))
    for seed in range(12):      # a room whose seen objects all appear in the first frame is drawn again
        v, _ = views.sample_views(seed, cfg)
        assert views.sample_view_qa(v, seed, cfg.tasks)['task'] == 'appearance_order'
    v, _ = views.sample_views(0, CFG)
    v.seen[:] = False
    v.seen[0, :2] = True        # two objects, both first seen in frame 1: no appearance order to ask
    with pytest.raises(ValueError, match='none of the tasks'):
        views.sample_view_qa(v, 0, ('appearance_order',))

def test_follow_up_questions_are_the_other_askable_tasks_each_asked_as_alone():
    cfg = views.ViewsConfig(frames=3, image_hw=(48, 48), questions=7)
    ds = items.ViewsDataset(cfg, 'train', 8)
    for i in range(4):
        item, seed = ds[i], synthetic.scene_seed('train', i)
        v, _ = views.sample_views(seed, cfg)
        first = views.sample_view_qa(v, seed)                       # the single-question item's question
        asked = [views.VIEW_TASKS[j] for j in views.asked_tasks(v, views.VIEW_TASKS)]
        assert item['question'] == first['question'] and len(item['turns']) == len(asked) - 1
        again = {qa['question']: qa['answer'] for qa in (views.make_view_qa(
            v, t, np.random.default_rng([seed, views.QA_STREAM + views.VIEW_TASKS.index(t)])) for t in asked)}
        assert all(again[q] == a for q, a in item['turns']) and first['question'] not in dict(item['turns'])
    assert len(views.follow_ups(v, seed, first['task'], 3)) == 2 and views.follow_ups(v, seed, first['task'], 1) == []
    assert 'turns' not in items.ViewsDataset(CFG, 'train', 8)[0]                 # one question: as before


def test_follow_ups_are_trained_on_their_answers_only():
    from data.tokens import encode_batch
    tok = char_tokenizer()
    batch = dict(images=torch.zeros(2, 2, 3, 8, 8, dtype=torch.uint8), question=['Q?', 'R?'], answer=['12', '3'],
                 K=torch.tensor([[8.0, 0, 4], [0, 8, 4], [0, 0, 1]]).expand(2, 2, 3, 3))
    one = encode_batch(tok, batch, n_image=2)
    two = encode_batch(tok, dict(batch, turns=[[('S?', '45')], []]), n_image=2)
    text = tok.decode([t for t in two['input_ids'][0].tolist() if t >= 0])
    assert text == '<bos>Frame 1: Frame 2:Q?\n12<eos>S?\n45<eos>'
    assert tok.decode(two['answer_ids'][0].tolist()) == '12<eos>45<eos>'              # answers and eos only
    ids = two['input_ids'][0]
    assert torch.equal(ids[two['answer_pos'][0] + 1], two['answer_ids'][0])        # each position predicts the next
    assert torch.equal(two['answer_pos'][0, :3], one['answer_pos'][0])              # the first turn as alone
    assert torch.equal(two['answer_ids'][1, :2], one['answer_ids'][1, :2]) and (two['answer_ids'][1, 2:] == -100).all()
    with pytest.raises(ValueError, match='follow-up questions'):
        encode_batch(tok, dict(batch, answer=None, turns=[[('S?', '45')], []]), n_image=2)


def test_teacher_object_channels_per_frame_are_each_frames_object_centre_depth():
    import augment
    import distill
    v, frames = views.sample_views(2, CFG)
    od = views.object_depths(v, frames['instance'])                          # (N, H, W)
    inst, depth = frames['instance'], frames['depth']
    assert ((od > 0) == (inst >= 0)).all()
    for k, i in zip(*np.nonzero([[(inst[k] == i).any() for i in range(len(v.objects))] for k in range(3)])):
        on = inst[k] == i                                     # the surface is within the object's reach of its centre
        assert np.allclose(od[k][on], od[k][on][0]) and np.abs(od[k][on] - depth[k][on]).max() <= max(v.objects[i].size)
        p = views.world_points(frames['points'], v.c2w)[k][on].mean(0)                 # same object, world frame
        assert np.linalg.norm(p - v.objects[i].center) <= max(v.objects[i].size)
    aug = augment.AugmentConfig(p_identity=0.0)
    item = items.make_views_item(frames, np.broadcast_to(v.K, (3, 3, 3)), v.c2w, {}, 2, aug, od)
    assert item['object_depth'].shape == item['depth'].shape                # through the same crops and zooms
    assert set(np.unique(item['object_depth'].numpy())) <= set(np.unique(od)) | {0.0}
    batch = synthetic.collate([dict(item, question='q', answer='a', task='t', target=0)] * 2)
    target, mask = distill.RenderedTeacher()(batch, (4, 4))                 # (B·N, 16, 3): object channels counted
    assert target.shape == (6, 16, 3) and mask[..., 1].all() and target[..., 1].max() > 0   # objects' share


def test_room_objects_flag_reaches_training_and_evaluation_rooms():
    cfg = views_args(['--frames', '3', '--room-objects', '1,2', '--questions', '4'])
    vc = items.views_config(cfg)
    assert vc.n_objects == (1, 2) and vc.questions == 4
    assert vc.object_channels and 'object_depth' in items.ViewsDataset(vc, 'train', 2)[0]
    off = items.views_config(views_args(['--frames', '3', '--no-object-channels']))
    assert not off.object_channels and 'object_depth' not in items.ViewsDataset(off, 'train', 2)[0]   # surface depth only
    assert eval_views.views_config(dict(frames=3, room_objects='1,2')).n_objects == (1, 2)
    assert eval_views.views_config(dict(frames=3)).n_objects == views.ViewsConfig().n_objects   # older runs
    counts = {len(views.sample_views(s, vc)[0].objects) for s in range(12)}
    assert counts <= {1, 2}
    for bad in ('3', '0,2', '2,1', '1,99', 'a,b'):
        with pytest.raises(ValueError, match='--room-objects'):
            items.room_objects(bad)
    with pytest.raises(ValueError, match='--questions'):
        items.views_config(views_args(['--frames', '3', '--questions', '0']))


def test_augmented_items_keep_exact_K_per_frame_and_the_model_reads_several_frames():
    import augment
    ds = items.ViewsDataset(CFG, 'train', 8, augment.AugmentConfig(p_identity=0.0))
    two = [ds[i] for i in range(2)]
    assert two[0]['image'].shape == (3, 3, 48, 48) and two[0]['K'].shape == (3, 3, 3)
    assert len({float(K[0, 0]) for K in two[0]['K']}) == 3                   # a zoom per frame
    batch = synthetic.collate(two)
    model = CameraAwareMLLM(ModelConfig(image_size=32, patch_size=8, vision_width=32, llm_width=32,
                                        vision_layers=1, llm_layers=1, geometry=False, zero_init=False))
    vis, _ = model.visual_tokens(batch['images'], batch['K'], batch['c2w'])
    assert vis.shape[:2] == (2, 3 * 16)                                     # frames one after another
    _, loss, _ = model(batch)
    assert torch.isfinite(loss)
    first = model.visual_tokens(batch['images'][:, :1], batch['K'][:, :1], batch['c2w'][:, :1])[0]
    assert torch.allclose(vis[:, :16], first, atol=1e-5)                    # frame 1 is encoded on its own


def test_frame_markers_separate_the_frames_and_one_frame_is_unchanged():
    tok = char_tokenizer()
    one, two = prompt_ids(tok, 'Q?', 4), prompt_ids(tok, 'Q?', 4, frames=2)
    assert prompt_ids(tok, 'Q?', 4, frames=1) == one
    assert two.count(-1) == 8 and tok.decode([t for t in two if t >= 0]) == '<bos>Frame 1: Frame 2:Q?\n'


@pytest.mark.parametrize('bad', [dict(frames=0), dict(pan=70.0), dict(walk=3.0)])
def test_bad_configs_are_named(bad):
    with pytest.raises(ValueError, match='ViewsConfig'):
        views.sample_views(0, views.ViewsConfig(**bad))


def test_train_frames_flag_runs_and_is_checked(tmp_path):
    from common import checkpoint
    out = str(tmp_path / 'run')
    train_views.main(['--frames', '2', '--image-size', '32', '--patch-size', '16', '--pixel-shuffle', '2',
                      '--batch-size', '2', '--max-steps', '2', '--warmup-steps', '1', '--val-samples', '2',
                      '--workers', '0', '--questions', '3', '--out', out])
    assert checkpoint.saved_config(out + '/ckpt', train_views.ViewsTrainConfig)['frames'] == 2
    log = [json.loads(line) for line in open(out + '/log.jsonl')]
    assert log[-1]['distill'] > 0                                                     # a target per frame
    with pytest.raises(ValueError, match='--frames trains on synthetic rooms'):
        train_views.main(['--frames', '2', '--teacher', 'some/depth-model', '--out', out])
    with pytest.raises(ValueError, match=r'--frames 0 \(1..16\)'):
        train_views.main(['--frames', '0', '--out', out])
    with pytest.raises(ValueError, match='unknown multi-frame task'):
        items.views_config(views_args(['--frames', '2', '--tasks', 'depth,closer']))


def test_reasons_summary_splits_a_choice_into_its_measuring_and_its_comparing():
    rec = lambda task, pred, answer='A 3.00, B 1.00: B', target='B', options=('A', 'B'): dict(
        task=task, camera='base', answer=answer, pred_text=pred, options=list(options), target=target)
    out = eval_views.reasons_summary([
        rec('rel_distance', 'A 2.50, B 1.50: B'),         # measured about right, and compared: right
        rec('rel_distance', 'A 1.00, B 2.00: B'),         # measured wrong, and its choice is not its measurements'
        rec('rel_distance', 'B'),                         # no measurements
        rec('rel_direction', 'x 160, y 175: right', 'x 170, y -170: right', 'right', ('left', 'right'))])
    d = out['rel_distance']
    assert (d['n'], d['stated'], d['consistent'], d['decided']) == (3, 2 / 3, 0.5, 0.5)
    assert np.isclose(d['error'], np.mean([0.3, 0.9, 1.0, 1.0]))           # 1 − MRA of each distance
    assert out['rel_direction']['error'] == 12.5 and out['rel_direction']['decided'] == 1.0   # wrapped: 15 and 10°
    assert 'appearance_order' not in out
    assert np.isclose(d['spread'], np.std([2.5, 1.5, 1.0, 2.0]) / np.std([3.0, 1.0, 3.0, 1.0]))   # stated / true
    assert eval_views.spread('rel_direction', [-124] * 9) < 1e-3 and eval_views.spread('rel_distance', [2.0] * 9) == 0
    assert np.isclose(eval_views.spread('rel_direction', [179, -179]), 1, atol=0.01)   # circular: across the wrap, 1°
    assert eval_views.spread('rel_direction', np.linspace(-180, 180, 360, endpoint=False)) > 180   # uniform: no mean


def CFG_K(size):
    return scenes.camera_K('standard', (size, size))
