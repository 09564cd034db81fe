"""
Camera embedding: every visual token is told the ray of its patch, computed from K (and pose).

Why. A pinhole camera maps an object of height H at depth Z to h = f·H/Z pixels, so from the
pixels alone (f, H, Z) is only known up to (λf, H, λZ): a telephoto shot of a far object and a
wide shot of a near one look the same. A model that never sees f learns its training camera's f
as a hidden constant, and its metric answers scale by 1/s when the image is zoomed by s.
The cure (Zhang et al., "On the Generalization Capacities of MLLMs for Spatial Intelligence",
ICLR 2026) is to give each visual token a dense description of its camera ray.

Pixels (world/pinhole.py's convention, used everywhere): pixel (u, v) has its centre at (u + ½, v + ½),
and the ray through the continuous point (u, v) is K⁻¹ [u, v, 1]. The centre of patch (i, j) of an
h×w grid over an H×W image is at
    u = (j + 0.5) · W / w,    v = (i + 0.5) · H / h.

The math, per token (shape letters: B batch, N = h·w tokens, C feature channels, D width):
    r   = K⁻¹ [u, v, 1]                      camera-frame ray, z = 1: r = ((u−cx)/fx, (v−cy)/fy, 1)
    d̂   = normalize(R · r)                   unit direction in the world frame (c2w = [R | o])
    m   = o × d̂                              Plücker moment: which line, not only which direction
    feats = [d̂, m, (u−cx)/fx, (v−cy)/fy, log(fx/W), log(fy/H)]        (C = 10)
    E_cam = MLP(fourier(feats))              (B, N, D), added to the visual features

Plücker coordinates (d̂, o × d̂) name a 3D line independently of which point o on it we pick
(o + t·d̂ gives the same moment), so posed frames of a video share one world frame: multiframe/views.py's
frames have their camera at o_k ≠ 0, and every point X on a ray has m = X × d̂ in every frame.
Why d̂ alone is not enough: for a single image the camera sits at the origin, o = 0, the moment is
zero and Plücker reduces to d̂. But d̂ is normalize((u−cx)/fx, (v−cy)/fy, 1): at the principal
point it is (0, 0, 1) for every focal length, and over the whole grid it only tells the field of
view through a nonlinear normalisation. The paper therefore also feeds the raw (u−cx)/fx,
(v−cy)/fy and fx, fy. We make the focal lengths resolution-independent as log(fx/W), log(fy/H):
resizing the image scales fx and W together, so the value is unchanged (it is −log(2·tan(fov/2))
when cx = W/2), while a zoom by s shifts it by log s, linearly, which is what the model must read.
(u−cx)/fx is already resolution-independent: u−cx and fx scale together. Worked number: 128 px at
a 60° field of view, fx = 110.9 px and log(fx/W) = log(0.866) = −0.14; zoom ×2 adds log 2 = 0.69
(−0.14 + 0.69 = 0.55), while resizing to 256 px leaves −0.14.

Fourier features (NeRF, Mildenhall et al. 2020, §5.1): fourier(x) = [x, sin(2^k·π·x), cos(2^k·π·x)]
for k = 0 .. num_freqs−1, per channel; the features above lie in about [−2, 2], so the lowest
frequency π has period 2 and the raw x resolves the wrap-around.
The MLP's last layer is zero-initialised: adding E_cam to a pretrained model's visual features
changes nothing at step 0, and the model learns how much of the camera to use.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from world.pinhole import check_hw, check_K, ray_xy

FEATURE_DIM = 10  # channels of camera_features: d̂ (3), moment (3), ray x, ray y, log fx/W, log fy/H


# ----------------------------------------------------------------------------- rays

def patch_centers(image_hw, grid_hw, dtype=torch.float32, device=None) -> torch.Tensor:
    """(N, 2) continuous pixel coordinates (u, v) of the centres of an h×w patch grid over an H×W
    image, row-major (token n = i·w + j): u = (j + 0.5)·W/w, v = (i + 0.5)·H/h."""
    (H, W), (h, w) = check_sizes(image_hw, grid_hw)
    u = (torch.arange(w, dtype=dtype, device=device) + 0.5) * (W / w)   # (w,)
    v = (torch.arange(h, dtype=dtype, device=device) + 0.5) * (H / h)   # (h,)
    vv, uu = torch.meshgrid(v, u, indexing='ij')                         # (h, w) each
    return torch.stack([uu, vv], dim=-1).reshape(h * w, 2)               # (N, 2)


def camera_rays(K, uv) -> torch.Tensor:
    """Un-normalised camera-frame rays K⁻¹ [u, v, 1] (z = 1). K (B,3,3) or (3,3); uv (N,2) or
    (B,N,2) continuous pixel coordinates; a batch of one on either side serves every item of the
    other. Returns (B, N, 3). Batches that differ otherwise are a ValueError naming both sizes,
    not torch's broadcasting error from deep inside."""
    K = validate_K(K)
    uv = torch.as_tensor(uv, dtype=K.dtype, device=K.device)
    if uv.ndim == 2:
        uv = uv.unsqueeze(0)                                             # (1, N, 2)
    if uv.ndim != 3 or uv.shape[-1] != 2:
        raise ValueError(f"uv must have shape (N, 2) or (B, N, 2), got {tuple(uv.shape)}")
    if 1 not in (len(K), len(uv)) and len(K) != len(uv):
        raise ValueError(f"K has a batch of {len(K)} cameras and uv a batch of {len(uv)} sets of pixel "
                         f"coordinates; they must be equal (or one of them 1)")
    return _rays(K, uv)


