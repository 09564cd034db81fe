"""
The camera-aware multimodal LLM: a SigLIP vision encoder and a decoder LLM joined LLaVA-style,
with the camera ray of every patch and a distilled geometry estimate added to each visual token.

Idea. From pixels alone an object's depth Z is known only together with the focal length f
(h = f·H/Z), so the model is told f: the camera embedding E_cam(K) (camera_embed.py) is added to
every visual token. A light geometry head reads the tokens (which now know K, so it can predict
*metric* geometry) and is taught by a frozen 3D teacher (distill.py); its prediction, embedded,
is added too. Zhang et al., "On the Generalization Capacities of MLLMs for Spatial
Intelligence", ICLR 2026; the joining follows LLaVA (Liu et al. 2023) and nanoVLM.

    x', K'  = resize(image, K) to the encoder's S×S        (augment.resize keeps K exact)
    F       = SigLIP(x')                                   (B, N, Dv)    N = h·w patches
    E_cam   = CameraEmbedding(K', (S, S), (h, w), c2w)     (B, N, Dv)    zero at init*
    g       = head(F + E_cam)                              (B, N, GEO_DIM)  matched to the teacher
    E_geo   = embed([g, sin 2πz/P, cos 2πz/P])             (B, N, Dv)    z = e^g (depths), P = 10, 1 m; zero at init*
    E_world = embed'(head'(F + E_cam))                     (B, N, Dv)    posed frames, --world-channels: each
                                                                         token's object on the floor plan; zero at init
    V       = projector(pixel_shuffle(F + E_cam + E_geo [+ E_world]))  (B, N/r², D)
    prompt  = [bos] <image>×N/r² question "\n"  ->  answer <eos>     (or the LLM's chat template)
    loss    = CE(answer tokens and eos) + μ · W1(answer digits) + λ · matching_loss(g, teacher)
              (the LM head reads only the hidden states that predict answer tokens: (B, A, V), not (B, L, V))

(* only on pretrained backbones, which must start unchanged; from scratch they start random.)

Shape letters: B batch, N visual tokens, Dv vision width, D LLM width, L sequence, V vocab.
At inference only RGB + K (+ the camera pose c2w where known) go in; the teacher is gone. The pose
is given to the model, not withheld: with a gravity-aligned c2w (scenes.py: pitch and roll, no
translation) the ray directions d̂ of E_cam point along gravity-aligned axes, so the model is told
where "down" is; without one (c2w None, or the identity of a level camera) d̂ is in the camera frame.
Backbones come from transformers: tiny ones built from configs (offline, CPU), or real ones by
name, folder or GGUF file (`python -m tools.gguf smollm2 OUT` writes a safetensors folder that
loads fast). Text and prompts: tokens.py; weight files: checkpoint.py.
Worked number: the default tiny model reads 128 px through 16 px patches, an 8×8 grid of N = 64
visual tokens; with pixel_shuffle r = 2 the LLM gets 16 tokens of width D from 4·Dv features each.
"""
import copy
import json
import os
from dataclasses import asdict, dataclass, field, fields
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import (AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaConfig, SiglipVisionConfig,
                          SiglipVisionModel)

from augment import resize
from camera_embed import CameraEmbedConfig, CameraEmbedding
from checkpoint import backbone_config, load_weights, read_json, unique_state_dict
from conv_stem import add_conv_stem
from distill import GEO_DIM, LOG_DEPTH_CHANNELS, WORLD_DIM, matching_loss
from tokens import build_tokenizer, digit_token_ids, encode_batch

PIXEL_MEAN, PIXEL_STD = 0.5, 0.5  # SigLIP's normalisation: pixels to [-1, 1]


