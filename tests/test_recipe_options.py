"""
Guards the recipe's switches of the pilots (docs/pilots.md): the conv stem's token grid and its
round trip through save/load, the geometry-only step (distillation alone, the LLM not run), the
detached phases (no answer gradient through sin/cos of the predicted depths), the rendered
teacher's object threshold, eval.py's validation scenes and the CNN reference's shapes.

    python -m pytest tests/test_recipe_options.py -q
"""
import torch

import data
import eval as evaluation
from conv_stem import ConvStem
from distill import RenderedTeacher, geometry_targets
from model import CameraAwareMLLM, geometry_features
from research.cnn_reference import cnn
from tests.test_model import make_batch, teacher_target, tiny


def test_conv_stem_gives_the_patch_grid_and_survives_save_and_load(tmp_path):
    assert ConvStem(32, 8)(torch.zeros(2, 3, 32, 32)).shape == (2, 32, 4, 4)
    model = tiny(conv_stem=True, geometry_periods=(10, 1, 0.1))
    assert isinstance(model.vision.embeddings.patch_embedding, ConvStem)
    batch = make_batch(2)
    vis, geo = model.visual_tokens(batch['images'], batch['K'])
    assert vis.shape[1] == 16 and geo.shape[1] == 16
    model.save(tmp_path)
    again = CameraAwareMLLM.load(str(tmp_path))
    assert torch.allclose(again.visual_tokens(batch['images'], batch['K'])[0], vis)


def test_geometry_only_step_is_the_distillation_alone():
    model = tiny()
    batch, target = make_batch(3), teacher_target(tiny(), 3)
    logits, loss, parts = model(batch, teacher=target, answer=False)
    assert logits is None and parts['answer'] == 0 and torch.allclose(loss, parts['distill'])
    loss.backward()
    assert any(p.grad is not None and p.grad.any() for p in model.geo_head.parameters())
    assert all(p.grad is None for p in model.llm.parameters())                  # the LLM was not run


def test_detached_phases_pass_no_gradient_to_the_depths():
    g = torch.randn(2, 4, 3, requires_grad=True)
    feats = geometry_features(g, (10, 1, 0.1), detach_phase=True)
    feats[..., 3:].sum().backward()                                              # the sin/cos only
    assert g.grad is None or not g.grad.any()
    g2 = g.detach().clone().requires_grad_(True)
    geometry_features(g2, (10, 1, 0.1))[..., 3:].sum().backward()
    assert g2.grad[..., 2].abs().sum() > 0


def test_object_threshold_zero_matches_every_token_touching_the_object():
    depth = torch.full((1, 16, 16), 5.0)
    obj = torch.zeros(1, 16, 16)
    obj[0, 3:5, 3:5] = 4.0                                                       # 4 pixels of one 8×8 token
    _, m_default = geometry_targets(depth, torch.zeros(1, 16, 16, 3), (2, 2), object_depth=obj)
    t, m_any = geometry_targets(depth, torch.zeros(1, 16, 16, 3), (2, 2), object_depth=obj, min_object=0.0)
    assert not m_default[..., 2].any() and m_any[..., 2].sum() == 1
    assert torch.isclose(t[0, 0, 2], torch.log(torch.tensor(4.0)))
    batch = dict(depth=depth, points=torch.zeros(1, 16, 16, 3), object_depth=obj)
    assert RenderedTeacher(0.0)(batch, (2, 2))[1][..., 2].sum() == 1


def test_eval_items_of_the_validation_split_are_other_scenes():
    cfg = evaluation.eval_scene_config({'image_size': 32, 'max_objects': 1}, zooms=[1.0], shifts=())
    sweep = evaluation.camera_sweep(cfg, [1.0], shifts=(), profiles=False)
    val = evaluation.build_eval_items(cfg, sweep, 2, ('depth',), 'val')
    test = evaluation.build_eval_items(cfg, sweep, 2, ('depth',))
    assert [it['seed'] for it in val] == [data.scene_seed('val', i) for i in range(2)]
    assert [it['seed'] for it in test] == [data.scene_seed('test', i) for i in range(2)]


def test_cnn_reference_has_its_045M_parameters_and_one_output():
    net = cnn()
    assert 440_000 < sum(p.numel() for p in net.parameters()) < 460_000
    assert net(torch.zeros(2, 3, 128, 128)).shape == (2, 1)
