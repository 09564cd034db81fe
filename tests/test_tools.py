"""
Guards tools/: the diagnosis of a checkpoint runs end to end on a tiny untrained model and prints
its four measurements; the ridge probe recovers a linear signal and ignores noise; reads compares
own, other and black inputs and rolled poses; grounding scores a frame listing per frame; the oracle map
decides every choice it states; frame_order changes the poses alone (a camera-blind model is unmoved);
binding asks every pair of a room and tells a name-blind model from one that binds; unseen_focal gives the
training K to the same zoomed pixels.

    python -m pytest tests/test_tools.py -q
"""
import json

import numpy as np

import model
from research import diagnose


def test_ridge_probe_recovers_a_linear_signal_and_not_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8))
    y = x @ rng.normal(size=8) + 0.01 * rng.normal(size=400)
    good = diagnose.ridge_probe(x[:300], y[:300], x[300:], y[300:], lam=1e-3)
    assert good['r2'] > 0.99 and abs(good['gain'] - 1) < 0.05
    noise = diagnose.ridge_probe(x[:300], rng.normal(size=300), x[300:], rng.normal(size=100))
    assert noise['r2'] < 0.1


def test_diagnose_runs_on_a_tiny_checkpoint(tmp_path, capsys):
    cfg = model.ModelConfig(image_size=64, patch_size=16, vision_width=32, vision_layers=1, vision_heads=2,
                            llm_width=32, llm_layers=1, llm_heads=2)
    ckpt = tmp_path / 'ckpt'
    model.CameraAwareMLLM(cfg).save(str(ckpt))
    (ckpt / 'train_config.json').write_text(json.dumps(dict(image_size=64, max_objects=1, tasks='depth',
                                                            pitch_range='5,15')))
    diagnose.main([str(ckpt), '--n-train', '24', '--n-test', '8'])
    out = capsys.readouterr().out
    assert 'probe of log z' in out and 'cross-entropy per character' in out and 'attention mass' in out
    assert 'input assembly: sound' in out


def tiny_views_checkpoint(tmp_path, name='ckpt', **model_flags):
    """An untrained 2-frame model saved as a --frames run would be."""
    cfg = model.ModelConfig(image_size=32, patch_size=16, vision_width=32, vision_layers=1, vision_heads=2,
                            llm_width=32, llm_layers=1, llm_heads=2, **model_flags)
    ckpt = tmp_path / name
    model.CameraAwareMLLM(cfg).save(str(ckpt))
    (ckpt / 'train_config.json').write_text(json.dumps(dict(frames=2, image_size=32, patch_size=16, room_objects='2,3',
                                                            tokenizer='char')))
    return ckpt


def test_reads_compares_own_other_and_black_inputs_per_task(tmp_path, capsys):
    import torch
    from research import reads
    ckpt = tiny_views_checkpoint(tmp_path)
    res = reads.reads(str(ckpt), n=6, batch_size=3)
    mean, norm, spread = res.pop('common')
    assert 0 <= mean <= norm and spread > 0
    assert res['ALL']['n'] == 6 and sum(d['n'] for t, d in res.items() if t != 'ALL') == 6
    assert all(np.isfinite(d[how]) for d in res.values() for how in reads.INPUTS)
    images = torch.arange(2 * 5).reshape(2, 5)
    batch = dict(images=images, K=torch.eye(3).expand(2, 3, 3))
    assert torch.equal(reads.swapped(batch, 'other')['images'], images.flip(0))       # two samples: swapped
    assert (reads.swapped(batch, 'black')['images'] == 0).all() and reads.swapped(batch, 'own') is batch
    assert reads.swapped(batch, 'other')['K'] is batch['K']                            # the camera stays
    c2w = torch.arange(2 * 3).reshape(2, 3, 1, 1) * torch.ones(4, 4)                     # 2 samples of 3 frames
    assert reads.swapped(dict(batch, c2w=c2w), 'poses')['c2w'][:, :, 0, 0].tolist() == [[2, 0, 1], [5, 3, 4]]
    aware, blind = (reads.reads(str(tiny_views_checkpoint(tmp_path, name, **flags)), n=3, batch_size=3)['ALL']
                    for name, flags in (('aware', dict(zero_init=False)), ('blind', dict(camera_embed=False))))
    assert aware['poses'] != aware['own'] and blind['poses'] == blind['own']      # only E_cam reads the poses
    reads.main([str(ckpt), '--n', '3', '--batch', '3'])
    assert 'common part' in capsys.readouterr().out


