"""A pretrained MLLM as the base: Qwen2.5-VL with the camera embedding and geometry branch on its merged visual tokens."""
