"""
Guards augment.py: every transform moves the pixels and K together. A bright dot drawn at the
projection of a random 3D point must be found at K'·P after each transform and after chains of
them; rays through the scene point do not change; geometry maps (nearest) stay consistent with K';
exact cases (integer crops, 2× nearest upsampling, bilinear resize) match slicing and
torch.nn.functional.interpolate. The random inputs are fresh on every run; a failure names their
seed, and TEST_SEED=N replays it (conftest.py). Runs alone in a few seconds:  python -m pytest -q tests/test_augment.py
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from augment import (AugmentConfig, crop, map_boxes, map_points, random_camera_augment, resize,
                     shift_principal_point, warp, zoom)
from camera_embed import camera_rays

H, W = 64, 80


@pytest.fixture
def rng(fresh_seed):
    return np.random.default_rng(fresh_seed)                             # fresh inputs each run, replayable


def random_K(rng) -> torch.Tensor:
    f = W * rng.uniform(0.6, 1.4)
    return torch.tensor([[f, 0, W / 2 + rng.uniform(-4, 4)],
                         [0, f * rng.uniform(0.9, 1.1), H / 2 + rng.uniform(-4, 4)],
                         [0, 0, 1]], dtype=torch.float64)


def random_point(rng, K) -> torch.Tensor:
    """A 3D point (metres) that projects within the central ±W/8 of the image, at depth 2..6 m."""
    x = torch.tensor([W / 2 + rng.uniform(-W / 8, W / 8), H / 2 + rng.uniform(-H / 8, H / 8), 1.0],
                     dtype=torch.float64)
    return rng.uniform(2, 6) * torch.linalg.solve(K, x)                  # (3,)


def project(K, P) -> torch.Tensor:
    x = K @ P
    return x[:2] / x[2]                                                  # (2,) continuous (u, v)


def draw_dot(uv, sigma=1.5, C=3, dtype=torch.uint8) -> torch.Tensor:
    """(C, H, W) image of a Gaussian dot centred at continuous coordinates uv (pixel centres at +0.5)."""
    v, u = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing='ij')
    dot = torch.exp(-((u - float(uv[0])) ** 2 + (v - float(uv[1])) ** 2) / (2 * sigma ** 2))
    img = dot.expand(C, H, W)
    return (255 * img).round().to(dtype) if dtype == torch.uint8 else img.to(dtype)


def find_dot(img) -> torch.Tensor:
    """Intensity centroid of the image in continuous coordinates (the background is exactly 0)."""
    a = img.double().sum(0)                                              # (H', W')
    v, u = torch.meshgrid(torch.arange(a.shape[0]) + 0.5, torch.arange(a.shape[1]) + 0.5, indexing='ij')
    return torch.stack([(u * a).sum(), (v * a).sum()]) / a.sum()


def random_transform(rng, image, K):
    """One of the four transforms with random parameters that keep the central region in view."""
    kind = rng.integers(4)
    h, w = image.shape[-2:]
    if kind == 0:
        return resize(image, K, (int(rng.integers(40, 120)), int(rng.integers(40, 120))))
    if kind == 1:   # a box that contains the central half and may pass the border
        x0, y0 = rng.uniform(-10, w / 4 - 6), rng.uniform(-10, h / 4 - 6)
        return crop(image, K, (x0, y0, rng.uniform(3 * w / 4 + 6, w + 10), rng.uniform(3 * h / 4 + 6, h + 10)))
    if kind == 2:
        return zoom(image, K, float(np.exp(rng.uniform(np.log(0.5), np.log(1.8)))))
    return shift_principal_point(image, K, rng.uniform(-6, 6), rng.uniform(-6, 6))


@pytest.mark.parametrize('dtype', [torch.uint8, torch.float32])
def test_dot_reprojects_after_each_transform(rng, dtype):
    for trial in range(12):
        K, C = random_K(rng), int(rng.integers(1, 5))
        P = random_point(rng, K)
        img = draw_dot(project(K, P), C=C, dtype=dtype)
        img2, K2 = random_transform(rng, img, K.float() if trial % 2 else K)
        assert img2.dtype == dtype and img2.shape[0] == C
        err = (find_dot(img2) - project(K2.double(), P)).norm()
        assert err < 0.2, f"transform {trial}: dot found {err:.3f} px from K'·P"


def test_dot_reprojects_after_chains(rng):
    for trial in range(6):
        K = random_K(rng)
        P = random_point(rng, K)
        img, K2 = draw_dot(project(K, P), C=1, dtype=torch.float32), K
        for step in range(3):
            while True:                                                  # keep the dot 5 px inside
                img3, K3 = random_transform(rng, img, K2)
                uv = project(K3, P)
                if 5 < uv[0] < img3.shape[-1] - 5 and 5 < uv[1] < img3.shape[-2] - 5:
                    img, K2 = img3, K3
                    break
        assert (find_dot(img) - project(K2, P)).norm() < 0.3


def test_rays_do_not_change(rng):
    """The ray through a scene point, read at the dot's pixel in the new image with K', is the ray to P."""
    for trial in range(8):
        K = random_K(rng)
        P = random_point(rng, K)
        img2, K2 = random_transform(rng, draw_dot(project(K, P), C=1, dtype=torch.float32), K)
        ray = camera_rays(K2, find_dot(img2)[None])[0, 0]                # measured in the image
        assert (ray - P / P[2]).norm() < 0.5 / K2[0, 0]                  # half a pixel of angle
        uv = map_points(project(K, P)[None], K, K2)                      # mapped annotation
        torch.testing.assert_close(camera_rays(K2, uv)[0, 0], P / P[2])


def test_geometry_maps_stay_consistent_with_K(rng):
    """Nearest-mode point maps: every valid pixel's 3D point reprojects through K' into that pixel."""
    K = random_K(rng)
    v, u = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing='ij')
    rays = torch.stack([u, v, torch.ones_like(u)], -1).double() @ torch.linalg.inv(K).T  # (H, W, 3)
    depth = 2 + torch.from_numpy(rng.random((H, W)))                     # any depth per pixel
    points = (rays * depth[..., None]).permute(2, 0, 1).float()          # (3, H, W)
    transforms = [lambda: crop(points, K, (rng.uniform(-9, 9), rng.uniform(-9, 9), 70.3, 60.0), mode='nearest'),
                  lambda: zoom(points, K, float(rng.uniform(0.5, 2.0)), mode='nearest'),
                  lambda: resize(points, K, (int(rng.integers(20, 130)), int(rng.integers(20, 130))), mode='nearest'),
                  lambda: shift_principal_point(points, K, rng.uniform(-6, 6), rng.uniform(-6, 6), mode='nearest')]
    vals = set(map(tuple, points.reshape(3, -1).T.tolist()))
    for trial in range(8):
        pts2, K2 = transforms[trial % 4]()
        valid = pts2[2] > 0
        got = pts2.permute(1, 2, 0)[valid]                               # (M, 3)
        assert all(tuple(p) in vals for p in got[:50].tolist())          # values copied, never mixed
        x = got.double() @ K2.T
        x = x[:, :2] / x[:, 2:]
        v2, u2 = torch.nonzero(valid, as_tuple=True)
        scale = max(1.0, float(K2[0, 0] / K[0, 0]), float(K2[1, 1] / K[1, 1]))
        assert ((x - torch.stack([u2, v2], -1) - 0.5).abs() <= 0.5 * scale + 1e-4).all()
        assert torch.all(pts2[:, ~valid] == 0)                           # padding is 0 = invalid


def test_exact_cases():
    img = torch.randint(0, 256, (2, 3, H, W), dtype=torch.uint8)
    K = torch.tensor([[50.0, 0, 40], [0, 50, 32], [0, 0, 1]])
    out, K2 = crop(img, K, (4, 6, 20, 30))                               # integer crop = slicing
    assert torch.equal(out, img[..., 6:30, 4:20]) and torch.equal(K2[:, 2], torch.tensor([36.0, 26, 1]))
    out, K2 = crop(img, K, (-2, -3, 10, 12), fill=7)                     # past the border: fill
    assert torch.all(out[..., :3, :] == 7) and torch.all(out[..., :, :2] == 7)
    assert torch.equal(out[..., 3:, 2:], img[..., :12, :10])
    out, K2 = resize(img, K, (2 * H, 2 * W), mode='nearest')             # 2× nearest = repetition
    assert torch.equal(out, img.repeat_interleave(2, -2).repeat_interleave(2, -1))
    assert torch.equal(K2, torch.tensor([[100.0, 0, 80], [0, 100, 64], [0, 0, 1]]))
    f = img.double()
    out, _ = resize(f, K, (100, 131))                                    # bilinear upsampling
    torch.testing.assert_close(out, F.interpolate(f, (100, 131), mode='bilinear', align_corners=False))
    out, K2 = shift_principal_point(img, K, 3, -2)
    assert torch.equal(out[..., :-2, 3:], img[..., 2:, :-3]) and torch.equal(K2[:2, 2], torch.tensor([43.0, 30]))
    out, K2 = zoom(f, K, 1.0)
    assert torch.equal(out, f) and torch.equal(K2, K)


def test_zoom_is_about_each_principal_point():
    """Batched K with different principal points: f' = s·f, c' = c for every sample."""
    K = torch.tensor([[[50.0, 0, 40], [0, 50, 32], [0, 0, 1]], [[60.0, 0, 30], [0, 55, 20], [0, 0, 1]]])
    img = torch.rand(2, 1, H, W)
    out, K2 = zoom(img, K, 1.6)
    assert out.shape == img.shape
    torch.testing.assert_close(K2[:, :2, :2], 1.6 * K[:, :2, :2])
    torch.testing.assert_close(K2[:, :2, 2], K[:, :2, 2])
    torch.testing.assert_close(out[1:], zoom(img[1:], K[1], 1.6)[0])    # batch = one at a time


def test_boxes_follow_the_transform(rng):
    K = random_K(rng)
    P = random_point(rng, K)
    uv = project(K, P)
    box = torch.cat([uv - 3, uv + 3])[None]                              # (1, 4) around the dot
    img2, K2 = zoom(draw_dot(uv), K, 1.5)
    b2 = map_boxes(box, K, K2, image_hw=(H, W))
    c = find_dot(img2)
    assert b2[0, 0] < c[0] < b2[0, 2] and b2[0, 1] < c[1] < b2[0, 3]
    torch.testing.assert_close(b2[0, 2] - b2[0, 0], torch.tensor(9.0, dtype=torch.float64))


def test_random_policy_is_seeded_and_in_range(fresh_seed):
    K = torch.tensor([[50.0, 0, 40], [0, 50, 32], [0, 0, 1]])
    g = torch.Generator().manual_seed(fresh_seed)
    img = torch.randint(0, 256, (3, H, W), dtype=torch.uint8, generator=g)
    geo = torch.rand(4, H, W, generator=g)
    cfg = AugmentConfig(zoom_range=(0.5, 2.0), shift_frac=0.1, p_identity=0.25)
    a = random_camera_augment(img, K, cfg, np.random.default_rng(3), geo)
    b = random_camera_augment(img, K, cfg, np.random.default_rng(3), geo)
    assert all(torch.equal(x, y) for x, y in zip(a, b))                  # bitwise deterministic
    rng, kept = np.random.default_rng(fresh_seed), 0                    # fresh draws of the policy, replayable
    for _ in range(40):
        img2, K2, geo2 = random_camera_augment(img, K, cfg, rng, geo)
        assert img2.dtype == torch.uint8 and img2.shape == img.shape and geo2.shape == geo.shape
        s = float(K2[0, 0] / K[0, 0])
        d = K2[:2, 2] - K[:2, 2]
        assert 0.5 - 1e-6 <= s <= 2.0 + 1e-6 and torch.allclose(K2[1, 1] / K[1, 1], torch.tensor(s))
        assert torch.equal(d, d.round()) and abs(d[0]) <= 0.1 * W and abs(d[1]) <= 0.1 * H
        kept += torch.equal(K2, K)
    assert 2 <= kept <= 20
    out = random_camera_augment(img, K, AugmentConfig(p_identity=1.0, resize_hw=(32, 40)), rng, geo)
    assert out[0].shape == (3, 32, 40) and out[2].shape == (4, 32, 40) and torch.equal(out[1][:2], K[:2] / 2)


def test_random_policy_reprojects(rng):
    cfg = AugmentConfig(zoom_range=(0.6, 1.8), p_identity=0.0)
    for _ in range(6):
        K = random_K(rng).float()
        P = random_point(rng, K.double())
        img2, K2, _ = random_camera_augment(draw_dot(project(K.double(), P)), K, cfg, rng)
        assert (find_dot(img2) - project(K2.double(), P)).norm() < 0.5


def test_bad_inputs_raise():
    img, K = torch.zeros(3, 8, 8), torch.eye(3)
    with pytest.raises(ValueError, match='zoom factor'):
        zoom(img, K, 0.0)
    with pytest.raises(ValueError, match='x1 > x0'):
        crop(img, K, (4, 0, 2, 8))
    with pytest.raises(ValueError, match='mode'):
        resize(img, K, (4, 4), mode='bicubic')
    with pytest.raises(ValueError, match='shape'):
        resize(img, torch.eye(4), (4, 4))
    with pytest.raises(ValueError, match='fx > 0'):
        zoom(img, torch.diag(torch.tensor([-1.0, 1, 1])), 2.0)
    with pytest.raises(ValueError, match='positive'):
        resize(img, K, (0, 4))
    with pytest.raises(ValueError, match='batch'):
        zoom(torch.zeros(3, 3, 8, 8), torch.eye(3).repeat(2, 1, 1), 2.0)
    with pytest.raises(ValueError, match='image must be'):
        warp(torch.zeros(8), torch.eye(3), (4, 4))


@pytest.mark.parametrize('call,named', [
    (lambda img, K: zoom(img, K, float('inf')), 'zoom factor'),
    (lambda img, K: zoom(img, K, float('nan')), 'zoom factor'),
    (lambda img, K: zoom(img, K, -2.0), 'zoom factor'),
    (lambda img, K: zoom(img, K, '2'), 'zoom factor'),
    (lambda img, K: shift_principal_point(img, K, float('nan'), 0), 'shift dx'),
    (lambda img, K: shift_principal_point(img, K, 0, float('inf')), 'shift dy'),
    (lambda img, K: crop(img, K, (0, 0, float('inf'), 8)), 'crop box'),
    (lambda img, K: resize(img, K, (4.5, 4)), 'whole numbers'),
    (lambda img, K: resize(img, K, (4, float('nan'))), 'whole numbers'),
    (lambda img, K: resize(img, K, 4), 'whole numbers'),
    (lambda img, K: resize(img[:, :0], K, (4, 4)), 'at least one row'),
    (lambda img, K: zoom(img[:, :, :0], K, 2.0), 'at least one row'),
])
def test_non_finite_or_fractional_inputs_raise_instead_of_a_nan_K(call, named):
    img, K = torch.zeros(3, 8, 8), torch.tensor([[8.0, 0, 4], [0, 8, 4], [0, 0, 1]])
    with pytest.raises(ValueError, match=named):
        call(img, K)
    img2, K2 = resize(img, K, (4.0, 6))                    # a whole number given as a float is fine
    assert img2.shape == (3, 4, 6) and torch.isfinite(K2).all()
