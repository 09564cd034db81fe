"""
Guards eval_views.py: the two zoom protocols, paired questions that stay asked through every
camera, the constant-answer baselines, the pose-scale response, and eval.py handing a --frames
checkpoint over to it end to end.  Run alone: python -m pytest -q tests/test_eval_views.py
"""
import json

import math

import numpy as np
import pytest
import torch

from data import synthetic
import eval
from multiframe import eval_views, views

CFG = views.ViewsConfig(frames=2, image_hw=(32, 32))


def test_protocols_zoom_all_frames_or_only_the_odd_ones():
    cams = {name: zoom for name, _, zoom in eval_views.sweep_cameras((0.5, 1.0, 2.0), 3)}
    assert list(cams) == ['all_zoom_0.50', 'all_zoom_1.00', 'all_zoom_2.00', 'some_zoom_0.50', 'some_zoom_2.00']
    assert cams['all_zoom_2.00'].tolist() == [2, 2, 2] and cams['some_zoom_2.00'].tolist() == [1, 2, 1]


def test_paired_items_are_the_same_questions_through_every_camera():
    cams = eval_views.sweep_cameras((0.8, 1.0, 1.25), CFG.frames)
    items, _ = eval_views.sweep_items(CFG, 4, cams)
    by_cam = {}
    for it in items:
        by_cam.setdefault(it['camera'], []).append((it['scene'], it['question'], it['answer']))
    paired = [v for k, v in by_cam.items() if k != 'base']
    assert paired[0] and all(v == paired[0] for v in paired)
    assert set(paired[0]) <= set(by_cam['base'])
    zoomed = next(it for it in items if it['camera'] == 'all_zoom_1.25')
    assert zoomed['image'].shape == (2, 3, 32, 32) and np.isclose(float(zoomed['K'][1, 0, 0]), 1.25 * CFG.image_hw[1]
                                                                   / 2 / np.tan(np.radians(30)), rtol=1e-5)


def test_still_asked_follows_what_each_lens_sees():
    v, _ = views.sample_views(1, CFG)
    count = views.make_view_qa(v, 'object_count', np.random.default_rng(0))
    assert eval_views.still_asked(count, v, v.seen)
    assert not eval_views.still_asked(count, v, np.zeros_like(v.seen))


def test_constant_baselines():
    recs = [dict(options=['a', 'b'], target='b'), dict(options=['c', 'd', 'e'], target='e'), dict(options=['f', 'g'], target='f')]
    assert np.isclose(eval_views.constant_scores('rel_distance', recs, {}).mean(), 2 / 3)   # the third option (the last of two)
    assert eval_views.constant_scores('room_size', [dict(target=40.0)], {'room_size': 40.0}).tolist() == [1.0]


def test_gap_interval_covers_the_mean_difference_and_excludes_zero_only_when_it_should():
    rng = np.random.default_rng(0)
    const = rng.random(200)
    lo, hi = eval_views.gap_interval(const + 0.1, const)                  # always 0.1 better: a point interval
    assert np.isclose(lo, 0.1) and np.isclose(hi, 0.1)
    lo, hi = eval_views.gap_interval(rng.random(200), rng.random(200))   # no difference: 0 inside
    assert lo < 0 < hi and hi - lo < 0.2


def test_pose_response_is_one_for_answers_that_scale_and_zero_for_constant_ones():
    recs = [dict(task='abs_distance', scene=i, s=k, pred=2.0 * k, mra=1.0) for i in range(3) for k in eval_views.SCALES]
    recs += [dict(task='room_size', scene=i, s=k, pred=40.0, mra=0.0) for i in range(3) for k in eval_views.SCALES]
    out = eval_views.pose_response(recs)
    assert np.isclose(out['abs_distance']['response'], 1.0) and np.isclose(out['room_size']['response'], 0.0)
    assert np.allclose(out['abs_distance']['ci'], 1.0) and np.allclose(out['room_size']['ci'], 0.0)   # exact: a point


def test_response_interval_is_over_rooms_and_narrows_with_more_of_them():
    rng = np.random.default_rng(0)
    def ci(n_rooms):     # each room answers k^0.5 times its own noise: response 0.5 on average
        recs = [dict(task='abs_distance', scene=i, s=k, pred=k ** 0.5 * math.exp(rng.normal(0, 0.3) * (k != 1)), mra=0.0)
                for i in range(n_rooms) for k in eval_views.SCALES]
        out = eval_views.pose_response(recs)['abs_distance']
        assert out['ci'][0] <= out['response'] <= out['ci'][1]
        return out['ci']
    small, large = ci(16), ci(400)
    assert small[0] < 0.5 < small[1] and large[0] < 0.5 < large[1] and large[1] - large[0] < 0.5 * (small[1] - small[0])


