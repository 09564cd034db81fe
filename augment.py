"""
Camera-aware augmentation: crop, zoom, resize and principal-point shifts that update K exactly.

Why. A model trained on one camera sees one constant K and never learns to read it. These
transforms show it many cameras from the same scenes. None of them moves the camera: they only
change which ray lands on which pixel. So every 3D label in the camera frame (centres, sizes,
yaws, depths, distances, the point map's values) stays the same, and only the pixels and K change.

The math. Each transform is an affine map A of continuous pixel coordinates (pixel convention of
world/pinhole.py: integer pixel (u, v) covers [u, u+1) × [v, v+1), centre (u+½, v+½)):
    x' = A x,   A = [[a, 0, tx], [0, b, ty], [0, 0, 1]]
Since x = K X / Z for a camera point X, the new image sees X at x' = A K X / Z, hence
    K' = A K                                  (exactly, for every transform and composition)
The new image is sampled at its pixel centres: image'(x') = image(A⁻¹ x'). One helper, `warp`,
does this with torch.nn.functional.grid_sample(align_corners=False), whose normalised coordinate
−1 is the left edge of the first pixel and +1 the right edge of the last: g = 2·x / W − 1.
    resize to (H', W'):          A = diag(W'/W, H'/H, 1)         (cx scales too: no ±½ terms)
    crop box (x0, y0, x1, y1):   x' = (x − x0)·w'/(x1 − x0)      (box may pass the border: fill)
    zoom by s about (cx, cy):    x' = s·(x − c) + c               (f' = s·f, c' = c, same size)
    shift principal point:       x' = x + (dx, dy)                (c' = c + (dx, dy), same f, size)
Zoom is about the principal point, so (f, c) -> (s·f, c): exactly the image a camera with focal
length s·f would render (eval.py's camera sweep). When c = (W/2, H/2), as in scenes.camera_K, this
is the same as "crop the central 1/s and resize up" (s > 1) or "pad and resize down" (s < 1).
Zooming about the image centre instead would be this zoom then a shift by (1 − s)·(W/2 − c).
Worked number: zoom ×2 of a 128 px, 60° camera (fx = 110.9, c = (64, 64)): A = [[2, 0, −64],
[0, 2, −64], [0, 0, 1]], so K' = A K has fx = 221.7 and the same c; the column x = 32 goes to
2·32 − 64 = 0, the left edge: the central half of the image fills the new one.
The random policy draws s log-uniform in ZOOM_RANGE = [0.5, 2] (eval.py sweeps the same range).

Outside the source image, pixels get `fill`; inside, bilinear interpolation with edge clamping
(no darkened borders). Downsampling blurs first with a Gaussian of σ = (1/a − 1)/2 input pixels
(a < 1 the scale), a symmetric filter that removes aliasing without moving anything.
mode='nearest' copies values without mixing them: use it for geometry maps (depth, points),
whose fill 0 means invalid.
2D annotations (points, boxes, in continuous coordinates) follow through A = K' K⁻¹: map_points,
map_boxes.
Shapes: image (C,H,W) or (B,C,H,W) (any C, float or integer dtype, kept); K (3,3) or (B,3,3).
"""
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from camera_embed import validate_K
from world import pinhole

ZOOM_RANGE = (0.5, 2.0)   # zoom factors s (f' = s·f) the model is trained on and tested over

# ----------------------------------------------------------------------------- affine maps
# each returns A (3, 3) float64, or (B, 3, 3) when it depends on a batched K; inputs are checked by
# the helpers at the end of the file (a NaN or infinite factor would give a NaN K)


def resize_affine(in_hw, out_hw) -> torch.Tensor:
    (H, W), (H2, W2) = in_hw, out_hw
    return torch.tensor([[W2 / W, 0, 0], [0, H2 / H, 0], [0, 0, 1]], dtype=torch.float64)


def crop_affine(box, out_hw) -> torch.Tensor:
    x0, y0, x1, y1 = (float(b) for b in box)
    H2, W2 = out_hw
    a, b = W2 / (x1 - x0), H2 / (y1 - y0)
    return torch.tensor([[a, 0, -a * x0], [0, b, -b * y0], [0, 0, 1]], dtype=torch.float64)


def zoom_affine(K, s: float) -> torch.Tensor:
    return pinhole.zoom_affine(validate_K(K).double().cpu(), s)          # (B, 3, 3): x' = s·(x − c) + c