def test_grounding_scores_each_frames_listing_and_runs_on_a_tiny_checkpoint(tmp_path, capsys):
    from research import grounding
    truth = '1: blue stool, red bin; 2: red bin; 3: none'
    assert np.allclose(grounding.scores(truth, truth), 1.0)
    got = grounding.scores(truth, '1: red bin, blue stool; 2: red ball; 3: none')     # order; a wrong category
    assert np.allclose(got, [[0, 1, 1], [0, 0, 1], [1, 1, 1]])
    assert np.allclose(grounding.scores(truth, 'garbage')[:2], 0)                     # unparsed: nothing right
    assert grounding.frames_of('1: a; 2: none; x') == {'1': ['a'], '2': []}
    ckpt = tiny_views_checkpoint(tmp_path)
    res = grounding.grounding(str(ckpt), n=4, batch_size=2)
    assert res['model'].shape == (3,) and (0 <= res['model']).all() and (res['constant'] <= 1).all()
    grounding.main([str(ckpt), '--n', '2'])
    assert 'colours F1' in capsys.readouterr().out


def test_oracle_map_decides_every_choice_and_the_loss_is_on_the_answers(capsys):
    import re
    from data import synthetic
    from multiframe import views
    from research import oracle
    cfg = views.ViewsConfig(frames=3, image_hw=(48, 48), n_objects=(3, 4), tasks=oracle.CHOICES)
    checked, firsts = 0, set()
    for i in range(12):      # the text alone decides every answer: recomputed from it, as a reader would
        text, qas = oracle.room_questions('train', i, cfg)
        firsts.add(qas[0]['task'])
        plan, listing = re.match(r'Map \(.*?\): (.*)\. Frames: (.*)\. $', text).groups()
        xz = {m[0]: np.array([float(m[1]), 0, float(m[2])]) for m in re.findall(r'([a-z]+ [a-z]+) ([\d.]+) ([\d.]+)', plan)}
        first = {}
        for k, row in enumerate(listing.split('; ')):
            for name in row.split(': ')[1].split(', '):
                first.setdefault(name, k)
        for qa in qas:
            names = dict(zip(qa['options'], qa['objects'][1:] if qa['task'] == 'rel_distance' else qa['objects']))
            if qa['task'] == 'rel_distance':
                a = xz[qa['objects'][0]]
                dist = sorted((np.linalg.norm(xz[n] - a), letter) for letter, n in names.items())
                if dist[1][0] - dist[0][0] < 0.02:
                    continue                                   # a tie at the map's 1 cm rounding
                got = dist[0][1]
            elif qa['task'] == 'rel_direction':
                got = 'right' if views.side_of(*(xz[n] for n in qa['objects'])) > 0 else 'left'
            else:
                got = min(names, key=lambda letter: first[names[letter]])
            assert got == qa['answer'], (text, qa)
            checked += 1
    assert checked >= 20
    import train
    from multiframe import items
    tok = train.tiny_tokenizer(train.TrainConfig(), items.corpus(train.TrainConfig()))
    text, qas = oracle.room_questions('train', 0, cfg)
    seq, labels = oracle.sequence(tok, text, qas)
    assert len(qas) >= 2 and tok.decode([lab for lab in labels if lab != -100]) == ''.join(
        qa['answer'] + tok.eos_token for qa in qas)                                  # the loss: answers and eos only
    assert firsts == set(oracle.CHOICES)                                             # each task comes first somewhere
    told, qas = oracle.room_questions('train', 0, cfg, leak=True)
    assert told == text + 'Answers: ' + '; '.join(f"{t.replace('_', ' ')} {qa['answer']}" for t in oracle.CHOICES
                                                  for qa in qas if qa['task'] == t) + '. '   # the control
    oracle.main(['--steps', '2', '--n', '3', '--layers', '1'])
    said, qas = oracle.room_questions('train', 0, cfg, reasons=True)
    assert said == text and all(qa['answer'].endswith(': ' + qa['target']) for qa in qas)
    by, _ = oracle.room_questions('train', 0, cfg, by_object=True)
    first = dict(re.findall(r'([a-z]+ [a-z]+) (\d)', by.split('Seen in: ')[1]))          # the token after each name
    assert by.split('Seen in')[0] == text.split('Frames')[0] and first == {
        o.name: str(k + 1) for o, k in views.seen_objects(views.sample_views(synthetic.scene_seed('train', 0), cfg)[0])}
    oracle.main(['--steps', '2', '--n', '3', '--layers', '1', '--reasons', '--by-object'])     # scored by generation
    out = capsys.readouterr().out
    assert all(t in out for t in oracle.CHOICES) and 'model − constant' in out


def test_frame_order_changes_only_the_poses_and_a_camera_blind_model_is_unmoved(tmp_path, capsys):
    import torch
    from research import frame_order
    c2w = torch.arange(3).reshape(3, 1, 1) * torch.ones(4, 4)                            # 3 frames
    assert [frame_order.POSES[h](c2w)[:, 0, 0].tolist() for h in ('own', 'rolled', 'reversed')] == [
        [0, 1, 2], [2, 0, 1], [2, 1, 0]]
    blind = frame_order.frame_order(str(tiny_views_checkpoint(tmp_path, 'blind', camera_embed=False)), n=8, batch_size=4)
    assert len(blind['own']['scores']) > 0 and blind['own']['scores'] == blind['rolled']['scores'] == blind[
        'reversed']['scores']
    frame_order.main([str(tiny_views_checkpoint(tmp_path, 'aware', zero_init=False)), '--n', '8', '--batch', '4'])
    assert 'poses rolled' in capsys.readouterr().out


