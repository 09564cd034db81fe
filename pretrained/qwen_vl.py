"""
A pretrained MLLM as the base: Qwen2.5-VL (transformers' Qwen2_5_VLForConditionalGeneration) with
the camera embedding and the geometry branch added to its merged visual tokens.

The idea. model.py joins a SigLIP and an LLM itself; here the joint is Qwen's own. Its vision tower
cuts the resized image into 14 px patches, and its merger turns each 2x2 block of patches into one
token of the LLM's width D: the tokens the LLM reads. We add to each of those
    V_n  = merger(ViT(x'))_n                                  (n_b, D)   n_b = (h/2)·(w/2), h, w patches
    E_cam = CameraEmbedding(K', (H', W'), (h/2, w/2))          (n_b, D)   zero at init
    g     = geo_head(V + E_cam)                                (n_b, GEO_DIM)   matched to the teacher
    E_geo = geo_embed([g, sin 2πz/P, cos 2πz/P])               (n_b, D)   zero at init
    tokens = V + E_cam + E_geo, scattered into the <|image_pad|> positions by Qwen's own forward
    loss   = CE(answer tokens and <|im_end|>) + λ · matching_loss(g, teacher)
and Qwen does the rest: its chat template, its M-RoPE positions (get_rope_index: each image token
gets (t, row, column) rotary positions), its decoder. The tokens go in through Qwen2_5_VLModel's
mm_encoder_outputs (the image features it would otherwise compute from pixel_values itself).

The ray of a merged token. Qwen's image processor resizes the whole H×W image to H'×W' (multiples
of 28 px, smart_resize) without cropping, so K' = diag(W'/W, H'/H, 1)·K exactly (augment.resize_affine).
A merged token covers merge×merge patches of patch pixels (28×28 px by default), row-major over the
(h/2)×(w/2) grid (the processor groups each block's patches together, the merger reads them as one),
so token n = i·(w/2) + j is centred at u = (j + ½)·28, v = (i + ½)·28 in the resized pixels, and its
ray is K'⁻¹ [u, v, 1] (camera_embed.patch_centers and camera_rays: the pinhole convention of the
whole repository). Worked number: a 64 (H) × 48 (W) image and min = max pixels 56², resized to 56×56:
a 4×4 patch grid, 2×2 merged tokens; token 2 (i = 1, j = 0) is centred at (14, 42) of the 56×56
pixels, that is (12, 48) of the original ones (K' = diag(56/48, 56/64, 1)·K).

Training. The pretrained weights are frozen by default (train_merger: the merger too); the camera
embedding and the geometry branch train. Gradients still flow through the frozen LLM into them;
the frozen vision tower keeps no activations (autograd records nothing without a grad-requiring
input). The LM head reads only the answer positions, as in model.py. Save and load: a folder of
config.json, model.safetensors (every weight, so it rebuilds offline), tokenizer and image
processor files. The Qwen2_5_VLProcessor itself needs torchvision (for videos); this file uses its
two parts, the tokenizer's chat template and AutoImageProcessor, and repeats <|image_pad|> once per
merged token as the processor does. Shapes: B images, n_b merged tokens, L sequence, A answer positions.
"""
import json
import os
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import (AutoConfig, AutoImageProcessor, AutoTokenizer, Qwen2_5_VLForConditionalGeneration)
from transformers.modeling_outputs import BaseModelOutputWithPooling

from augment import resize_affine
from camera_embed import CameraEmbedConfig, CameraEmbedding, camera_rays, patch_centers
from common.checkpoint import backbone_config, load_weights, read_json, unique_state_dict
from distill import GEO_DIM, LOG_DEPTH_CHANNELS, matching_loss
from model import geometry_features, mlp

IMAGE_PAD = '<|image_pad|>'


@dataclass
class QwenVLConfig:
    base: str = ''                  # a Qwen2.5-VL name or folder: weights, tokenizer, image processor
    camera_embed: bool = True
    camera: dict = field(default_factory=dict)   # CameraEmbedConfig fields
    geometry: bool = True
    geometry_hidden: int = 0        # 0: linear geometry head and embedding; > 0: one GELU layer this wide
    geometry_periods: tuple = ()    # metres: E_geo also reads sin/cos(2π z / P) (model.geometry_features)
    distill_weight: float = 1.0
    freeze_base: bool = True        # the pretrained weights stay; False: they train too
    train_merger: bool = False      # with freeze_base: the merger (the vision-to-LLM projector) trains

    def __post_init__(self):
        self.geometry_periods = tuple(float(p) for p in self.geometry_periods)   # a JSON list on load