def shift_affine(dx: float, dy: float) -> torch.Tensor:
    return torch.tensor([[1, 0, dx], [0, 1, dy], [0, 0, 1]], dtype=torch.float64)


# ----------------------------------------------------------------------------- resampling

def _blur(x: torch.Tensor, sigma_x: float, sigma_y: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W), edges replicated; σ = 0 leaves that axis alone."""
    for sigma, dim in ((sigma_x, 3), (sigma_y, 2)):
        if sigma <= 0:
            continue
        r = max(1, math.ceil(3 * sigma))
        k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype) / sigma) ** 2)
        k = (k / k.sum()).to(x.device)
        C = x.shape[1]
        weight = k.view(1, 1, 1, -1) if dim == 3 else k.view(1, 1, -1, 1)
        pad = (r, r, 0, 0) if dim == 3 else (0, 0, r, r)
        x = F.conv2d(F.pad(x, pad, mode='replicate'), weight.expand(C, 1, -1, -1), groups=C)
    return x


def warp(image, A, out_hw, fill=0, mode='bilinear', antialias=True) -> torch.Tensor:
    """Resample image through the pixel map x' = A x: out(x') = image(A⁻¹ x') at the output pixel
    centres. image (H,W), (C,H,W) or (B,C,H,W); A (3,3) or (B,3,3). Returns the same rank and dtype,
    spatial size out_hw."""
    if mode not in ('bilinear', 'nearest'):
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    image = torch.as_tensor(image)
    ndim, dtype = image.ndim, image.dtype
    if ndim not in (2, 3, 4):
        raise ValueError(f"image must be (H, W), (C, H, W) or (B, C, H, W), got {tuple(image.shape)}")
    x = image.reshape((1,) * (4 - ndim) + tuple(image.shape))           # (B, C, H, W)
    B, C, H, W = x.shape
    image_hw(image)                                                      # H, W >= 1
    H2, W2 = pinhole.check_hw(out_hw, 'size')
    A = torch.as_tensor(A, dtype=torch.float64).reshape(-1, 3, 3)
    if A.shape[0] not in (1, B):
        raise ValueError(f"{A.shape[0]} affine maps for a batch of {B} images")
    if (H2, W2) == (H, W) and torch.equal(A, torch.eye(3, dtype=torch.float64).expand_as(A)):
        return image.clone()                                             # identity: an exact copy
    work = torch.float64 if dtype in (torch.float64, torch.int32, torch.int64) else torch.float32
    x = x.to(work)

    if mode == 'bilinear' and antialias:                                 # blur before downsampling
        scales = A[:, [0, 1], [0, 1]].abs()                              # (B or 1, 2) output px per input px
        sig = ((1 / scales - 1) / 2).clamp(min=0)
        if (sig > 0).any():
            if (sig == sig[0]).all():
                x = _blur(x, float(sig[0, 0]), float(sig[0, 1]))
            else:
                x = torch.cat([_blur(x[i:i + 1], float(sig[i, 0]), float(sig[i, 1])) for i in range(B)])

    # source coordinates of the output pixel centres: p = A⁻¹ [u'+½, v'+½, 1]
    v2, u2 = torch.meshgrid(torch.arange(H2, dtype=torch.float64) + 0.5,
                            torch.arange(W2, dtype=torch.float64) + 0.5, indexing='ij')
    p_out = torch.stack([u2, v2, torch.ones_like(u2)], dim=-1)           # (H2, W2, 3)
    p = torch.einsum('bij,hwj->bhwi', torch.linalg.inv(A), p_out)[..., :2]  # (B or 1, H2, W2, 2)
    p = p.expand(B, -1, -1, -1)
    grid = torch.stack([2 * p[..., 0] / W - 1, 2 * p[..., 1] / H - 1], dim=-1)  # (B, H2, W2, 2)
    out = F.grid_sample(x, grid.to(work).to(x.device), mode=mode, padding_mode='border', align_corners=False)

    # the source image covers [0, W) × [0, H); everything else is fill
    inside = (p[..., 0] >= 0) & (p[..., 0] < W) & (p[..., 1] >= 0) & (p[..., 1] < H)  # (B, H2, W2)
    fill_t = torch.as_tensor(fill, dtype=work, device=x.device).reshape(1, -1, 1, 1)  # scalar or per channel
    out = torch.where(inside[:, None].to(x.device), out, fill_t)         # (B, C, H2, W2)

    if not dtype.is_floating_point:
        info = torch.iinfo(dtype)
        out = out.round().clamp(info.min, info.max)
    out = out.to(dtype)
    return out.reshape(tuple(image.shape[:-2]) + (H2, W2))


def apply_affine(image, K, A, out_hw, fill=0, mode='bilinear'):
    """(image', K') for the pixel map A: image resampled by `warp`, K' = A K in K's shape and dtype."""
    K = torch.as_tensor(K)
    Kb = validate_K(K)                                                   # (B, 3, 3)
    if image.ndim == 4 and K.ndim == 3 and K.shape[0] not in (1, image.shape[0]):
        raise ValueError(f"K has batch {K.shape[0]} but image has batch {image.shape[0]}")
    A = torch.as_tensor(A, dtype=torch.float64).reshape(-1, 3, 3)        # (1 or B, 3, 3)
    K2 = (A @ Kb.double().cpu()).to(Kb.dtype).to(Kb.device)              # (B, 3, 3)
    if K.ndim == 2:
        if A.shape[0] != 1:
            raise ValueError("a per-sample transform needs a batched K (B, 3, 3)")
        K2 = K2[0]
    return warp(image, A, out_hw, fill, mode), K2


# ----------------------------------------------------------------------------- transforms

def resize(image, K, size_hw, mode='bilinear'):
    """Resize to size_hw = (H', W') whole pixels: fx, cx scale by W'/W; fy, cy by H'/H."""
    size_hw = pinhole.check_hw(size_hw, 'size')
    return apply_affine(image, K, resize_affine(image_hw(image), size_hw), size_hw, 0, mode)


def crop(image, K, box, fill=0, mode='bilinear', size_hw=None):
    """Crop box = (x0, y0, x1, y1) (continuous pixel edges; may pass the border, padded with fill):
    (cx, cy) -= (x0, y0). The output is size_hw, by default the box size rounded to whole pixels;
    when the two differ the crop is also resized to it (K' = A K stays exact, one resampling)."""
    x0, y0, x1, y1 = (check_number('crop box edge', b) for b in box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"crop box must have x1 > x0 and y1 > y0, got {tuple(box)}")
    size_hw = pinhole.check_hw((max(1, round(y1 - y0)), max(1, round(x1 - x0))) if size_hw is None else size_hw, 'size')
    return apply_affine(image, K, crop_affine(box, size_hw), size_hw, fill, mode)


def zoom(image, K, s: float, fill=0, mode='bilinear'):
    """Zoom by s about the principal point, same image size: f' = s·f, c' = c.
    s > 1 keeps the window around c that is 1/s of the image; s < 1 pads with fill."""
    s = check_number('zoom factor', s, positive=True)
    return apply_affine(image, K, zoom_affine(K, s), image_hw(image), fill, mode)


def shift_principal_point(image, K, dx, dy, fill=0, mode='bilinear'):
    """Move the content by (dx, dy) pixels, same size and f: (cx, cy) -> (cx + dx, cy + dy).
    (The same as cropping the window that starts at (−dx, −dy).)"""
    dx, dy = check_number('principal point shift dx', dx), check_number('principal point shift dy', dy)
    return apply_affine(image, K, shift_affine(dx, dy), image_hw(image), fill, mode)


# ----------------------------------------------------------------------------- 2D annotations

def affine_from_K(K, K_new) -> torch.Tensor:
    """The pixel map of a transform, recovered from its two cameras: A = K' K⁻¹, (B, 3, 3) float64."""
    return validate_K(K_new).double() @ torch.linalg.inv(validate_K(K).double())


def map_points(points, K, K_new) -> torch.Tensor:
    """Points (N, 2) or (B, N, 2) in continuous pixel coordinates (a pixel index + 0.5) of the image
    with K, to the image with K_new. Same shape and dtype back."""
    pts = torch.as_tensor(points)
    A = affine_from_K(K, K_new)                                          # (B, 3, 3)
    p = pts.double() if pts.ndim == 3 else pts.double()[None]            # (B or 1, N, 2)
    out = p @ A[:, :2, :2].transpose(1, 2) + A[:, None, :2, 2]            # (B, N, 2)
    if pts.ndim == 2 and out.shape[0] == 1:
        out = out[0]                                                     # (N, 2)
    return out.to(pts.dtype)


def map_boxes(boxes, K, K_new, image_hw=None) -> torch.Tensor:
    """Boxes (N, 4) or (B, N, 4) as (x0, y0, x1, y1) pixel edges: the box around the 4 mapped
    corners; clipped to image_hw = (H, W) of the new image when given."""
    b = torch.as_tensor(boxes)
    x0, y0, x1, y1 = b.unbind(-1)
    corners = torch.stack([torch.stack(c, -1) for c in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))], -2)  # (..., N, 4, 2)
    m = map_points(corners.flatten(-3, -2), K, K_new).unflatten(-2, (-1, 4))  # (..., N, 4, 2)
    out = torch.cat([m.amin(-2), m.amax(-2)], dim=-1)                    # (..., N, 4)
    if image_hw is not None:
        H, W = image_hw
        out = torch.stack([out[..., 0].clamp(0, W), out[..., 1].clamp(0, H),
                           out[..., 2].clamp(0, W), out[..., 3].clamp(0, H)], dim=-1)
    return out.to(b.dtype)


