"""
Guards camera_embed.py: patch centres, rays K⁻¹[u, v, 1], Plücker coordinates, the dense camera
features and the zero-initialised CameraEmbedding, by their geometric properties on fresh random
cameras (a failure names its seed; TEST_SEED=N replays it, as a test here checks on conftest.py); a
tilted scene's pose (scenes.py) makes the directions gravity-aligned. Runs alone in about ten
seconds (one test starts two pytests of its own):  python -m pytest -q tests/test_camera_embed.py
"""
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from camera_embed import (FEATURE_DIM, CameraEmbedConfig, CameraEmbedding, camera_features, camera_rays,
                          fourier_features, patch_centers, plucker, validate_K)


def random_K(g: torch.Generator, B: int, H=64, W=64, skew=False) -> torch.Tensor:
    """(B, 3, 3) float64 cameras with fields of view between ~30° and ~110° and off-centre principal points."""
    K = torch.zeros(B, 3, 3, dtype=torch.float64)
    K[:, 0, 0] = W * (0.35 + 1.5 * torch.rand(B, generator=g, dtype=torch.float64))
    K[:, 1, 1] = K[:, 0, 0] * (0.9 + 0.2 * torch.rand(B, generator=g, dtype=torch.float64))
    K[:, 0, 2] = W * (0.3 + 0.4 * torch.rand(B, generator=g, dtype=torch.float64))
    K[:, 1, 2] = H * (0.3 + 0.4 * torch.rand(B, generator=g, dtype=torch.float64))
    if skew:
        K[:, 0, 1] = torch.randn(B, generator=g, dtype=torch.float64)
    K[:, 2, 2] = 1
    return K


def random_pose(g: torch.Generator, B: int) -> torch.Tensor:
    """(B, 4, 4) camera-to-world: a random rotation (QR of a Gaussian) and a random centre."""
    q, r = torch.linalg.qr(torch.randn(B, 3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    q[torch.linalg.det(q) < 0, :, 0] *= -1                              # proper rotation, det = +1
    c2w = torch.eye(4, dtype=torch.float64).repeat(B, 1, 1)
    c2w[:, :3, :3], c2w[:, :3, 3] = q, 3 * torch.randn(B, 3, generator=g, dtype=torch.float64)
    return c2w


@pytest.fixture
def g(fresh_seed):
    return torch.Generator().manual_seed(fresh_seed)                     # fresh inputs each run, replayable


def test_a_failing_fresh_draw_names_its_seed_and_TEST_SEED_replays_it(tmp_path):
    # conftest.py's seeds, in a pytest of their own on a test that fails on purpose
    (tmp_path / 'conftest.py').write_text((Path(__file__).parent / 'conftest.py').read_text())
    (tmp_path / 'test_draw.py').write_text(
        'import torch\n\n\n'
        'def test_draw(fresh_seed):\n'
        '    x = torch.rand(1, generator=torch.Generator().manual_seed(fresh_seed)).item()\n'
        '    assert x < 0, f"drew {x!r}"\n')

    def run(seed=None):
        env = {k: v for k, v in os.environ.items() if k != 'TEST_SEED'} | ({} if seed is None else {'TEST_SEED': seed})
        out = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'test_draw.py'],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300).stdout
        rerun = re.search(r'rerun with: TEST_SEED=(\d+) python -m pytest "test_draw.py::test_draw"', out)
        assert rerun and '1 failed' in out, out
        return re.search(r'drew ([0-9.e-]+)', out).group(1), rerun.group(1)

    drew, seed = run()
    assert run(seed) == (drew, seed)                                     # the same draw, the same seed named


def test_patch_centers_pixel_centre_convention():
    uv = patch_centers((64, 96), (2, 3))                                 # patches 32 × 32
    expected = [[16, 16], [48, 16], [80, 16], [16, 48], [48, 48], [80, 48]]
    assert uv.shape == (6, 2) and torch.equal(uv, torch.tensor(expected, dtype=torch.float32))
    # one patch per pixel: the centres are the pixel centres u + 0.5
    uv = patch_centers((3, 4), (3, 4))
    assert torch.equal(uv[5], torch.tensor([1.5, 1.5]))


def test_rays_invert_K(g):
    K = random_K(g, 4, skew=True)
    uv = 64 * torch.rand(4, 50, 2, generator=g, dtype=torch.float64)
    r = camera_rays(K, uv)                                               # (4, 50, 3)
    assert r.shape == (4, 50, 3) and torch.all(r[..., 2] == 1)
    back = r @ K.transpose(1, 2)                                         # K r = [u, v, 1]
    torch.testing.assert_close(back[..., :2], uv)
    # the principal point looks straight ahead; a (3, 3) K is a batch of one
    c = K[0, :2, 2][None]
    torch.testing.assert_close(camera_rays(K[0], c), torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64))