def test_zoom_response_is_minus_one_for_a_lens_blind_model_and_zero_for_one_that_reads_K():
    recs = [dict(task='abs_distance', scene=i, s=s, camera=f'{p}_{s:.2f}', pred=(3.0 / s if p == 'all_zoom' else 3.0), mra=0.0)
            for i in range(3) for s in (0.5, 1.0, 2.0) for p in ('all_zoom', 'some_zoom') if not (p == 'some_zoom' and s == 1.0)]
    out = eval_views.zoom_response(recs, (0.5, 1.0, 2.0))
    assert np.isclose(out['all_zoom']['abs_distance'][0], -1.0) and np.isclose(out['some_zoom']['abs_distance'][0], 0.0)
    assert np.allclose(out['all_zoom']['abs_distance'][1], -1.0)


def test_two_checkpoints_get_a_paired_difference_row():
    recs = lambda acc: [dict(camera='base', task='rel_direction', options=['left', 'right'], target='left', acc=a, parsed=True)
                        for a in acc]
    results = {lab: dict(sweep=eval_views.summarize(recs(acc), {})) for lab, acc in (('a', [1, 1, 0, 1]), ('b', [0, 1, 0, 0]))}
    lines = eval_views.markdown(results).splitlines()
    row, head = next(x for x in lines if x.startswith('| a − b')), next(x for x in lines if x.startswith('| camera'))
    assert '+0.50 [' in row and row.count('|') == head.count('|')          # under a's column, b's left empty


def test_the_table_counts_answers_unparsed_and_read_only_by_the_lenient_rule():
    recs = [dict(camera='base', task='object_count', target=3.0, mra=m, parsed=p, lenient=l)
            for m, p, l in ((1.0, True, False), (1.0, True, True), (0.0, False, False))]
    lines = eval_views.markdown(dict(a=dict(sweep=eval_views.summarize(recs, {})))).splitlines()
    row = next(x for x in lines if x.startswith('| unparsed / read only by the lenient rule'))
    assert '| 1 / 1 |' in row


def test_floor_ruler_items_change_only_the_tiles():
    items = eval_views.tile_items(CFG, 2)
    by = {}
    for it in items:
        by.setdefault((it['scene'], it['question']), {})[it['s']] = it
    assert {it['task'] for it in items} <= {'abs_distance', 'object_size', 'room_size'} and by
    v, frames = views.sample_views(synthetic.scene_seed('test', 0), CFG)
    for (scene, _), its in by.items():
        assert set(its) == set(eval_views.TILES)
        assert len({it['answer'] for it in its.values()}) == 1                        # the same answers
        assert all(torch.equal(it['c2w'], its[1.0]['c2w']) and torch.equal(it['K'], its[1.0]['K']) for it in its.values())
        assert not torch.equal(its[0.5]['image'], its[1.0]['image'])                  # other tiles on the floor
        if scene == 0:
            assert torch.equal(its[1.0]['image'], torch.from_numpy(frames['image']).permute(0, 3, 1, 2))   # f = 1: as rendered
    recs = [dict(task='room_size', scene=i, s=f, pred=40.0 / f ** 2, mra=0.0) for i in range(3) for f in eval_views.TILES]
    assert np.isclose(eval_views.pose_response(recs, eval_views.TILES)['room_size']['response'], -1.0)   # a tile ruler


def test_eval_hands_a_frames_checkpoint_to_eval_views(tmp_path):
    from model import CameraAwareMLLM, ModelConfig
    model = CameraAwareMLLM(ModelConfig(image_size=32, patch_size=16, vision_width=32, llm_width=32,
                                        vision_layers=1, llm_layers=1, geometry=False))
    model.save(str(tmp_path / 'ckpt'))
    (tmp_path / 'ckpt' / 'train_config.json').write_text(json.dumps(dict(frames=2, image_size=32, camera='standard')))
    results = eval.main(['--ckpt', str(tmp_path / 'ckpt'), '--n-scenes', '2', '--out', str(tmp_path / 'out'),
                         '--max-new-tokens', '3'])
    sweep = next(iter(results.values()))['sweep']
    assert set(sweep) == {'all_zoom_1.00', 'base'} and (tmp_path / 'out' / 'table.md').exists()
    results = eval.main(['--ckpt', str(tmp_path / 'ckpt'), '--n-scenes', '1', '--out', str(tmp_path / 'out'),
                         '--max-new-tokens', '3', '--camera-shift', '--zooms', '1,2'])
    table = (tmp_path / 'out' / 'table.md').read_text()
    assert 'floor ruler' in table and 'zoom response' in table and {'tiles', 'zoom'} <= set(next(iter(results.values())))


def test_first_scene_asks_other_rooms_the_same_way():
    tasks = ('object_count', 'abs_distance')
    first, later = eval_views.base_items(CFG, 5, tasks), eval_views.base_items(CFG, range(3, 5), tasks)
    assert {it['scene'] for it in later} == {3, 4}
    assert [it['question'] for it in later] == [it['question'] for it in first if it['scene'] >= 3]
    assert eval.parse_args(['--ckpt', 'x', '--first-scene', '1024']).first_scene == 1024
    for bad in (['--first-scene', '-1'], ['--first-scene', '4', '--data', 'a.json', '--image-root', '.']):
        with pytest.raises(SystemExit):
            eval.parse_args(['--ckpt', 'x'] + bad)
