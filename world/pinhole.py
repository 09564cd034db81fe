"""
The pinhole camera, once: the pixel convention, K and its check, the ray of a pixel, a zoom.

Every file that touches a camera uses these rules: the renderer (scenes.py, raycast.py) on numpy
arrays, the camera embedding and the augmentation (camera_embed.py, augment.py) on torch tensors.
The rays and the zoom are plain arithmetic that runs on both; the check runs in numpy, where a
3×3 test costs far less than in torch (bench.camera times the embedding that calls it).

Pixel convention (used by every file in this repo). Integer pixel (u, v) (column u, row v) covers
the square [u, u+1) × [v, v+1) of continuous image coordinates and has its centre at
(u + ½, v + ½). K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]] maps a camera point X (OpenCV: x right,
y down, z forward; metres) to *continuous* coordinates x = K X / Z, so the image spans [0, W] × [0, H],
cx = W/2 is the exact centre, and the ray through the continuous point (u, v) is
    K⁻¹ [u, v, 1] = (x, y, 1),     y = (v − cy) / fy,     x = (u − cx − s·y) / fx
(pixel (u, v) itself: K⁻¹ [u + ½, v + ½, 1]).

Zoom. Zooming by s about the principal point c is the pixel map x' = s·(x − c) + c,
    A = [[s, 0, (1 − s)·cx], [0, s, (1 − s)·cy], [0, 0, 1]],
and since x' = A K X / Z, the zoomed camera is K' = A K: fx, fy (and s) times s, c unchanged,
i.e. the camera of focal length s·f. augment.zoom resamples an image through A; the renderer
draws through K' directly.

Worked numbers. 128 px at a 60° horizontal field of view: fx = 64 / tan 30° = 110.9 px, cx = 64.
Pixel column 0 has its centre at u = 0.5 and the ray x = (0.5 − 64) / 110.9 = −0.573 (the image
edge u = 0 gives −0.577 = −tan 30°). Zoomed ×2: fx = 221.7, and the same pixel looks along
x = −0.286; A maps the edge x = 0 to 2·(0 − 64) + 64 = −64, out of the new image.
"""
import math

import numpy as np

TOL = 1e-6   # check_K: zeros below the diagonal and K[2, 2] = 1 hold to this (float32 rounding of A·K)


def ray_xy(K, u, v):
    """(x, y) of the ray K⁻¹ [u, v, 1] = (x, y, 1) through continuous pixel coordinates (u, v): numpy
    or torch, K (..., 3, 3) broadcast against u and v (its (...) must line up with theirs)."""
    fx, s, cx = K[..., 0, 0], K[..., 0, 1], K[..., 0, 2]
    fy, cy = K[..., 1, 1], K[..., 1, 2]
    y = (v - cy) / fy                                                    # back-substitution
    return (u - cx - s * y) / fx, y                                      # of the triangular K


def zoom_affine(K, s: float):
    """The pixel map of a zoom by s about the principal point, A (..., 3, 3) in K's type, shape and
    dtype (numpy or torch): x' = s·(x − c) + c. K must be finite (check_K)."""
    A = 0 * K                                                            # zeros like K
    A[..., 0, 0] = A[..., 1, 1] = s
    A[..., :2, 2] = (1 - s) * K[..., :2, 2]
    A[..., 2, 2] = 1
    return A


def zoom_K(K, s: float) -> np.ndarray:
    """K' = zoom_affine(K, s)·K, written out (the product would round c): the camera of focal length
    s·f, fx, fy (and the skew) times s, c unchanged. numpy float64, K's shape."""
    K2 = np.array(K, dtype=np.float64)
    K2[..., :2, :2] *= s
    return K2


# ----------------------------------------------------------------------------- checks

def check_K(K, skew: bool = True) -> np.ndarray:
    """K unchanged if it is an intrinsics matrix (3, 3) or a batch (B, 3, 3): finite, fx, fy > 0, zeros
    below the diagonal and K[2, 2] = 1; with skew=False also s = 0 (the renderer's rays are
    separable). Else a ValueError that says what is wrong. K: a numpy array (camera_embed.validate_K
    checks a tensor through a float64 copy: on 3×3 values numpy's overhead is a fraction of torch's)."""
    if K.ndim not in (2, 3) or tuple(K.shape[-2:]) != (3, 3):
        raise ValueError(f"K must have shape (3, 3) or (B, 3, 3), got {tuple(K.shape)}")
    if not (abs(K) < math.inf).all():
        raise ValueError("K contains non-finite values (nan or inf)")
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    if not ((fx > 0) & (fy > 0)).all():
        raise ValueError(f"K needs fx > 0 and fy > 0, got fx={fx.tolist()}, fy={fy.tolist()}")
    off = np.abs(K[..., [1, 2, 2, 2, 0], [0, 0, 1, 2, 1]] - [0, 0, 0, 1, 0])   # below the diagonal, K[2, 2] − 1, s
    if (off[..., :4 if skew else 5] > TOL).any():
        raise ValueError(f"K must be upper-triangular with K[2, 2] = 1, [[fx, {'s' if skew else '0'}, cx], "
                         f"[0, fy, cy], [0, 0, 1]]{'' if skew else ' (no skew)'}, got {K.tolist()}")
    return K


def check_hw(hw, name: str = 'image_hw') -> tuple[int, int]:
    """(H, W) as two ints >= 1, else a ValueError naming the argument: a fractional size would round
    an image but not its K (whole numbers given as floats are fine; bools are not sizes, and neither
    is text: '32' would unpack to the size (3, 2))."""
    try:
        H, W = hw
        ok = all(not isinstance(v, (bool, str, bytes)) and float(v) == int(v) >= 1 for v in (H, W))
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a pair (height, width) of positive integers (whole numbers of "
                         f"pixels), got {hw!r}")
    return int(H), int(W)
