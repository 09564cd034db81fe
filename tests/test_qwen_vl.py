"""
Guards pretrained/qwen_vl.py on a tiny random Qwen2.5-VL built offline (pretrained/qwen_offline.py):
at init the camera-aware model computes exactly what the base computes from the same pixels; the
loss trains only the camera embedding and the geometry branch (and the merger when asked); greedy
generation through Qwen's generate (KV cache, M-RoPE deltas) picks what a full recompute picks; a
saved folder reloads to the same outputs; a merged token's ray is the hand-computed one; DDP and
FSDP on two gloo processes train what one process trains.

    python -m pytest tests/test_qwen_vl.py -q
This file is also the two-process worker: torchrun tests/test_qwen_vl.py ddp|fsdp BASE OUT.
"""
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pytest  # noqa: E402
import torch  # noqa: E402

from data.synthetic import DataConfig, SyntheticDataset, collate, tokenizer_corpus  # noqa: E402
from distill import RenderedTeacher  # noqa: E402
from pretrained.qwen_offline import random_base  # noqa: E402
from pretrained.qwen_vl import CameraAwareQwenVL, QwenVLConfig, merged_rays  # noqa: E402
from world.scenes import SceneConfig  # noqa: E402
from conftest import two_gloo_ranks  # noqa: E402

STEPS, BATCH = 2, 4          # the two-process check: 2 AdamW steps of 4 samples (2 per rank)


def samples(indices, size: int = 32) -> dict:
    ds = SyntheticDataset(DataConfig(scene=SceneConfig(image_hw=(size, size)), tasks=('depth', 'closer')),
                          split='train', length=64)
    return collate([ds[i] for i in indices])


def build(base: str, **kw) -> CameraAwareQwenVL:
    torch.manual_seed(0)                 # the new parts start the same in every process
    return CameraAwareQwenVL(QwenVLConfig(base=base, geometry_hidden=16, **kw))


def train_steps(model, params, rank: int = 0, world: int = 1) -> list[float]:
    """STEPS AdamW steps; rank r trains on its share of each global batch; returns the global losses."""
    opt = torch.optim.AdamW(params, lr=1e-2)
    losses = []
    for step in range(STEPS):
        share = BATCH // world
        batch = samples(range(step * BATCH + rank * share, step * BATCH + (rank + 1) * share))
        _, loss, _ = model(batch, teacher=RenderedTeacher())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss = loss.detach()
        if world > 1:
            torch.distributed.all_reduce(loss)
            loss /= world
        losses.append(loss.item())
    return losses


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    return random_base(str(tmp_path_factory.mktemp('qwen') / 'base'), corpus=tokenizer_corpus())


def test_at_init_it_is_the_base_model(base):
    """E_cam and E_geo start at zero: the logits at the answer positions are the base's own."""
    model, batch = build(base), samples([0, 1])
    enc = model.encode(batch['images'], batch['K'], batch['question'], batch['answer'])
    logits, loss, parts = model(enc)
    ref = model.qwen(**{k: enc[k] for k in ('input_ids', 'attention_mask', 'mm_token_type_ids', 'pixel_values',
                                            'image_grid_thw')}).logits                      # (B, L, V)
    ref = ref.gather(1, enc['answer_pos'][..., None].expand(-1, -1, ref.shape[-1]))
    torch.testing.assert_close(logits, ref, rtol=0, atol=1e-5)
    assert torch.isfinite(loss) and parts['distill'] == 0                 # no teacher given: no matching loss
    n = (enc['input_ids'] == model.image_token_id).sum(1)
    assert n.tolist() == [4, 4]                                           # 32 px -> 56 px: 4x4 patches, 2x2 merged


@pytest.mark.parametrize('train_merger', [False, True])
def test_gradients_reach_only_the_parts_meant_to_train(base, train_merger):
    model = build(base, train_merger=train_merger)
    _, loss, parts = model(samples([2, 3]), teacher=RenderedTeacher())
    assert parts['distill'] > 0
    loss.backward()
    with_grad = {n.split('.')[0] if not n.startswith('qwen.') else n for n, p in model.named_parameters()
                 if p.grad is not None and p.grad.abs().sum() > 0}
    merger = {n for n in with_grad if n.startswith('qwen.')}
    assert {'camera', 'geo_head', 'geo_embed'} <= with_grad
    assert merger == ({n for n, _ in model.named_parameters() if '.merger.' in n} if train_merger else set())
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith('qwen.') and '.merger.' not in n)