def _rays(K: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """camera_rays without the checks: K (B,3,3) valid, uv (1 or B, N, 2) -> (B, N, 3)."""
    x, y = ray_xy(K[:, None], uv[..., 0], uv[..., 1])                   # (B, N) each
    return torch.stack([x, y, torch.ones_like(x)], dim=-1)               # (B, N, 3)


def plucker(dirs, c2w=None, check: bool = True) -> torch.Tensor:
    """Plücker coordinates (d̂, o × d̂) of rays with camera-frame directions dirs (B, N, 3) from a
    camera with camera-to-world pose c2w (B,4,4) or (4,4) (identity if None: zero moment).
    Returns (B, N, 6). check=False skips the finiteness test (a host sync; done where data enters)."""
    dirs = torch.as_tensor(dirs)
    if dirs.ndim != 3 or dirs.shape[-1] != 3:
        raise ValueError(f"dirs must have shape (B, N, 3), got {tuple(dirs.shape)}")
    d = F.normalize(dirs, dim=-1)                                        # (B, N, 3)
    if c2w is None:
        return torch.cat([d, torch.zeros_like(d)], dim=-1)               # o = 0: m = 0
    c2w = torch.as_tensor(c2w, dtype=d.dtype, device=d.device)
    if c2w.ndim == 2:
        c2w = c2w.unsqueeze(0)
    if c2w.ndim != 3 or c2w.shape[-2:] != (4, 4) or c2w.shape[0] not in (1, d.shape[0]):
        raise ValueError(f"c2w must have shape (4, 4) or (B, 4, 4) with B = {d.shape[0]}, got {tuple(c2w.shape)}")
    if check and not torch.isfinite(c2w).all():
        raise ValueError("c2w contains non-finite values")
    R, o = c2w[:, :3, :3], c2w[:, :3, 3]                                 # (B, 3, 3), (B, 3)
    d = d @ R.transpose(1, 2)                                            # (B, N, 3) = R d per row
    m = torch.cross(o[:, None, :].expand_as(d), d, dim=-1)               # (B, N, 3)
    return torch.cat([d, m], dim=-1)                                     # (B, N, 6)


def camera_features(K, image_hw, grid_hw, c2w=None, check: bool = True) -> torch.Tensor:
    """Dense per-token camera description (B, N, FEATURE_DIM):
    [d̂ (3), o × d̂ (3), (u−cx)/fx, (v−cy)/fy, log(fx/W), log(fy/H)] at the patch centres.
    check=False: K (B, 3, 3) and c2w were validated where they entered (their checks sync with the
    host, which a training step on a GPU should not wait for)."""
    K = validate_K(K) if check else K
    if K.dtype not in (torch.float32, torch.float64):
        K = K.float()                                                    # geometry in full precision
    (H, W), (h, w) = check_sizes(image_hw, grid_hw)
    uv = patch_centers((H, W), (h, w), dtype=K.dtype, device=K.device)  # (N, 2)
    rays = _rays(K, uv[None])                                            # (B, N, 3)
    pl = plucker(rays, c2w, check)                                       # (B, N, 6)
    logf = torch.stack([torch.log(K[:, 0, 0] / W), torch.log(K[:, 1, 1] / H)], dim=-1)  # (B, 2)
    logf = logf[:, None, :].expand(-1, rays.shape[1], -1)                # (B, N, 2)
    return torch.cat([pl, rays[..., :2], logf], dim=-1)                  # (B, N, 10)


def fourier_features(x: torch.Tensor, num_freqs: int) -> torch.Tensor:
    """[x, sin(2^k π x), cos(2^k π x)] for k = 0..num_freqs−1, per channel: (..., C) -> (..., C·(1 + 2L))."""
    freqs = torch.pi * 2.0 ** torch.arange(num_freqs, dtype=x.dtype, device=x.device)  # (L,)
    xf = (x[..., None] * freqs).flatten(-2)                              # (..., C·L)
    return torch.cat([x, torch.sin(xf), torch.cos(xf)], dim=-1)


# ----------------------------------------------------------------------------- module

@dataclass
class CameraEmbedConfig:
    num_freqs: int = 4       # Fourier frequencies π·2^k, k < num_freqs (periods 2, 1, 1/2, 1/4)
    hidden: int = 128        # width of the MLP's hidden layer
    use_features: bool = True  # False: Plücker only (d̂, m), the ablation "direction without focal length"


class CameraEmbedding(nn.Module):
    """fourier(camera_features) -> Linear -> SiLU -> Linear (zero-init) -> (B, N, out_dim)."""

    def __init__(self, out_dim: int, cfg: CameraEmbedConfig = CameraEmbedConfig()):
        super().__init__()
        self.cfg = cfg
        n_in = (FEATURE_DIM if cfg.use_features else 6) * (1 + 2 * cfg.num_freqs)
        self.fc = nn.Linear(n_in, cfg.hidden)
        self.proj = nn.Linear(cfg.hidden, out_dim)
        self.reset_parameters()

    def reset_parameters(self):
        """Default init for fc; proj zero, so E_cam = 0 at step 0 and a pretrained model starts
        unchanged. Call again after any model-wide re-initialisation (e.g. model.apply(_init_weights))."""
        self.fc.reset_parameters()
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, K, image_hw, grid_hw, c2w=None, check: bool = True) -> torch.Tensor:
        # geometry in float32 (or K's float64) on the module's device; the MLP in the module's dtype
        K = torch.as_tensor(K, device=self.fc.weight.device)
        feats = camera_features(K, image_hw, grid_hw, c2w, check)       # (B, N, 10)
        if not self.cfg.use_features:
            feats = feats[..., :6]                                       # (B, N, 6)
        x = fourier_features(feats, self.cfg.num_freqs).to(self.fc.weight.dtype)  # (B, N, C·(1+2L))
        return self.proj(F.silu(self.fc(x)))                             # (B, N, out_dim)


