"""
Geometry distillation: a frozen 3D teacher tells the model, per visual token, how far away the
surface it sees lies and, if it sees an object, how far away that object's centre is; a light
student head learns to say the same.

What the teacher knows that RGB alone does not. An image fixes depth only up to the focal length
(h = f·H/Z): the pixels of a near object through a wide lens and of a far one through a telephoto
lens agree. A 3D teacher has been given the missing metric information: the renderer knows the
scene; a metric depth network has learned object sizes and its training cameras. Its dense
output is a per-pixel depth Z(u, v) and, from a 3D detector or the renderer, the depth Z°(u, v)
of the centre of the object a pixel belongs to (0 where the pixel sees no object).

Pooled-geometry matching. Instead of asking the LLM to output depth maps, the student matches
the teacher's dense *output* pooled to the visual-token grid (h×w); not the teacher's hidden
features, which a renderer does not have, but three numbers per token that any 3D teacher can
give. For token n with pixels P_n, valid ones V_n (Z > 0) and object pixels O_n (Z° > 0),

    t_n = [ mean_{V_n} log Z ,  |O_n| / |P_n| ,  mean_{O_n} log Z° ]          (GEO_DIM = 3)
    m_n = [ |V_n|/|P_n| ≥ min_valid ,  1 ,  |O_n|/|P_n| ≥ min_object ]       (which channels count)
    L   = mean over samples of  Σ_n,c m_n,c |ĝ_n,c − t_n,c| / Σ_n,c m_n,c

Worked number: a token of 16×16 = 256 pixels, 64 of them on a table whose centre is 4.00 m away
(its surface there, say, 4.00 m too) and 192 on the wall at 5.00 m: t = [0.25·log 4 + 0.75·log 5,
64/256, log 4] = [1.55, 0.25, 1.39], and m = [1, 1, 1] (0.25 reaches MIN_OBJECT).

Why these three. L1 on log depth makes errors relative (10 cm at 1 m costs what 1 m at 10 m
does). The object channels carry what a ray cannot: where the objects are and the metric depth
of their centres, the quantity the depth/center/box questions ask for. (A direction channel,
normalize(mean point), would teach nothing: for a token it is the patch ray, 1 − cos ≈ 1e-5,
which the camera embedding already gives.) The loss is a per-sample mean, like the answer
loss, so a step depends on the global batch only, not on how it is split into micro-batches.

Why inference is RGB-only. The student head g = geo_head(F + E_cam) sees only the image tokens
and the camera embedding; the teacher only supplies its training target. After training, the
head (and the LLM reading geo_embed(g)) carries the geometry internally, the teacher is dropped,
and the model answers from RGB + K alone. (Shapes: B batch, H×W pixels, h×w grid, N = h·w.)

World channels (posed frames, train.py --world-channels). A multi-view teacher (VGGT, the one
VG-LLM distils) gives its point maps in the first camera's frame; views.py's world frame is that
frame levelled and moved down to the floor, a fixed rigid motion. From it the teacher can say where
on the floor plan each token's object stands, (x, z) in metres, the same in every frame that sees it.
Two more channels, pooled like the object depth over the token's object pixels and counted where
the object channel is:

    t_n += [ mean_{O_n} x° ,  mean_{O_n} z° ]                                   (WORLD_DIM = 2)

Per frame, the object depth tells how far an object is from this camera; the world channels tell
where it is in the room, which is what a distance between two objects, or a direction from one to
another, is read from. A model learns them through its own world head (model.py).

Two teachers: RenderedTeacher returns the synthetic renderer's exact depth and object depth, i.e.
a *perfect* 3D foundation model, an upper bound no real teacher reaches. DepthModelTeacher runs
any transformers metric depth model (e.g. depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf);
it has no objects, so only the depth channel is matched.
"""
import torch
import torch.nn.functional as F
from transformers import AutoImageProcessor, AutoModelForDepthEstimation

from camera_embed import camera_rays, patch_centers