def test_greedy_generate_matches_a_full_recompute(base):
    model = build(base, geometry=False)
    with torch.no_grad():
        model.camera.proj.weight.normal_(0, 0.5)           # a camera embedding that changes the tokens
    batch = samples([4, 5])
    questions = [batch['question'][0], 'Which is closer?']     # two lengths: left padding
    ids = model.generate_ids(batch['images'], batch['K'], questions, max_new_tokens=4)
    enc = model.encode(batch['images'], batch['K'], questions, left=True)
    vis, _ = model.visual_tokens(enc['pixel_values'], enc['image_grid_thw'], enc['K_resized'])
    seq, attn, tt = enc['input_ids'], enc['attention_mask'], enc['mm_token_type_ids']
    from transformers.modeling_outputs import BaseModelOutputWithPooling
    with torch.no_grad():
        for _ in range(ids.shape[1]):                       # no KV cache: every position recomputed
            logits = model.qwen(input_ids=seq, attention_mask=attn, mm_token_type_ids=tt,
                                image_grid_thw=enc['image_grid_thw'],
                                mm_encoder_outputs={'image': BaseModelOutputWithPooling(pooler_output=vis)}).logits
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            seq, attn = torch.cat([seq, nxt], 1), torch.cat([attn, torch.ones_like(nxt)], 1)
            tt = torch.cat([tt, torch.zeros_like(nxt, dtype=tt.dtype)], 1)
    new = seq[:, enc['input_ids'].shape[1]:]
    for row, ref in zip(ids.tolist(), new.tolist()):
        cut = row.index(model.eos_id) + 1 if model.eos_id in row else len(row)
        assert row[:cut] == ref[:cut]
    texts = model.generate(batch['images'], batch['K'], questions, max_new_tokens=4)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_save_and_load_give_the_same_model(base, tmp_path):
    model = build(base, train_merger=True)
    train_steps(model, [p for p in model.parameters() if p.requires_grad])
    model.save(str(tmp_path / 'ckpt'))
    again = CameraAwareQwenVL.load(str(tmp_path / 'ckpt'))
    batch = samples([6, 7])
    (a, la, _), (b, lb, _) = model.eval()(batch), again.eval()(batch)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert again.qwen.lm_head.weight is again.qwen.model.language_model.embed_tokens.weight   # tied, saved once
    with pytest.raises(ValueError, match='not a CameraAwareQwenVL config'):
        json.dump({'model': {'nope': 1}}, open(tmp_path / 'ckpt' / 'config.json', 'w'))
        CameraAwareQwenVL.load(str(tmp_path / 'ckpt'))


def test_a_merged_tokens_ray_is_the_hand_computed_one(base):
    """64 (H) x 48 (W) image, min = max pixels 56²: resized to 56x56, 4x4 patches of 14 px, 2x2 merged
    tokens of 28 px. Token 2 (row 1, column 0) is centred at (14, 42) in the resized pixels, that is
    u = 14·48/56 = 12, v = 42·64/56 = 48 in the original ones, where its ray is K⁻¹ [12, 48, 1]."""
    model = build(base)
    K = torch.tensor([[50.0, 0, 23.0], [0, 60.0, 33.0], [0, 0, 1]])
    image = torch.randint(0, 256, (1, 3, 64, 48), dtype=torch.uint8)
    enc = model.encode(image, K[None], ['Where?'])
    assert enc['image_grid_thw'].tolist() == [[1, 4, 4]]
    rays = merged_rays(K, (64, 48), enc['image_grid_thw'][0])
    assert rays.shape == (4, 3)
    hand = torch.tensor([(12 - 23.0) / 50.0, (48 - 33.0) / 60.0, 1.0])
    torch.testing.assert_close(rays[2], hand, rtol=0, atol=1e-6)
    torch.testing.assert_close(enc['K_resized'][0], torch.tensor([[50 * 56 / 48, 0, 23 * 56 / 48],
                                                                  [0, 60 * 56 / 64, 33 * 56 / 64], [0, 0, 1]]))
    from camera_embed import camera_features                # what the camera embedding reads: the same rays
    feats = camera_features(enc['K_resized'], (56, 56), (2, 2))[0]        # (4, 10): [..., ray x, ray y, ...]
    torch.testing.assert_close(feats[:, 6:8], rays[:, :2], rtol=0, atol=1e-6)


def test_bad_inputs_fail_clearly(base):
    model = build(base)
    batch = samples([0, 1])
    with pytest.raises(ValueError, match='one K'):
        model.encode(batch['images'], batch['K'][:1], batch['question'])
    with pytest.raises(ValueError, match='base must name'):
        CameraAwareQwenVL(QwenVLConfig())


# ----------------------------------------------------------------------------- two processes

def worker(engine: str, base: str, out: str):
    """One rank of `engine` (ddp or fsdp) on gloo: train, then rank 0 saves the model and the losses."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from common.fsdp import full_state, shard
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    model = build(base, train_merger=True)
    raw = model
    if engine == 'fsdp':
        shard(model)
    else:
        model = DDP(model)
    losses = train_steps(model, [p for p in raw.parameters() if p.requires_grad], rank, world)
    weights = full_state(raw)[0] if engine == 'fsdp' else None      # every rank joins the gather
    if rank == 0:
        raw.save(out, weights)
        json.dump(losses, open(os.path.join(out, 'losses.json'), 'w'))
    dist.barrier()                      # no rank leaves while rank 0 writes (gloo can hang on an early exit)
    dist.destroy_process_group()


@pytest.mark.skipif(shutil.which('torchrun') is None, reason='torchrun not on PATH')
@pytest.mark.parametrize('engine', ['ddp', 'fsdp'])
def test_two_gloo_processes_train_what_one_does(base, tmp_path, engine):
    model = build(base, train_merger=True)
    losses = train_steps(model, [p for p in model.parameters() if p.requires_grad])
    out = str(tmp_path / engine)
    two_gloo_ranks([os.path.abspath(__file__), engine, base, out], tmp_path / 'torchrun.log')
    assert json.load(open(os.path.join(out, 'losses.json'))) == pytest.approx(losses, abs=1e-5)
    two = CameraAwareQwenVL.load(out).state_dict()
    for k, v in model.state_dict().items():
        torch.testing.assert_close(two[k], v, rtol=0, atol=1e-5, msg=k)


if __name__ == '__main__':
    worker(*sys.argv[1:4])
