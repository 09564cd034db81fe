"""
Guards distill.py: geometry targets pooled to the token grid (log depth, object fraction, log
depth of object centres, against the renderer's own maps), the matching loss's zeros, mask and
per-sample mean, and both teachers, the second on a tiny random Depth Anything saved with save_pretrained.

    python -m pytest tests/test_distill.py -q
"""
import numpy as np
import torch

from distill import (GEO_DIM, DepthModelTeacher, RenderedTeacher, backproject, geometry_targets,
                     matching_loss)


def intrinsics(B, H, W, f=None):
    f = torch.rand(B) * 40 + 20 if f is None else torch.full((B,), float(f))
    K = torch.zeros(B, 3, 3)
    K[:, 0, 0], K[:, 1, 1], K[:, 2, 2] = f, f * (1 + 0.1 * torch.rand(B)), 1
    K[:, 0, 2], K[:, 1, 2] = W / 2 + torch.randn(B), H / 2 + torch.randn(B)
    return K


def test_backproject_reprojects_to_pixel_centres():
    B, H, W = 2, 6, 10
    K, depth = intrinsics(B, H, W), torch.rand(B, H, W) * 5 + 0.5
    X = backproject(depth, K)                                            # (B, H, W, 3)
    assert torch.allclose(X[..., 2], depth)
    uv = torch.einsum('bij,bhwj->bhwi', K, X / X[..., 2:])[..., :2]
    v, u = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing='ij')
    assert torch.allclose(uv, torch.stack([u, v], -1).expand_as(uv), atol=1e-4)


def test_plane_targets_are_log_depth_without_objects():
    # a fronto-parallel plane at depth c: every token sees log c; no object map -> no object loss
    B, H, W, grid = 3, 32, 48, (4, 6)
    K, c = intrinsics(B, H, W), torch.rand(B) * 4 + 1
    depth = c[:, None, None].expand(B, H, W).clone()
    target, mask = geometry_targets(depth, backproject(depth, K), grid)
    assert target.shape == mask.shape == (B, 24, GEO_DIM)
    assert mask[..., 0].all() and not mask[..., 1:].any()
    assert torch.allclose(target[..., 0], c.log()[:, None].expand(B, 24), atol=1e-5)


def test_object_channels_are_fraction_and_log_centre_depth():
    # one 8x8 token grid cell per token (2x2 tokens of 4x4 px); an object of centre depth 3 fills
    # token 0 and half of token 1, one of centre depth 5 a quarter of token 3
    depth = torch.full((1, 8, 8), 6.0)
    obj = torch.zeros(1, 8, 8)
    obj[0, :4, :6] = 3.0
    obj[0, 4:6, 4:6] = 5.0
    target, mask = geometry_targets(depth, backproject(depth, intrinsics(1, 8, 8)), (2, 2), object_depth=obj)
    assert torch.allclose(target[0, :, 1], torch.tensor([1.0, 0.5, 0.0, 0.25]))
    assert mask[0, :, 1].all() and mask[0, :, 2].tolist() == [True, True, False, True]
    assert torch.allclose(target[0, [0, 1, 3], 2], torch.tensor([3.0, 3.0, 5.0]).log())
    assert target[0, 2, 2] == 0                                           # no object: masked, zero


def test_invalid_pixels_are_ignored_and_masked():
    B, H, W = 1, 8, 8
    K = intrinsics(B, H, W)
    depth = torch.full((B, H, W), 2.0)
    depth[:, :, :2] = 0          # token column 0 (4 px wide) is half valid: kept at min_valid 0.5
    depth[:, :4, 4:] = 0         # token (0, 1) fully invalid: masked
    target, mask = geometry_targets(depth, backproject(depth, K), (2, 2))
    assert mask[..., 0].tolist() == [[True, False, True, True]]
    assert torch.allclose(target[0, mask[0, :, 0], 0], torch.tensor(2.0).log())  # zeros not averaged in
    assert (target[0, 1] == 0).all()
    _, strict = geometry_targets(depth, backproject(depth, K), (2, 2), min_valid=0.9)
    assert strict[..., 0].tolist() == [[False, False, False, True]]