@dataclass
class ModelConfig:
    # vision encoder: None -> tiny SigLIP from these numbers; else a SigLIP name or folder
    vision: str | None = None
    image_size: int = 128
    patch_size: int = 16
    vision_width: int = 128
    vision_layers: int = 2
    vision_heads: int = 4
    # language model: None -> tiny Llama + character tokenizer; else a name or folder (+ gguf_file in it)
    llm: str | None = None
    gguf_file: str | None = None
    llm_width: int = 128
    llm_layers: int = 2
    llm_heads: int = 4
    max_seq_len: int = 1024
    # the joint
    pixel_shuffle: int = 1        # r: r×r neighbouring tokens -> one LLM token (nanoVLM); grid % r == 0
    camera_embed: bool = True
    camera: dict = field(default_factory=dict)   # CameraEmbedConfig fields, e.g. {'num_freqs': 6}
    geometry: bool = True
    geometry_hidden: int = 0      # 0: linear geometry head and embedding; > 0: one GELU layer this wide
    geometry_periods: tuple = ()  # metres: E_geo also reads sin/cos(2π z / P) of the predicted depths (geometry_features)
    world_channels: bool = False  # posed frames: a world head places each token's object on the floor plan
    digit_loss: float = 0.0       # weight of the ordinal loss on answer digits (digit_wasserstein)
    camera_text: bool = False     # a baseline: K written before each question (camera_embed.camera_text)
    pose: bool = True             # E_cam reads the pose c2w when given (False: as if level, a control)
    zero_init: bool = True        # E_cam and E_geo start at 0 (keeps a pretrained VLM unchanged); False
                                  # for backbones trained from scratch, where it only delays the signal
    distill_weight: float = 1.0
    detach_phase: bool = False    # E_geo's sin/cos of the predicted depths pass no gradient to the geometry head
    object_weight: float = 0.0    # + this × the L1 of the object-depth channel alone (its own per-sample mean)
    freeze_vision: bool = False   # for pretrained backbones: train projector + camera/geometry parts only
    freeze_llm: bool = False
    conv_stem: bool = False       # tiny encoder: stride-2 3×3 convolutions in place of the patch projection (conv_stem.py)
    attn_implementation: str = 'sdpa'

    def __post_init__(self):
        self.geometry_periods = tuple(float(p) for p in self.geometry_periods)   # a JSON list on load


# ----------------------------------------------------------------------------- backbones

def build_vision(cfg: ModelConfig, config: dict | None = None) -> SiglipVisionModel:
    """Saved config dict (load) > name/folder (pretrained weights) > tiny random from cfg.
    No pooling head: only the patch tokens are used (and DDP needs every parameter used)."""
    if config is not None:
        return SiglipVisionModel(SiglipVisionConfig(**config))
    if cfg.vision:
        return SiglipVisionModel.from_pretrained(cfg.vision, vision_use_head=False, dtype=torch.float32)
    return SiglipVisionModel(SiglipVisionConfig(
        image_size=cfg.image_size, patch_size=cfg.patch_size, hidden_size=cfg.vision_width,
        intermediate_size=4 * cfg.vision_width, num_hidden_layers=cfg.vision_layers,
        num_attention_heads=cfg.vision_heads, vision_use_head=False))


def build_llm(cfg: ModelConfig, tok, config: dict | None = None):
    """Saved config dict (load) > name/folder/GGUF (pretrained weights) > tiny random Llama."""
    attn = dict(attn_implementation=cfg.attn_implementation)
    if config is not None:
        config = dict(config)
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(config.pop('model_type'), **config), **attn)
    if cfg.llm:
        gguf = dict(gguf_file=cfg.gguf_file) if cfg.gguf_file else {}
        return AutoModelForCausalLM.from_pretrained(cfg.llm, dtype=torch.float32, **gguf, **attn)
    return AutoModelForCausalLM.from_config(LlamaConfig(
        vocab_size=len(tok), hidden_size=cfg.llm_width, intermediate_size=4 * cfg.llm_width,
        num_hidden_layers=cfg.llm_layers, num_attention_heads=cfg.llm_heads,
        num_key_value_heads=cfg.llm_heads, max_position_embeddings=cfg.max_seq_len,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id), **attn)


# ----------------------------------------------------------------------------- pure pieces

def mlp(d_in: int, hidden: int, d_out: int) -> nn.Module:
    """Linear if hidden == 0, else Linear -> GELU -> Linear."""
    if hidden == 0:
        return nn.Linear(d_in, d_out)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_out))