# ----------------------------------------------------------------------------- random policy

@dataclass
class AugmentConfig:
    zoom_range: tuple = ZOOM_RANGE   # s drawn log-uniform: f' = s·f (s < 1 wider, s > 1 tele)
    shift_frac: float = 0.1          # principal point moves by up to this fraction of W (H), whole pixels
    p_identity: float = 0.2          # probability of keeping the sample's own camera
    resize_hw: tuple | None = None   # resize the result to (H, W) (K follows); None keeps the size
    fill: int = 0                    # value of padded image pixels (geometry maps are padded with 0)


def sample_affine(K, image_hw, cfg: AugmentConfig, rng: np.random.Generator):
    """Draw one random camera change: (A (3,3) float64, out_hw). Always draws the same numbers
    from rng (4 of them) whatever the branch, so the stream stays aligned."""
    H, W = image_hw
    keep = rng.random() < cfg.p_identity
    log_s = rng.uniform(math.log(cfg.zoom_range[0]), math.log(cfg.zoom_range[1]))
    dx, dy = rng.uniform(-cfg.shift_frac, cfg.shift_frac, size=2) * (W, H)
    s, dx, dy = (1.0, 0.0, 0.0) if keep else (math.exp(log_s), float(round(dx)), float(round(dy)))
    A = shift_affine(dx, dy) @ zoom_affine(K, s)[0]                      # zoom about c, then move c
    out_hw = (H, W)
    if cfg.resize_hw is not None:
        A, out_hw = resize_affine((H, W), cfg.resize_hw) @ A, tuple(cfg.resize_hw)
    return A, out_hw