def test_matching_loss_zero_at_target_positive_elsewhere_and_masked():
    target = torch.randn(2, 5, GEO_DIM)
    mask = torch.rand(2, 5, GEO_DIM) > 0.3
    mask[:, 0, 0] = True
    assert matching_loss(target.clone(), target, mask).abs() < 1e-6
    off = target.clone()
    off[0, 0, 0] += 0.5                                                   # 0.5 in log depth on one entry
    expected = 0.5 / mask[0].sum() / 2                                    # per-sample mean, 2 samples
    assert torch.allclose(matching_loss(off, target, mask), expected)
    off[~mask] += 10                                                      # masked entries do not count
    assert torch.allclose(matching_loss(off, target, mask), expected)
    pred = torch.randn(2, 5, GEO_DIM, requires_grad=True)
    none = matching_loss(pred, target, torch.zeros(2, 5, GEO_DIM, dtype=torch.bool))
    none.backward()
    assert none == 0 and (pred.grad == 0).all()


def test_matching_loss_is_a_per_sample_mean_so_micro_batches_agree():
    # samples with very different numbers of valid entries: the mean over the whole batch equals
    # the mean of the two half-batch losses, so the micro-batch split does not change a step
    pred, target = torch.randn(4, 6, GEO_DIM), torch.randn(4, 6, GEO_DIM)
    mask = torch.zeros(4, 6, GEO_DIM, dtype=torch.bool)
    mask[0] = True
    mask[1, 0, 0] = mask[2, :3] = mask[3, :, 0] = True
    whole = matching_loss(pred, target, mask)
    halves = (matching_loss(pred[:2], target[:2], mask[:2]) + matching_loss(pred[2:], target[2:], mask[2:])) / 2
    assert torch.allclose(whole, halves)


def test_rendered_teacher_matches_the_renderer_convention():
    from data.synthetic import object_depth_map, scene_objects
    from world.raycast import render
    from world.scenes import SceneConfig, sample_scene
    cfg = SceneConfig(image_hw=(32, 32))
    scs = [sample_scene(s, cfg) for s in range(2)]
    out = [render(sc) for sc in scs]
    K = torch.tensor(np.stack([sc.K for sc in scs]), dtype=torch.float32)
    depth = torch.tensor(np.stack([o['depth'] for o in out]))
    points = torch.tensor(np.stack([o['points'] for o in out]))
    obj = torch.tensor(np.stack([object_depth_map(o['instance'], scene_objects(sc)) for o, sc in zip(out, scs)]))
    valid = depth > 0
    assert torch.allclose(backproject(depth, K)[valid], points[valid], atol=1e-3)  # same pixel centres
    target, mask = RenderedTeacher()(dict(depth=depth, points=points, K=K, object_depth=obj), (32, 32))
    assert target.shape == (2, 32 * 32, GEO_DIM) and mask[..., 2].any()
    inst = torch.tensor(np.stack([o['instance'] for o in out])).flatten(1)          # one pixel per token
    for b, sc in enumerate(scs):
        for i, o in enumerate(sc.objects):
            on = inst[b] == i
            assert torch.allclose(target[b, on, 2], torch.tensor(o.center[2]).log().float())
    assert torch.equal(mask[..., 2], inst >= 0) and torch.equal(target[..., 1] > 0, inst >= 0)


def test_depth_model_teacher_loads_by_path_and_backprojects(tiny_depth_model):
    teacher = DepthModelTeacher(tiny_depth_model, input_size=56)
    assert not teacher.model.training and not any(p.requires_grad for p in teacher.model.parameters())
    B, H, W = 2, 40, 48
    batch = dict(images=torch.randint(0, 256, (B, 3, H, W), dtype=torch.uint8), K=intrinsics(B, H, W))
    z = teacher.depth(batch['images'], batch['K'])
    assert z.shape == (B, H, W) and (z > 0).all() and (z < 10).all() and not z.requires_grad
    target, mask = teacher(batch, (4, 6))
    ref = geometry_targets(z, backproject(z, batch['K']), (4, 6))
    assert target.shape == (B, 24, GEO_DIM) and mask[..., 0].all() and not mask[..., 1:].any()
    assert torch.allclose(target, ref[0]) and torch.equal(mask, ref[1])


def test_depth_model_teacher_canonical_focal(tiny_depth_model):
    # Z <- Z * fx / focal_ref, with fx measured at the teacher's input size
    B, H, W = 1, 28, 28
    batch = dict(images=torch.randint(0, 256, (B, 3, H, W), dtype=torch.uint8), K=intrinsics(B, H, W, f=30))
    plain = DepthModelTeacher(tiny_depth_model, input_size=56).depth(batch['images'], batch['K'])
    corrected = DepthModelTeacher(tiny_depth_model, input_size=56, focal_ref=30.0).depth(batch['images'], batch['K'])
    assert torch.allclose(corrected, plain * 2, rtol=1e-5)                # fx = 60 at 56 px