def pixel_shuffle(x: torch.Tensor, grid_hw, r: int) -> torch.Tensor:
    """(B, h·w, C) -> (B, (h/r)·(w/r), r²·C): each r×r block of tokens becomes one token."""
    if r == 1:
        return x
    (h, w), (B, _, C) = grid_hw, x.shape
    x = x.reshape(B, h // r, r, w // r, r, C).permute(0, 1, 3, 2, 4, 5)   # (B, h/r, w/r, r, r, C)
    return x.reshape(B, (h // r) * (w // r), r * r * C)


def geometry_features(g: torch.Tensor, periods=(), detach_phase: bool = False) -> torch.Tensor:
    """What E_geo reads: the geometry prediction g (B, N, GEO_DIM) and, for each predicted depth
    z = exp(g_c) (c in LOG_DEPTH_CHANNELS) and period P (metres), sin and cos of 2π z / P:
    (B, N, GEO_DIM + 2·2·len(periods)).

    Why. The answer is written in decimal, and the digit at place 10^k of z is a step function of
    the phase of z / 10^(k+1): with P = 10 m the leading digit (z < 10 m), with P = 1 m the first
    decimal, are *linearly* separable arcs of the (sin, cos) circle. A tiny LLM reading a linear
    embedding of log z must instead learn a 50-step staircase with its MLP, which it does not do in
    a CPU budget (measured with the exact geometry fed in: the first decimal's cross-entropy stays
    at chance, 2.3 nats, through 1500 steps; with these features it falls to 1.1 in 450). NeRF's
    positional encoding is the same idea, with the frequencies chosen by the number format."""
    if not periods:
        return g
    z = g[..., list(LOG_DEPTH_CHANNELS)].float().clamp(max=5).exp()              # (B, N, 2) metres
    # detach_phase: no answer gradient through the phases: d sin(2πz/P)/d log z = (2πz/P)·cos, 60× for
    # z = 1 m at P = 0.1 m, which swamps the head's distillation (measured: its loss 0.19 -> 1.6)
    z = z.detach() if detach_phase else z
    phase = 2 * torch.pi * torch.cat([z / p for p in periods], -1)                 # (B, N, 2·len(periods))
    return torch.cat([g, phase.sin().to(g.dtype), phase.cos().to(g.dtype)], -1)


def digit_wasserstein(logits: torch.Tensor, target: torch.Tensor, digit_ids: torch.Tensor) -> torch.Tensor:
    """An ordinal loss on the digits of numeric answers ("Regress, don't guess", Zausinger et al.
    2025): cross-entropy scores a '6' for a true '7' as wrong as a '1'; the Wasserstein-1 distance
    between the predicted distribution over the ten digits p (renormalised) and the true digit d,
        W1 = Σ_k |P(k) − 1[k ≥ d]|,   P = cumsum(p),
    is |E − d|-like and rewards being close. logits (B, L, V) predict target (B, L) (−100: no loss).
    Mean over each sample's digit positions (0 for a sample without digits), then over all the
    samples, so that, as every loss here, it does not depend on how a batch is split."""
    lut = torch.full((logits.shape[-1],), -1, dtype=torch.long, device=target.device)
    lut[digit_ids] = torch.arange(10, device=target.device)
    d = torch.where(target >= 0, lut[target.clamp(min=0)], -1)          # (B, L) the digit or −1
    p = logits[..., digit_ids].float().softmax(-1)                       # (B, L, 10)
    ks = torch.arange(10, device=target.device)
    w1 = (p.cumsum(-1) - (ks >= d[..., None]).float()).abs().sum(-1)    # (B, L)
    is_digit = (d >= 0).float()
    n = is_digit.sum(1)
    per_sample = (w1 * is_digit).sum(1) / n.clamp(min=1)                 # (B,)
    return per_sample.mean()


# ----------------------------------------------------------------------------- the model

class CameraAwareMLLM(nn.Module):

    def __init__(self, cfg: ModelConfig, vision_config: dict | None = None, llm_config: dict | None = None,
                 tokenizer=None):
        """Backbone configs + tokenizer are given only by `load` (rebuild offline, then load weights)."""
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer or build_tokenizer(cfg)
        self.vision = build_vision(cfg, vision_config)
        if cfg.conv_stem:
            add_conv_stem(self.vision)
        self.llm = build_llm(cfg, self.tokenizer, llm_config)
        vc = self.vision.config
        self.image_size, Dv, D = vc.image_size, vc.hidden_size, self.llm.config.hidden_size
        self.enc_grid_hw = (vc.image_size // vc.patch_size,) * 2           # (h, w) of the encoder
        r = cfg.pixel_shuffle
        if self.enc_grid_hw[0] % r:
            raise ValueError(f'pixel_shuffle={r} does not divide the patch grid {self.enc_grid_hw}')
        self.projector = nn.Sequential(nn.Linear(r * r * Dv, D), nn.GELU(), nn.Linear(D, D))
        # built last, so that with one seed the camera-free model gets the same backbone weights
        self.camera = CameraEmbedding(Dv, CameraEmbedConfig(**cfg.camera)) if cfg.camera_embed else None
        if self.camera is not None and not cfg.zero_init:
            self.camera.proj.reset_parameters()     # from scratch: nothing to preserve, a signal from step 0
        if cfg.geometry:
            # linear both ways: log z = log f + log H − log h is additive, so a linear read-out of
            # F + E_cam can add the camera's log f to the image's size cue; the cost stays ~1% of a step
            self.geo_head = mlp(Dv, cfg.geometry_hidden, GEO_DIM)                      # (B, N, GEO_DIM)
            n_geo = GEO_DIM + 2 * len(LOG_DEPTH_CHANNELS) * len(cfg.geometry_periods)
            self.geo_embed = mlp(n_geo, cfg.geometry_hidden, Dv)                       # (B, N, Dv)
            if cfg.zero_init:                       # E_geo = 0 at init: a pretrained VLM starts unchanged
                last = self.geo_embed if cfg.geometry_hidden == 0 else self.geo_embed[-1]
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)
        if cfg.world_channels:
            self.add_world_channels()
        self.vision.requires_grad_(not cfg.freeze_vision)
        self.llm.requires_grad_(not cfg.freeze_llm)
        if cfg.digit_loss > 0:  # token ids of '0'..'9', checked once; a buffer so it follows .to(device)
            self.register_buffer('digit_ids', digit_token_ids(self.tokenizer), persistent=False)

    def add_world_channels(self):
        """The world head w = head(F + E_cam) (B, N, WORLD_DIM), matched to the teacher's floor-plan
        position of each token's object (distill.geometry_targets' object_world), and its embedding
        E_world, added like E_geo. E_world starts at 0, so a trained model grown by it (train.py
        --init-from RUN --world-channels) starts unchanged."""
        if not self.cfg.geometry:
            raise ValueError('the world channels need the geometry branch (ModelConfig.geometry)')
        self.cfg.world_channels, Dv = True, self.vision.config.hidden_size
        self.world_head = mlp(Dv, self.cfg.geometry_hidden, WORLD_DIM).to(self.projector[0].weight)
        self.world_embed = mlp(WORLD_DIM, self.cfg.geometry_hidden, Dv).to(self.projector[0].weight)
        last = self.world_embed if self.cfg.geometry_hidden == 0 else self.world_embed[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def grow_llm(self, n_layers: int):
        """Deepen the tiny LLM to n_layers by block expansion (LLaMA Pro, Wu et al. 2024): after evenly
        spaced layers, a copy whose attention output and MLP down projections are 0, so each new block
        adds nothing to the residual stream and the grown model computes what it did (train.py
        --init-from RUN --llm-layers N). A 2-layer LLM has exactly the two hops a question about two
        named objects needs (name -> its pixels, answer -> the names), and none to spare."""
        layers, k = list(self.llm.model.layers), n_layers - len(self.llm.model.layers)
        if self.cfg.llm or k < 1 or k > len(layers):
            raise ValueError(f'grow_llm: a tiny LLM of {len(layers)} layers grows to {len(layers) + 1}..'
                             f'{2 * len(layers)} (a twin per layer at most); got {n_layers} (llm {self.cfg.llm})')
        after, grown = {round(j * (len(layers) - 1) / max(k - 1, 1)) for j in range(k)}, []   # evenly spaced
        for i, layer in enumerate(layers):
            grown.append(layer)
            if i in after:
                twin = copy.deepcopy(layer)
                nn.init.zeros_(twin.self_attn.o_proj.weight)
                nn.init.zeros_(twin.mlp.down_proj.weight)
                grown.append(twin)
        for i, layer in enumerate(grown):
            layer.self_attn.layer_idx = i          # the KV cache's index of the layer
        self.llm.model.layers = nn.ModuleList(grown)
        self.llm.config.num_hidden_layers = self.cfg.llm_layers = len(grown)

    @property
    def grid_hw(self) -> tuple[int, int]:
        """(h, w) of the visual tokens that reach the LLM (after pixel shuffle)."""
        r = self.cfg.pixel_shuffle
        return self.enc_grid_hw[0] // r, self.enc_grid_hw[1] // r

    @property
    def device(self) -> torch.device:
        return self.projector[0].weight.device

    def visual_tokens(self, images: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor | None = None,
                      check: bool = True):
        """images uint8 (B,3,H,W), K (B,3,3) of those pixels, c2w (B,4,4) camera-to-world pose or None
        (resizing does not change it) -> LLM tokens (B, N/r², D) and the geometry prediction
        (B, N, GEO_DIM) (None without the geometry branch). check=False: K and c2w were validated
        where they entered (encode_batch), so the camera embedding skips its host-side checks.
        Several frames per sample, (B,F,3,H,W), (B,F,3,3), (B,F,4,4): each frame is encoded on its
        own, with its own E_cam (Plücker rays in the shared world frame); tokens follow frame by frame."""
        if images.dim() == 5:   # (B, F, 3, H, W): F posed frames, each with its own K and pose (views.py)
            B, n_frames = images.shape[:2]
            vis, geo = self.visual_tokens(images.flatten(0, 1), K.flatten(0, 1),
                                          None if c2w is None else torch.as_tensor(c2w).flatten(0, 1), check)
            return vis.unflatten(0, (B, n_frames)).flatten(1, 2), geo          # (B, F·N/r², D), (B·F, N, GEO_DIM)
        if images.dim() != 4 or images.shape[1] != 3 or K.shape != (images.shape[0], 3, 3):
            raise ValueError(f'need images (B, 3, H, W) and K (B, 3, 3) of one batch size B, got images '
                             f'{tuple(images.shape)} and K {tuple(K.shape)}')
        S, dtype = self.image_size, self.projector[0].weight.dtype
        x = images.to(self.device, non_blocking=True).to(torch.float32)                # (B, 3, H, W)
        K = K.to(self.device, torch.float32, non_blocking=True)
        if x.shape[-2:] != (S, S):
            x, K = resize(x, K, (S, S))                                    # K' for the S×S pixels
        x = ((x / 255 - PIXEL_MEAN) / PIXEL_STD).to(dtype)
        feats = self.vision(pixel_values=x).last_hidden_state              # (B, N, Dv)
        if self.camera is not None:
            c2w = None if c2w is None or not self.cfg.pose else torch.as_tensor(c2w).to(self.device, torch.float32, non_blocking=True)
            feats = feats + self.camera(K, (S, S), self.enc_grid_hw, c2w, check=check).to(feats.dtype)  # F + E_cam
        geo = None
        if self.cfg.geometry:
            geo = self.geo_head(feats)                                      # (B, N, GEO_DIM) from F + E_cam
            extra = self.geo_embed(geometry_features(geo, self.cfg.geometry_periods, self.cfg.detach_phase))  # E_geo
            if self.cfg.world_channels:
                world = self.world_head(feats)                              # (B, N, WORLD_DIM) from F + E_cam
                extra = extra + self.world_embed(world)                     # + E_world
                geo = torch.cat([geo, world], -1)                           # (B, N, GEO_DIM + WORLD_DIM)
            feats = feats + extra                                           # F + E_cam + E_geo (+ E_world)
        return self.projector(pixel_shuffle(feats, self.enc_grid_hw, self.cfg.pixel_shuffle)), geo

    def encoder(self, pad_to: int = 1, left: bool = False):
        """encode_batch for this model (its tokenizer, visual token count, camera-text baseline):
        a picklable function of a batch, for DataLoader workers."""
        n = self.grid_hw[0] * self.grid_hw[1]
        return partial(encode_batch, self.tokenizer, n_image=n, left=left, pad_to=pad_to,
                       camera_text_size=self.image_size if self.cfg.camera_text else 0)

    def embed_inputs(self, ids: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        """Token embeddings (B, L, D) with the visual tokens vis (B, n, D) at the -1 positions of ids."""
        is_img = ids == -1                                                   # (B, L)
        emb = self.llm.get_input_embeddings()(ids.clamp(min=0))              # (B, L, D)
        return emb.masked_scatter(is_img[..., None], vis.to(emb.dtype))      # row-major, n per row

    def _distill(self, geo, teacher, batch):
        """Teacher matching on the geometry prediction; teacher is (target, mask) or a callable
        teacher(batch, grid_hw). Targets at the LLM grid (pixel shuffle) are met by pooling g."""
        if teacher is None or geo is None:
            return torch.zeros((), device=self.device)
        target, mask = teacher(batch, self.enc_grid_hw) if callable(teacher) else teacher
        target, mask = target.to(geo.device), mask.to(geo.device)
        if target.shape[1] != geo.shape[1]:
            (h, w), r = self.enc_grid_hw, self.cfg.pixel_shuffle
            if target.shape[1] != (h // r) * (w // r):
                raise ValueError(f'teacher target has {target.shape[1]} tokens; expected {h * w} '
                                 f'(grid {(h, w)}) or {(h // r) * (w // r)} (grid {self.grid_hw})')
            geo = pixel_shuffle(geo, (h, w), r).unflatten(-1, (r * r, geo.shape[-1])).mean(2)   # (B, N/r², G)
        loss = matching_loss(geo.float(), target.float(), mask)
        if self.cfg.object_weight > 0:   # the queried quantity: the object-centre depth channel on its own
            c = LOG_DEPTH_CHANNELS[1]
            loss = loss + self.cfg.object_weight * matching_loss(geo[..., c:c + 1].float(), target[..., c:c + 1].float(),
                                                                 mask[..., c:c + 1])
        return loss

    def forward(self, batch: dict, teacher=None, answer: bool = True):
        """batch: data.collate output (images, K, question, answer, c2w if any), tokenised by
        encode_batch (else here). Returns logits (B, A, V) at the A answer positions only,
        loss = answer + distill_weight·distill (+ digit_loss·digit), parts = the terms, detached.

        The LM head reads only the hidden states that predict an answer token (gathered first):
        full-vocabulary logits of every position, image tokens included, would cost B·L·V floats
        (about 1 GB for 8 samples of SmolLM2 at 224 px) for a handful of answer tokens; float32
        only for the loss. (An LLM that scales or soft-caps its logits inside its own forward would
        need that step here too; Llama-style models do not.)
        answer=False: a geometry-only step (train.py --geometry-steps): the LLM is not run, and the
        loss is the distillation term alone (logits None, the answer part 0)."""
        vis, geo = self.visual_tokens(batch['images'], batch['K'], batch.get('c2w'), check=False)
        if not answer:
            distill = self._distill(geo, teacher, batch)
            return None, distill, dict(answer=torch.zeros((), device=distill.device), distill=distill.detach())
        enc = batch if 'input_ids' in batch else self.encode(batch)
        ids, attn, pos, at, target = (enc[k].to(self.device, non_blocking=True) for k in
                                      ('input_ids', 'attention_mask', 'position_ids', 'answer_pos', 'answer_ids'))
        emb = self.embed_inputs(ids, vis)                                     # (B, L, D)
        hidden = self.llm.base_model(inputs_embeds=emb, attention_mask=attn, position_ids=pos,
                                     use_cache=False).last_hidden_state       # (B, L, D)
        hidden = hidden.gather(1, at[..., None].expand(-1, -1, hidden.shape[-1]))   # (B, A, D)
        logits = self.llm.get_output_embeddings()(hidden)                     # (B, A, V)
        # mean over each answer's tokens, then over samples: a 5-token depth answer weighs as much as
        # a 200-token detect answer (a pooled per-token mean would train mostly on detect)
        nll = F.cross_entropy(logits.float().transpose(1, 2), target, reduction='none')   # (B, A)
        answer = (nll.sum(1) / (target != -100).sum(1).clamp(min=1)).mean()
        distill = self._distill(geo, teacher, batch)
        loss = answer + self.cfg.distill_weight * distill
        parts = dict(answer=answer.detach(), distill=distill.detach())
        if self.cfg.digit_loss > 0:
            digit = digit_wasserstein(logits, target, self.digit_ids)
            loss = loss + self.cfg.digit_loss * digit
            parts['digit'] = digit.detach()
        return logits, loss, parts

    def encode(self, batch: dict, left: bool = False, pad_to: int = 1) -> dict:
        """encode_batch with this model's settings (see encoder)."""
        return self.encoder(pad_to, left)(batch)

    @torch.no_grad()
    def generate(self, images, K, questions: list[str], max_new_tokens: int = 64, use_cache=True,
                 c2w=None) -> list[str]:
        """Batched greedy decoding (left padding), with or without the KV cache; stops at eos."""
        was_training = self.training
        self.eval()
        vis, _ = self.visual_tokens(images, K, c2w)
        enc = self.encode(dict(images=images, K=K, question=questions, c2w=c2w), left=True)
        emb = self.embed_inputs(enc['input_ids'].to(self.device), vis)
        attn, pos = enc['attention_mask'].to(self.device), enc['position_ids'].to(self.device)
        eos, embed = self.tokenizer.eos_token_id, self.llm.get_input_embeddings()
        done = torch.zeros(len(questions), dtype=torch.bool, device=self.device)
        out, cache, x, x_pos = [], None, emb, pos                         # x: what the LLM reads next
        for _ in range(max_new_tokens):
            o = self.llm(inputs_embeds=x, attention_mask=attn, position_ids=x_pos, past_key_values=cache,
                         use_cache=use_cache)
            nxt = o.logits[:, -1].argmax(-1).masked_fill(done, eos)        # (B,)
            out.append(nxt)
            done |= nxt == eos
            if done.all():
                break
            new, pos = embed(nxt)[:, None], torch.cat([pos, pos[:, -1:] + 1], 1)
            attn = torch.cat([attn, torch.ones_like(attn[:, :1])], 1)
            if use_cache:
                cache, x, x_pos = o.past_key_values, new, pos[:, -1:]      # feed only the new token
            else:
                emb = torch.cat([emb, new], 1)
                x, x_pos = emb, pos                                        # recompute everything
        self.train(was_training)
        texts = []
        for row in torch.stack(out, 1).tolist():
            row = row[:row.index(eos)] if eos in row else row
            texts.append(self.tokenizer.decode(row, skip_special_tokens=True).strip())
        return texts

    # ------------------------------------------------------------------------- checkpoints

    def save(self, path: str):
        """A folder: config.json (ours + both backbone configs), model.safetensors, tokenizer files."""
        os.makedirs(path, exist_ok=True)
        config = dict(model=asdict(self.cfg), vision_config=backbone_config(self.vision),
                      llm_config=backbone_config(self.llm))
        with open(os.path.join(path, 'config.json'), 'w') as f:
            json.dump(config, f, indent=1)
        save_file(unique_state_dict(self), os.path.join(path, 'model.safetensors'), metadata={'format': 'pt'})
        self.tokenizer.save_pretrained(path)

    @classmethod
    def load(cls, path: str) -> 'CameraAwareMLLM':
        """Rebuild from config.json (no download), then load the weights strictly."""
        config = read_json(os.path.join(path, 'config.json'))
        known = {f.name for f in fields(ModelConfig)}
        unknown = set(config.get('model', {})) - known
        if unknown or not {'model', 'vision_config', 'llm_config'} <= set(config):
            raise ValueError(f'{path}/config.json is not a CameraAwareMLLM config (needs keys model, '
                             f'vision_config, llm_config; unknown model fields {sorted(unknown)})')
        try:
            tok = AutoTokenizer.from_pretrained(path)
        except Exception as e:
            raise ValueError(f'{path}: cannot load the tokenizer files (tokenizer*.json): {e}') from e
        model = cls(ModelConfig(**config['model']), config['vision_config'], config['llm_config'], tok)
        load_weights(model, os.path.join(path, 'model.safetensors'))
        return model