GEO_DIM = 3                    # [mean log depth, object fraction, mean log depth of object centres]
WORLD_DIM = 2                  # with object_world: [mean x, mean z] of the object centres on the floor plan
LOG_DEPTH_CHANNELS = (0, 2)    # the channels that are log depths (model.geometry_features)
MIN_OBJECT = 0.25              # object channel counted where at least this fraction of a token is object
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def backproject(depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Metric z-depth (B, H, W) -> camera-frame points (B, H, W, 3) (0 where depth is 0): depth
    times the ray K⁻¹ [u+0.5, v+0.5, 1] of each pixel (an H×W grid of patches is the pixels)."""
    B, H, W = depth.shape
    uv = patch_centers((H, W), (H, W), depth.dtype, depth.device)      # (H·W, 2) pixel centres
    rays = camera_rays(K.to(depth.dtype), uv).reshape(B, H, W, 3)      # (B, H, W, 3)
    return depth[..., None] * rays


def pool(x: torch.Tensor, grid_hw) -> torch.Tensor:
    """(B, H, W, C) -> (B, h·w, C): the mean over each token's pixels (uneven cells: adaptive bins)."""
    (B, H, W, C), (h, w) = x.shape, grid_hw
    if H % h == 0 and W % w == 0:   # two single-axis sums: ~5x faster on CPU than one mean((2, 4))
        s = x.reshape(B, h, H // h, w, W // w, C).sum(2).sum(3)          # (B, h, w, C)
        return s.reshape(B, h * w, C) / ((H // h) * (W // w))
    return F.adaptive_avg_pool2d(x.permute(0, 3, 1, 2), (h, w)).flatten(2).transpose(1, 2)


def geometry_targets(depth: torch.Tensor, points: torch.Tensor, grid_hw, min_valid: float = 0.5,
                     object_depth: torch.Tensor | None = None, object_world: torch.Tensor | None = None,
                     min_object: float = MIN_OBJECT):
    """Pool dense geometry to the token grid. depth (B,H,W) metric, 0 = invalid; points (B,H,W,3)
    is accepted but not read (given K, a point map adds nothing to the depth); object_depth
    (B,H,W): z of the centre of the object each pixel sees, 0 = no object, None = unknown (the
    object channels then get no loss); object_world (B,H,W,2), with object_depth: the floor-plan
    position (x, z, metres) of that centre in the world frame of posed frames (views.object_floor),
    pooled like the object depth into WORLD_DIM more channels, counted where the object channel is.
    Returns target (B, N, C) and mask (B, N, C) bool, which entries to match; C = GEO_DIM (+ WORLD_DIM)."""
    depth = depth.float()
    v = (depth > 0).float()                                              # (B, H, W) valid pixels
    frac = pool(v[..., None], grid_hw)                                   # (B, N, 1) valid fraction
    logz = pool(depth.clamp(min=1e-6).log().mul_(v)[..., None], grid_hw) / frac.clamp(min=1e-6)  # invalid add 0
    ok = frac >= min_valid                                               # (B, N, 1)
    if object_depth is None:
        obj, logo, ok_obj = torch.zeros_like(logz), torch.zeros_like(logz), torch.zeros_like(ok)
    else:
        o = (object_depth > 0).float()                                   # (B, H, W) object pixels
        obj = pool(o[..., None], grid_hw)                                # (B, N, 1) object fraction
        logo = pool(object_depth.float().clamp(min=1e-6).log().mul_(o)[..., None], grid_hw) / obj.clamp(min=1e-6)
        ok_obj = (obj >= min_object) & (obj > 0)                         # min_object 0: any object pixel
    mask = torch.cat([ok, torch.full_like(ok, object_depth is not None), ok_obj], -1)   # (B, N, 3)
    target = torch.cat([logz, obj, logo], -1)
    if object_world is not None:
        if object_depth is None:
            raise ValueError('object_world needs object_depth (which pixels see an object)')
        xz = pool(object_world.float() * o[..., None], grid_hw) / obj.clamp(min=1e-6)   # (B, N, 2) metres
        target, mask = torch.cat([target, xz], -1), torch.cat([mask, ok_obj.expand(-1, -1, WORLD_DIM)], -1)
    return target * mask, mask


def matching_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 over the masked entries, averaged per sample (0 for a sample with none), then over all
    the samples: a batch split into micro-batches gives the same mean. pred, target, mask
    (B, N, GEO_DIM); a mask (B, N) applies to every channel."""
    m = (mask if mask.dim() == 3 else mask[..., None].expand_as(pred)).to(pred.dtype)
    per_sample = ((pred - target).abs() * m).flatten(1).sum(1)           # (B,)
    return (per_sample / m.flatten(1).sum(1).clamp(min=1)).mean()


class RenderedTeacher:
    """The synthetic renderer's exact depth and object-centre depth, pooled: a perfect 3D teacher.
    min_object: the object fraction from which a token's object depth is matched (train.py --object-min;
    single images only: a small object covers no quarter of any 16 px token, and is then never matched)."""

    def __init__(self, min_object: float = MIN_OBJECT):
        self.min_object = min_object

    def __call__(self, batch: dict, grid_hw):
        if batch['depth'].dim() == 4:   # (B, F, H, W): posed frames (views.py), one target per frame as encoded
            obj, world = batch.get('object_depth'), batch.get('object_world')
            return geometry_targets(batch['depth'].flatten(0, 1), batch['points'].flatten(0, 1), grid_hw,
                                    object_depth=None if obj is None else obj.flatten(0, 1),
                                    object_world=None if world is None else world.flatten(0, 1))
        return geometry_targets(batch['depth'], batch['points'], grid_hw, object_depth=batch.get('object_depth'),
                                min_object=self.min_object)


class DepthModelTeacher:
    """Any transformers metric depth model, frozen: depth -> points through K -> geometry_targets.

    input_size: the side the model sees (default: its image processor's, else 518, a multiple of
    DINOv2's patch 14). A metric depth net infers scale from its training cameras, so it suffers
    the focal ambiguity itself; focal_ref (pixels at input_size, the focal it was trained for)
    applies the canonical-camera correction Z ← Z · f_x / focal_ref (Metric3D, Yin et al. 2023).
    Depth Anything's relative (disparity) models are not metric and make a wrong teacher.
    """

    def __init__(self, name_or_path: str, input_size: int | None = None, focal_ref: float | None = None,
                 device=None):
        self.model = AutoModelForDepthEstimation.from_pretrained(name_or_path).eval().requires_grad_(False)
        self.device = device or torch.device('cpu')
        self.model.to(self.device)
        mean, std, size = IMAGENET_MEAN, IMAGENET_STD, 518
        try:  # a hub checkpoint has a processor; a bare save_pretrained folder does not
            proc = AutoImageProcessor.from_pretrained(name_or_path)
            mean, std = proc.image_mean, proc.image_std
            size = proc.size.get('height', size) if isinstance(proc.size, dict) else size
        except (OSError, ValueError):
            pass
        self.input_size, self.focal_ref = input_size or size, focal_ref
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)

    @torch.no_grad()
    def depth(self, images: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """images uint8 (B,3,H,W), K (B,3,3) -> metric depth (B, H, W) at the images' pixels."""
        H, W = images.shape[-2:]
        S = self.input_size
        x = F.interpolate(images.to(self.device).float() / 255, size=(S, S), mode='bilinear', align_corners=False)
        z = self.model(pixel_values=(x - self.mean) / self.std).predicted_depth   # (B, h', w')
        z = F.interpolate(z[:, None].float(), size=(H, W), mode='bilinear', align_corners=False)[:, 0]
        if self.focal_ref is not None:
            fx = K[:, 0, 0].to(z) * S / W                                      # focal at the input size
            z = z * (fx / self.focal_ref)[:, None, None]
        return z.clamp(min=0)

    def __call__(self, batch: dict, grid_hw):
        K = batch['K'].to(self.device).float()
        z = self.depth(batch['images'], K)                                 # (B, H, W)
        return geometry_targets(z, backproject(z, K), grid_hw)