# ----------------------------------------------------------------------------- geometry of merged tokens

def resized_K(K: torch.Tensor, image_hw, resized_hw) -> torch.Tensor:
    """K (3, 3) of an H×W image -> K' of the processor's H'×W' resize: diag(W'/W, H'/H, 1)·K."""
    return (resize_affine(image_hw, resized_hw).to(K.device) @ K.double()).to(K.dtype)


def merged_grid(grid_thw, patch: int, merge: int):
    """One image's patch grid (1, h, w) -> (resized (H', W') pixels, merged (h/merge, w/merge) grid)."""
    t, h, w = (int(x) for x in grid_thw)
    if t != 1 or h % merge or w % merge:
        raise ValueError(f'an image grid (t, h, w) must have t = 1 and h, w multiples of {merge}; got {(t, h, w)}')
    return (h * patch, w * patch), (h // merge, w // merge)


def merged_rays(K: torch.Tensor, image_hw, grid_thw, patch: int = 14, merge: int = 2) -> torch.Tensor:
    """The camera-frame rays K'⁻¹ [u, v, 1] through the centres of one image's merged tokens, row-major:
    (n, 3). K (3, 3) of the original H×W image; grid_thw the processor's patch grid for it."""
    resized, grid = merged_grid(grid_thw, patch, merge)
    Kr = resized_K(K, image_hw, resized)
    return camera_rays(Kr, patch_centers(resized, grid, dtype=Kr.dtype))[0]


# ----------------------------------------------------------------------------- the model

class CameraAwareQwenVL(nn.Module):

    def __init__(self, cfg: QwenVLConfig, qwen_config: dict | None = None, tokenizer=None, image_processor=None):
        """From cfg.base (pretrained weights), or from a saved config dict (load: weights follow)."""
        super().__init__()
        self.cfg = cfg
        if qwen_config is not None:
            config = dict(qwen_config)
            self.qwen = Qwen2_5_VLForConditionalGeneration(AutoConfig.for_model(config.pop('model_type'), **config))
        elif cfg.base:
            self.qwen = Qwen2_5_VLForConditionalGeneration.from_pretrained(cfg.base, dtype=torch.float32)
        else:
            raise ValueError('QwenVLConfig.base must name a Qwen2.5-VL model or folder')
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(cfg.base)
        self.image_processor = image_processor or AutoImageProcessor.from_pretrained(cfg.base)
        vc, D = self.qwen.config.vision_config, self.qwen.config.text_config.hidden_size
        self.patch, self.merge = vc.patch_size, vc.spatial_merge_size
        self.image_token_id = self.qwen.config.image_token_id
        self.eos_id = self.tokenizer.convert_tokens_to_ids('<|im_end|>')
        self.qwen.requires_grad_(not cfg.freeze_base)
        if cfg.freeze_base and cfg.train_merger:
            self.qwen.model.visual.merger.requires_grad_(True)
        self.camera = CameraEmbedding(D, CameraEmbedConfig(**cfg.camera)) if cfg.camera_embed else None
        if cfg.geometry:
            self.geo_head = mlp(D, cfg.geometry_hidden, GEO_DIM)                                   # (n, GEO_DIM)
            self.geo_embed = mlp(GEO_DIM + 2 * len(LOG_DEPTH_CHANNELS) * len(cfg.geometry_periods),
                                 cfg.geometry_hidden, D)                                          # (n, D)
            last = self.geo_embed if cfg.geometry_hidden == 0 else self.geo_embed[-1]
            nn.init.zeros_(last.weight)                 # E_geo = 0 at init: the base starts unchanged
            nn.init.zeros_(last.bias)

    @property
    def device(self) -> torch.device:
        return self.qwen.lm_head.weight.device

    # ------------------------------------------------------------------------- inputs

    def prompt(self, question: str, n_image: int) -> str:
        """The model's chat template around one image and a question, <|image_pad|> repeated n_image times."""
        messages = [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': question}]}]
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        if text.count(IMAGE_PAD) != 1:
            raise ValueError(f'the chat template must place one {IMAGE_PAD} per image; it wrote {text!r}')
        return text.replace(IMAGE_PAD, IMAGE_PAD * n_image)

    def encode(self, images, K, questions: list[str], answers: list[str] | None = None, left: bool = False) -> dict:
        """images uint8 (B, 3, H, W) (or a list of (3, H, W)), K (B, 3, 3) of those pixels -> the
        processor's pixel_values and image_grid_thw, K' of the resized images (B, 3, 3), and the
        token batch: input_ids, attention_mask, mm_token_type_ids (B, L), padded right (left: for
        generation); with answers, answer_pos / answer_ids (B, A) as tokens.encode_batch makes them."""
        images = list(images)
        K = torch.as_tensor(K, dtype=torch.float32)
        if K.shape != (len(images), 3, 3) or len(questions) != len(images):
            raise ValueError(f'need one K (3, 3) and one question per image: {len(images)} images, '
                             f'K {tuple(K.shape)}, {len(questions)} questions')
        pix = self.image_processor(images=images, return_tensors='pt')
        grids = pix['image_grid_thw']                                                         # (B, 3)
        Kr, seqs, labels = [], [], []
        for b, (img, grid) in enumerate(zip(images, grids)):
            resized, (hm, wm) = merged_grid(grid, self.patch, self.merge)
            Kr.append(resized_K(K[b], tuple(img.shape[-2:]), resized))
            ids = self.tokenizer(self.prompt(questions[b], hm * wm), add_special_tokens=False)['input_ids']
            ans = [] if answers is None else self.tokenizer(answers[b], add_special_tokens=False)['input_ids'] + [self.eos_id]
            seqs.append(ids + ans)
            labels.append([-100] * len(ids) + ans)
        L, pad = max(map(len, seqs)), self.tokenizer.pad_token_id
        ids = torch.full((len(seqs), L), pad, dtype=torch.long)
        attn = torch.zeros((len(seqs), L), dtype=torch.long)
        lab = torch.full((len(seqs), L), -100, dtype=torch.long)
        for b, (s, y) in enumerate(zip(seqs, labels)):
            sl = slice(L - len(s), L) if left else slice(0, len(s))
            ids[b, sl], attn[b, sl], lab[b, sl] = torch.tensor(s), 1, torch.tensor(y)
        out = dict(pixel_values=pix['pixel_values'], image_grid_thw=grids, K_resized=torch.stack(Kr),
                   input_ids=ids, attention_mask=attn, mm_token_type_ids=(ids == self.image_token_id).int())
        if answers is not None:   # the state at t predicts t + 1
            where = [(row[1:] != -100).nonzero().flatten() for row in lab]
            A = max(len(w) for w in where)
            out['answer_pos'] = torch.zeros((len(seqs), A), dtype=torch.long)
            out['answer_ids'] = torch.full((len(seqs), A), -100, dtype=torch.long)
            for b, w in enumerate(where):
                out['answer_pos'][b, :len(w)], out['answer_ids'][b, :len(w)] = w, lab[b, w + 1]
        return out

    # ------------------------------------------------------------------------- forward

    def visual_tokens(self, pixel_values, image_grid_thw, K_resized):
        """Qwen's merged tokens + E_cam + E_geo: a tuple of (n_b, D) per image, and the geometry
        prediction, a tuple of (n_b, GEO_DIM) (None without the geometry branch)."""
        feats = self.qwen.model.get_image_features(pixel_values.to(self.device), image_grid_thw.to(self.device))
        tokens, geos = [], []
        for x, grid, Kr in zip(feats.pooler_output, image_grid_thw, K_resized.to(self.device)):   # x (n_b, D)
            resized, merged = merged_grid(grid, self.patch, self.merge)
            if self.camera is not None:
                x = x + self.camera(Kr[None], resized, merged, check=False)[0].to(x.dtype)        # V + E_cam
            if self.cfg.geometry:
                g = self.geo_head(x)                                                              # (n_b, GEO_DIM)
                x = x + self.geo_embed(geometry_features(g, self.cfg.geometry_periods))           # + E_geo
                geos.append(g)
            tokens.append(x)
        return tuple(tokens), (tuple(geos) if self.cfg.geometry else None)

    def _distill(self, geo, teacher, batch, grids):
        """Matching loss of the geometry prediction against the teacher at the merged grid."""
        if teacher is None or geo is None:
            return torch.zeros((), device=self.device)
        merged = {merged_grid(g, self.patch, self.merge)[1] for g in grids}
        if len(merged) != 1:
            raise ValueError(f'the teacher needs one merged grid for the batch; the images give {sorted(merged)}')
        target, mask = teacher(batch, merged.pop()) if callable(teacher) else teacher
        g = torch.stack(geo)                                                                      # (B, n, GEO_DIM)
        return matching_loss(g.float(), target.to(g.device).float(), mask.to(g.device))

    def forward(self, batch: dict, teacher=None):
        """batch: data.collate output (images, K, question, answer), encoded here unless it holds
        input_ids already (encode's output, + images and K for a callable teacher). Returns logits
        (B, A, V) at the answer positions, loss = answer + distill_weight·distill, parts (detached)."""
        enc = batch if 'input_ids' in batch else self.encode(batch['images'], batch['K'], batch['question'], batch['answer'])
        vis, geo = self.visual_tokens(enc['pixel_values'], enc['image_grid_thw'], enc['K_resized'])
        ids, attn, tt, grid, at, target = (enc[k].to(self.device) for k in ('input_ids', 'attention_mask', 'mm_token_type_ids',
                                                                             'image_grid_thw', 'answer_pos', 'answer_ids'))
        hidden = self.qwen.model(input_ids=ids, attention_mask=attn, mm_token_type_ids=tt, image_grid_thw=grid,
                                 mm_encoder_outputs={'image': BaseModelOutputWithPooling(pooler_output=vis)},
                                 use_cache=False).last_hidden_state                              # (B, L, D)
        hidden = hidden.gather(1, at[..., None].expand(-1, -1, hidden.shape[-1]))                 # (B, A, D)
        logits = self.qwen.lm_head(hidden)                                                       # (B, A, V)
        nll = F.cross_entropy(logits.float().transpose(1, 2), target, reduction='none')           # (B, A)
        answer = (nll.sum(1) / (target != -100).sum(1).clamp(min=1)).mean()                      # per sample, then mean
        distill = self._distill(geo, teacher, batch, enc['image_grid_thw'])
        loss = answer + self.cfg.distill_weight * distill
        return logits, loss, dict(answer=answer.detach(), distill=distill.detach())

    @torch.no_grad()
    def generate_ids(self, images, K, questions: list[str], max_new_tokens: int = 32) -> torch.Tensor:
        """Greedy new token ids (B, T) (left padding), through Qwen's own generate and KV cache; rows
        that end early are padded with the pad token."""
        was_training = self.training
        self.eval()
        enc = {k: v.to(self.device) for k, v in self.encode(images, K, questions, left=True).items()}
        vis, _ = self.visual_tokens(enc['pixel_values'], enc['image_grid_thw'], enc['K_resized'])
        out = self.qwen.generate(input_ids=enc['input_ids'], attention_mask=enc['attention_mask'],
                                 mm_token_type_ids=enc['mm_token_type_ids'], image_grid_thw=enc['image_grid_thw'],
                                 mm_encoder_outputs={'image': BaseModelOutputWithPooling(pooler_output=vis)},
                                 max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=self.eos_id,
                                 pad_token_id=self.tokenizer.pad_token_id)
        self.train(was_training)
        return out[:, enc['input_ids'].shape[1]:]

    def generate(self, images, K, questions: list[str], max_new_tokens: int = 32) -> list[str]:
        """Greedy answers, decoded (special tokens dropped)."""
        ids = self.generate_ids(images, K, questions, max_new_tokens)
        return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    # ------------------------------------------------------------------------- checkpoints

    def save(self, path: str, weights: dict | None = None):
        """A folder: config.json (ours + Qwen's), model.safetensors (every weight, one per tied tensor),
        tokenizer and image processor files. weights: gathered from a sharded copy (common/fsdp.full_state)."""
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, 'config.json'), 'w') as f:
            json.dump(dict(model=asdict(self.cfg), qwen_config=backbone_config(self.qwen)), f, indent=1)
        save_file(unique_state_dict(self) if weights is None else weights, os.path.join(path, 'model.safetensors'),
                  metadata={'format': 'pt'})
        self.tokenizer.save_pretrained(path)
        self.image_processor.save_pretrained(path)

    @classmethod
    def load(cls, path: str) -> 'CameraAwareQwenVL':
        """Rebuild from config.json (no download), then load the weights strictly."""
        config = read_json(os.path.join(path, 'config.json'))
        unknown = set(config.get('model', {})) - {f.name for f in fields(QwenVLConfig)}
        if unknown or not {'model', 'qwen_config'} <= set(config):
            raise ValueError(f'{path}/config.json is not a CameraAwareQwenVL config (needs keys model, qwen_config; '
                             f'unknown model fields {sorted(unknown)})')
        model = cls(QwenVLConfig(**config['model']), config['qwen_config'], AutoTokenizer.from_pretrained(path),
                    AutoImageProcessor.from_pretrained(path))
        load_weights(model, os.path.join(path, 'model.safetensors'))
        return model