def random_camera_augment(image, K, cfg: AugmentConfig, rng: np.random.Generator, geometry=None):
    """One sample's random camera: image (3,H,W) uint8 (any warp input), K (3,3), geometry (C,H,W)
    or (H,W) float maps or None. Returns (image', K' (3,3) torch, geometry' or None), one resampling
    each: bilinear for the image, nearest (fill 0) for geometry. 3D labels need no change."""
    K = torch.as_tensor(K)
    if K.shape != (3, 3):
        raise ValueError(f"random_camera_augment takes one sample's K (3, 3), got {tuple(K.shape)}")
    A, out_hw = sample_affine(K, image.shape[-2:], cfg, rng)
    if torch.equal(A, torch.eye(3, dtype=torch.float64)):
        return image, validate_K(K)[0].clone(), geometry                 # the sample's own camera
    image2, K2 = apply_affine(image, K, A, out_hw, cfg.fill, 'bilinear')
    geometry2 = None if geometry is None else warp(geometry, A, out_hw, 0, 'nearest')
    return image2, K2, geometry2


# ----------------------------------------------------------------------------- input checks

def check_number(name: str, v, positive: bool = False) -> float:
    """A finite real number (> 0 if positive), as a float; else a ValueError naming it."""
    try:
        x = math.nan if isinstance(v, (str, bytes, bool)) else float(v)
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x) or (positive and x <= 0):
        raise ValueError(f"{name} must be a finite number{' > 0' if positive else ''}, got {v!r}")
    return x


def image_hw(image) -> tuple:
    """(H, W) of an image (..., H, W) with at least one row and column."""
    H, W = image.shape[-2:]
    if H < 1 or W < 1:
        raise ValueError(f"image must have at least one row and one column, got shape {tuple(image.shape)}")
    return H, W