def test_binding_asks_every_pair_of_a_room_and_tells_a_name_blind_model_from_one_that_binds(tmp_path, capsys):
    from multiframe import views
    from multiframe.eval_views import views_config
    from research import binding
    cfg = views_config(dict(frames=2, image_size=32, room_objects='3,3'))
    items = binding.pair_items(cfg, 6)
    rooms = [it['scene'] for it in items]
    assert len(items) > 0 and all(rooms.count(r) == 3 for r in set(rooms))
    for it in items:                                         # the truth is the distance between the two named
        v, _ = views.sample_views(it['seed'], cfg)
        a, b = (next(o for o in v.objects if o.name == n) for n in it['objects'])
        assert np.isclose(it['target'], np.linalg.norm(a.center - b.center)) and a.name in it['question']
    rng = np.random.default_rng(0)
    room = np.repeat(np.arange(200), 3)
    true = rng.normal(size=600) + np.repeat(rng.normal(size=200), 3)
    binds = binding.binding_scores(true + 0.1 * rng.normal(size=600), true, room)
    blind = binding.binding_scores(np.repeat(true.reshape(-1, 3).mean(1), 3) + 0.01 * rng.normal(size=600), true, room)
    assert binds['within_r'] > 0.95 and binds['nearest_gap'][0] > 0.4
    assert blind['overall_r'] > 0.7 and blind['within_ci'][0] < 0 < blind['within_ci'][1]   # the room, not the pair
    assert blind['nearest_gap'][0] < 0 < blind['nearest_gap'][1]
    gone = binding.binding_scores(np.where(room == 3, np.nan, true), true, room)            # a room unparsed: out
    assert gone['rooms'] == 199 and gone['unparsed_rooms'] == 1
    binding.main([str(tiny_views_checkpoint(tmp_path)), '--n', '6', '--batch', '6'])
    assert 'within-room r' in capsys.readouterr().out


def test_oracle_score_sees_a_model_that_answers_one_option_whatever_the_room():
    """A stub LLM that rates the same token highest for every prompt: where every question has the same two
    options (left/right, A/B) its top pick is 1.0 and its accuracy the constant's or one minus it; relative
    distance, with two or three options, gets the last letter there is (C or B)."""
    import types
    import torch
    import train
    from multiframe import items, views
    from research import oracle
    tok = train.tiny_tokenizer(train.TrainConfig(), items.corpus(train.TrainConfig()))
    cfg = views.ViewsConfig(frames=3, image_hw=(48, 48), n_objects=(3, 4), tasks=oracle.CHOICES)
    ramp = torch.arange(len(tok), dtype=torch.float)

    class Fixed:                                    # the highest token id wins, whatever the input
        def eval(self):
            pass

        def __call__(self, input_ids):
            return types.SimpleNamespace(logits=ramp.expand(*input_ids.shape, -1))
    out = oracle.score(Fixed(), tok, cfg, 24)
    assert set(out) == set(oracle.CHOICES)
    for t, (acc, const, (lo, hi), n, top) in out.items():
        assert n > 0 and lo <= acc - const <= hi
        assert top == 1.0 or (t == 'rel_distance' and 0.5 <= top < 1)
        assert t == 'rel_distance' or np.isclose(acc, const) or np.isclose(acc, 1 - const)


def test_unseen_focal_gives_the_training_K_to_the_same_pixels(tmp_path, capsys):
    import torch
    from research import unseen_focal
    items = [dict(seed=7, s=s, K=torch.eye(3) * s, image=torch.full((3, 2, 2), i)) for i, s in enumerate((1.0, 2.0))]
    swapped = unseen_focal.with_training_K(items)
    assert all(torch.equal(it['K'], torch.eye(3)) for it in swapped)                     # the s = 1 camera
    assert [int(it['image'][0, 0, 0]) for it in swapped] == [0, 1] and torch.equal(items[1]['K'], 2 * torch.eye(3))
    recs = [dict(pred=2.0, target=1.0), dict(pred=None, target=1.0), dict(pred=-1.0, target=1.0)]
    assert unseen_focal.log_errors(recs)[0] == np.log(2) and np.isnan(unseen_focal.log_errors(recs)[1:]).all()
    cfg = model.ModelConfig(image_size=32, patch_size=8, vision_width=32, vision_layers=1, vision_heads=2,
                            llm_width=32, llm_layers=1, llm_heads=2, geometry_hidden=16)
    ckpt = tmp_path / 'ckpt'
    model.CameraAwareMLLM(cfg).save(str(ckpt))
    (ckpt / 'train_config.json').write_text(json.dumps(dict(image_size=32, max_objects=1, tasks='depth')))
    results = unseen_focal.main([str(ckpt), '--n', '2', '--zooms', '1,2'])
    assert set(results[str(ckpt)]) == {1.0, 2.0} and '| ckpt | 2 | -0.69 |' in capsys.readouterr().out