def test_plucker_properties(g):
    B, N = 3, 40
    dirs = torch.randn(B, N, 3, generator=g, dtype=torch.float64)
    c2w = random_pose(g, B)
    p = plucker(dirs, c2w)
    d, m = p[..., :3], p[..., 3:]
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(B, N, dtype=torch.float64))   # unit directions
    torch.testing.assert_close((d * m).sum(-1), torch.zeros(B, N, dtype=torch.float64))  # m ⟂ d
    # camera at the origin: zero moment, for None and for any pure rotation
    assert torch.all(plucker(dirs)[..., 3:] == 0)
    rot = c2w.clone()
    rot[:, :3, 3] = 0
    assert torch.all(plucker(dirs, rot)[..., 3:].abs() < 1e-12)
    torch.testing.assert_close(plucker(dirs, rot)[..., :3], d)         # rotation alone sets d
    # translating the camera by t (identity rotation) adds t × d̂ to the moment
    t = torch.randn(B, 3, generator=g, dtype=torch.float64)
    shifted = torch.eye(4, dtype=torch.float64).repeat(B, 1, 1)
    shifted[:, :3, 3] = t
    dhat = dirs / dirs.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(plucker(dirs, shifted)[..., 3:] - plucker(dirs)[..., 3:],
                               torch.cross(t[:, None].expand_as(dhat), dhat, dim=-1))
    # the moment names the line, not the point: sliding the centre along each ray changes nothing
    one = c2w[:1].repeat(N, 1, 1)                                        # one ray per batch element
    slid = one.clone()
    slid[:, :3, 3] += 2.5 * d[0]
    torch.testing.assert_close(plucker(dirs[0][:, None], slid), plucker(dirs[0][:, None], one))


def test_features_see_focal_length_where_direction_does_not():
    # two cameras that differ only in f, principal point on the centre of token (i=2, j=1)
    K1 = torch.tensor([[40.0, 0, 24], [0, 40, 40], [0, 0, 1]])
    K2 = torch.tensor([[80.0, 0, 24], [0, 80, 40], [0, 0, 1]])
    n = 2 * 4 + 1
    f1, f2 = camera_features(K1, (64, 64), (4, 4)), camera_features(K2, (64, 64), (4, 4))
    assert f1.shape == (1, 16, FEATURE_DIM)
    assert torch.equal(f1[0, n, :6], f2[0, n, :6])                       # Plücker: (0,0,1, 0,0,0) for both
    assert torch.equal(f1[0, n, :6], torch.tensor([0.0, 0, 1, 0, 0, 0]))
    assert torch.allclose(f2[0, n, 8:] - f1[0, n, 8:], torch.full((2,), math.log(2.0)))  # log f/W: + log 2
    assert (f1 - f2).abs().amax(-1).min() > 0.5                          # every token tells them apart


def test_features_are_resolution_independent_and_track_zoom(g):
    K = random_K(g, 2)
    f = camera_features(K, (64, 64), (4, 4))
    Kr = K.clone()
    Kr[:, :2] *= 0.5                                                     # the same camera at 32 × 32
    torch.testing.assert_close(camera_features(Kr, (32, 32), (4, 4)), f)
    s = 1.7                                                              # zoom about the principal point
    Kz = K.clone()
    Kz[:, 0, 0] *= s
    Kz[:, 1, 1] *= s
    fz = camera_features(Kz, (64, 64), (4, 4))
    torch.testing.assert_close(fz[..., 8:] - f[..., 8:], torch.full_like(f[..., 8:], math.log(s)))


def test_features_with_pose_are_world_frame(g):
    K, c2w = random_K(g, 2), random_pose(g, 2)
    f = camera_features(K, (64, 64), (4, 4), c2w)
    rays = camera_rays(K, patch_centers((64, 64), (4, 4), dtype=torch.float64))
    torch.testing.assert_close(f[..., :6], plucker(rays, c2w))
    torch.testing.assert_close(f[..., 6:8], rays[..., :2])


def test_a_tilted_scene_pose_makes_the_directions_gravity_aligned():
    # one-pixel patches, so token (v, u) has the ray of pixel (u, v). Given a pitched and rolled
    # scene's c2w (no translation: zero moment), d̂ is in its gravity-aligned world frame: d̂_y > 0
    # exactly where the renderer sees the floor (no walls), and h·d̂/d̂_y is the rendered floor point
    from world import raycast, scenes
    sc = scenes.sample_scene(0, scenes.SceneConfig(image_hw=(24, 32), n_objects=(1, 1), walls=False,
                                                   pitch_range=(10, 20), roll_range=(-20, -10)))
    out, R = raycast.render(sc), torch.tensor(sc.c2w[:3, :3])
    f = camera_features(torch.tensor(sc.K), (24, 32), (24, 32), torch.tensor(sc.c2w))[0]    # (N, 10) float64
    d = f[:, :3].reshape(24, 32, 3)                                   # (H, W, 3) world-frame directions
    assert torch.equal(f[:, 3:6], torch.zeros(24 * 32, 3))
    torch.testing.assert_close(f[:, :3], camera_features(torch.tensor(sc.K), (24, 32), (24, 32))[0, :, :3] @ R.T)
    background, floor = torch.tensor(out['instance'] == -1), torch.tensor(out['depth'] > 0)
    assert torch.equal((d[..., 1] > 0)[background], floor[background]) and not floor.all()
    seen = background & floor
    world = torch.tensor(out['points'], dtype=torch.float64) @ R.T    # rendered points, world frame
    torch.testing.assert_close((sc.camera_height * d / d[..., 1:2])[seen], world[seen], rtol=1e-5, atol=1e-5)