# ----------------------------------------------------------------------------- the text baseline

def camera_text(K) -> str:
    """The intrinsics written into the question, as an MLLM user would first try (no embedding):
    K of a 128 px, 60° camera -> 'Camera: fx 110.9 fy 110.9 cx 64.0 cy 64.0 px. ' (one decimal,
    the pixels of the image the model reads)."""
    K = validate_K(K)[0]
    fx, fy, cx, cy = (float(v) for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    return f'Camera: fx {fx:.1f} fy {fy:.1f} cx {cx:.1f} cy {cy:.1f} px. '


# ----------------------------------------------------------------------------- input checks

def validate_K(K) -> torch.Tensor:
    """K as a floating (B, 3, 3) tensor ((3, 3) becomes B = 1), checked by pinhole.check_K: finite,
    fx, fy > 0, [[fx, s, cx], [0, fy, cy], [0, 0, 1]]; else a ValueError that says what is wrong."""
    K = torch.as_tensor(K)
    check_K(K.detach().cpu().double().numpy())                           # the rule, in numpy (world/pinhole.py)
    K = K if K.is_floating_point() else K.float()
    return K.unsqueeze(0) if K.ndim == 2 else K                          # (B, 3, 3)


def check_sizes(image_hw, grid_hw) -> tuple[tuple[int, int], tuple[int, int]]:
    """Validate an image size and a patch grid over it (the grid may not be finer than the pixels)."""
    H, W = check_hw(image_hw, 'image_hw')
    h, w = check_hw(grid_hw, 'grid_hw')
    if h > H or w > W:
        raise ValueError(f"grid_hw {(h, w)} is larger than image_hw {(H, W)}: a patch must cover at least one pixel")
    return (H, W), (h, w)
