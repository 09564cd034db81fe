"""
Guards scripts/gpu_check.sh's pieces without a GPU: the script parses; the Qwen timing loop
(pretrained/bench_qwen.py) runs a few steps on the CPU, in one process and as two gloo ranks under
FSDP, and logs what train.py logs; scripts/gpu_summary.py turns a log into tokens/s, FLOPs and data
share by its stated formula; the offline Qwen shapes the GPU check builds are the published ones.

    python -m pytest tests/test_gpu_check.py -q
"""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from data.synthetic import tokenizer_corpus
from pretrained import bench_qwen
from pretrained.qwen_offline import SHAPES, random_base
from conftest import two_gloo_ranks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))
import gpu_summary  # noqa: E402

FLAGS = ['--steps', '2', '--batch-size', '4', '--micro-batch', '1', '--workers', '0', '--log-every', '1',
         '--image-size', '32']


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    return random_base(str(tmp_path_factory.mktemp('qwen') / 'base'), corpus=tokenizer_corpus())


def test_the_script_parses():
    subprocess.run(['bash', '-n', os.path.join(ROOT, 'scripts', 'gpu_check.sh')], check=True)


def test_bench_qwen_runs_on_a_cpu_and_the_summary_reads_its_log(base, tmp_path):
    out = str(tmp_path / 'one')
    bench_qwen.main(bench_qwen.parse_args(FLAGS + ['--base', base, '--out', out]))
    log = [json.loads(line) for line in open(os.path.join(out, 'log.jsonl'))]
    assert [r['step'] for r in log] == [1, 2] and log[0]['visual_tokens'] == 4
    assert all(k in log[0] for k in ('loss', 'tokens_per_s', 'samples_per_s', 'data_share'))
    line = gpu_summary.summary('qwen', out, 1, base)
    assert 'tokens/s per GPU' in line and 'data share' in line
    with pytest.raises(ValueError, match='--engine'):
        bench_qwen.parse_args(['--base', base, '--engine', 'zero3'])


@pytest.mark.skipif(shutil.which('torchrun') is None, reason='torchrun not on PATH')
def test_bench_qwen_under_fsdp_on_two_gloo_ranks(base, tmp_path):
    out = str(tmp_path / 'fsdp')
    two_gloo_ranks(['-m', 'pretrained.bench_qwen', *FLAGS, '--engine', 'fsdp', '--activation-checkpointing',
                    '--base', base, '--out', out], tmp_path / 'torchrun.log')
    assert len(open(os.path.join(out, 'log.jsonl')).readlines()) == 2


def test_the_summary_follows_its_formula(tmp_path, monkeypatch):
    """tiny: 6·(Φ_llm·tokens/s + Φ_vis·patches·samples/s per GPU), the first log window left out."""
    from transformers import LlamaConfig, SiglipVisionConfig
    SiglipVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2).save_pretrained(tmp_path / 'vision')
    LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                tie_word_embeddings=True).save_pretrained(tmp_path / 'llm')
    run = tmp_path / 'run'
    run.mkdir()
    recs = [dict(step=1, tokens_per_s=1.0, samples_per_s=1.0, data_share=0.9),
            dict(step=2, tokens_per_s=1000.0, samples_per_s=20.0, data_share=0.1)]
    (run / 'log.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in recs))
    n_vis, n_llm, patches, _ = gpu_summary.tiny_flops(str(tmp_path / 'vision'), str(tmp_path / 'llm'))
    assert patches == 16 and n_llm == 4 * 32 * 32 + 3 * 32 * 64 + 3 * 32   # one layer's matrices and norms
    monkeypatch.setenv('PEAK_TFLOPS', '1e-6')                        # 1 MFLOP/s: MFU in per cent of it
    line = gpu_summary.summary('tiny', str(run), 2, str(tmp_path / 'vision'), str(tmp_path / 'llm'))
    flops = 6 * (n_llm * 1000.0 + n_vis * 16 * 20.0 / 2)
    assert f'MFU {100 * flops / 1e6:.1f} %' in line and 'data share 10.0 %' in line


def test_the_offline_shapes_are_the_published_ones():
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    sizes = {}
    for name in ('0.5b', '3b'):
        text, vision = SHAPES[name]
        with torch.device('meta'):
            m = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(text_config=text, vision_config=vision,
                                                                     tie_word_embeddings=True))
        sizes[name] = (sum(p.numel() for p in m.model.language_model.parameters()) / 1e9,
                       sum(p.numel() for p in m.model.visual.parameters()) / 1e9)
    assert sizes['0.5b'] == pytest.approx((0.494, 0.669), abs=0.01)     # Qwen2.5-0.5B; Qwen2.5-VL's ViT + merger
    assert sizes['3b'] == pytest.approx((3.086, 0.669), abs=0.01)
