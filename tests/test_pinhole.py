"""
Guards pinhole.py, the camera rules every other file uses: the ray of a point projects back to it
(numpy and torch alike, with skew), the zoomed K is the zoom's pixel map times K, the worked numbers
of the docstring hold, and bad cameras and sizes raise errors that say what is wrong.

    python -m pytest tests/test_pinhole.py -q
"""
import math

import numpy as np
import pytest
import torch

from world import pinhole


def test_ray_projects_back_to_its_pixel_in_numpy_and_torch():
    rng = np.random.default_rng(0)
    K = np.array([[90.0, 3.0, 30.0], [0, 70.0, 20.0], [0, 0, 1]])           # with skew
    u, v = rng.uniform(0, 64, 20), rng.uniform(0, 48, 20)
    x, y = pinhole.ray_xy(K, u, v)
    back = K @ np.stack([x, y, np.ones_like(x)])                              # (3, 20)
    assert np.allclose(back[0], u) and np.allclose(back[1], v)
    xt, yt = pinhole.ray_xy(torch.tensor(K), torch.tensor(u), torch.tensor(v))
    assert torch.equal(xt, torch.tensor(x)) and torch.equal(yt, torch.tensor(y))


def test_zoom_K_is_the_zoom_map_times_K_and_the_worked_numbers_hold():
    f = 64 / math.tan(math.radians(30))
    K = np.array([[f, 0, 64.0], [0, f, 64.0], [0, 0, 1]])
    assert round(f, 1) == 110.9 and round(float(pinhole.ray_xy(K, 0.5, 64.0)[0]), 3) == -0.573
    K2 = pinhole.zoom_K(K, 2.0)
    assert np.allclose(pinhole.zoom_affine(K, 2.0) @ K, K2) and np.array_equal(K2[:2, 2], K[:2, 2])
    assert round(float(pinhole.ray_xy(K2, 0.5, 64.0)[0]), 3) == -0.286
    A = pinhole.zoom_affine(torch.tensor(K).repeat(3, 1, 1), 2.0)            # batched, torch
    assert A.shape == (3, 3, 3) and torch.equal(A[1] @ torch.tensor([0.0, 0, 1], dtype=A.dtype), torch.tensor(
        [-64.0, -64, 1], dtype=A.dtype))


@pytest.mark.parametrize('K, skew, msg', [
    (np.eye(2), True, 'shape'),
    (np.diag([np.nan, 1, 1]), True, 'non-finite'),
    (np.diag([0.0, 1, 1]), True, 'fx > 0'),
    (np.diag([1.0, -1, 1]), True, 'fy > 0'),
    (np.diag([1.0, 1, 2]), True, 'upper-triangular'),
    (np.array([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]]), False, 'no skew'),
])
def test_bad_K_raises_saying_what_is_wrong(K, skew, msg):
    with pytest.raises(ValueError, match=msg):
        pinhole.check_K(K, skew)


def test_sizes_are_whole_positive_pairs():
    assert pinhole.check_hw((4.0, 6)) == (4, 6)
    for hw in [(0, 4), (4.5, 4), (True, 4), (4,), 'ab', 4, (4, float('nan'))]:
        with pytest.raises(ValueError, match='grid_hw must be a pair'):
            pinhole.check_hw(hw, 'grid_hw')


@pytest.mark.parametrize('hw', ['32', '3x2', ('3', '2'), (b'3', 2), [32, '32']])
def test_text_is_not_a_size_even_when_its_characters_are_digits(hw):
    with pytest.raises(ValueError, match='image_hw must be a pair'):
        pinhole.check_hw(hw)