def test_fourier_features():
    x = torch.tensor([[0.25, -1.0]])
    y = fourier_features(x, 3)                                           # (1, 2·(1 + 6))
    assert y.shape == (1, 14)
    torch.testing.assert_close(y[0, :2], x[0])
    torch.testing.assert_close(y[0, 2:8], torch.sin(torch.pi * torch.tensor([0.25, 0.5, 1.0, -1, -2, -4])))
    torch.testing.assert_close(y[0, 8:], torch.cos(torch.pi * torch.tensor([0.25, 0.5, 1.0, -1, -2, -4])))


def test_embedding_zero_at_init_then_learns_to_read_K(g):
    torch.manual_seed(0)
    emb = CameraEmbedding(32, CameraEmbedConfig(num_freqs=4, hidden=32))
    K = random_K(g, 3).float()
    out = emb(K, (64, 64), (4, 4))
    assert out.shape == (3, 16, 32) and torch.all(out == 0)
    assert emb(K[0], (64, 64), (2, 2)).shape == (1, 4, 32)              # (3, 3) K is B = 1
    (out * torch.randn(out.shape, generator=g)).sum().backward()
    assert emb.proj.weight.grad.abs().sum() > 0                          # the zero layer is trained
    with torch.no_grad():
        for p in emb.parameters():
            p -= 0.1 * p.grad if p.grad is not None else 0
    Kz = K.clone()
    Kz[:, :2, :2] *= 2                                                   # same camera, focal length ×2
    a, b = emb(K, (64, 64), (4, 4)), emb(Kz, (64, 64), (4, 4))
    assert a.abs().max() > 0 and (a - b).abs().max() > 1e-4              # output now depends on f


def test_direction_only_ablation_is_blind_to_f_at_the_principal_point():
    emb = CameraEmbedding(8, CameraEmbedConfig(use_features=False))
    torch.nn.init.normal_(emb.proj.weight)
    K1 = torch.tensor([[40.0, 0, 24], [0, 40, 40], [0, 0, 1]])
    K2 = torch.tensor([[80.0, 0, 24], [0, 80, 40], [0, 0, 1]])
    a, b = emb(K1, (64, 64), (4, 4)), emb(K2, (64, 64), (4, 4))
    assert torch.equal(a[0, 9], b[0, 9])


@pytest.mark.parametrize('K, msg', [
    (torch.eye(2), 'shape'),
    (torch.zeros(2, 3, 4), 'shape'),
    (torch.tensor([[float('nan'), 0, 1], [0, 1, 1], [0, 0, 1]]), 'non-finite'),
    (torch.tensor([[float('inf'), 0, 1], [0, 1, 1], [0, 0, 1]]), 'non-finite'),
    (torch.tensor([[0.0, 0, 1], [0, 1, 1], [0, 0, 1]]), 'fx > 0'),
    (torch.tensor([[1.0, 0, 1], [0, -1, 1], [0, 0, 1]]), 'fy > 0'),
    (torch.tensor([[1.0, 0, 1], [0, 1, 1], [0, 0, 2]]), 'upper-triangular'),
])
def test_bad_K_raises(K, msg):
    with pytest.raises(ValueError, match=msg):
        validate_K(K)
    with pytest.raises(ValueError, match=msg):
        CameraEmbedding(4)(K, (32, 32), (2, 2))


@pytest.mark.parametrize('image_hw, grid_hw, msg', [
    ((32, 32), (64, 2), 'larger than image_hw'),
    ((0, 32), (2, 2), 'positive'),
    ((32, 32), (2, -1), 'positive'),
    ((32, 32.5), (2, 2), 'positive integers'),
    ((32,), (2, 2), 'pair'),
])
def test_bad_sizes_raise(image_hw, grid_hw, msg):
    with pytest.raises(ValueError, match=msg):
        camera_features(torch.eye(3), image_hw, grid_hw)


def test_bad_pose_and_uv_raise():
    with pytest.raises(ValueError, match='c2w'):
        plucker(torch.ones(2, 5, 3), torch.eye(3))
    with pytest.raises(ValueError, match='c2w'):
        plucker(torch.ones(2, 5, 3), torch.eye(4).repeat(3, 1, 1))
    with pytest.raises(ValueError, match='uv'):
        camera_rays(torch.eye(3), torch.ones(5, 3))


def test_rays_of_mismatched_batches_raise_naming_both_batch_sizes():
    K = torch.eye(3).repeat(2, 1, 1)
    with pytest.raises(ValueError, match=r'K has a batch of 2 cameras and uv a batch of 3'):
        camera_rays(K, torch.ones(3, 5, 2))
    assert camera_rays(K, torch.ones(5, 2)).shape == (2, 5, 3)                       # one set of pixels: every camera
    assert camera_rays(torch.eye(3), torch.ones(3, 5, 2)).shape == (3, 5, 3)         # one camera: every set
