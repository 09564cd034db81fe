"""Shared by every test file: tiny models run on one thread (see `one_thread`); a tiny random
Depth Anything saved offline, for the teacher and real-data tests."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread(request):
    """Tiny models gain nothing from a second thread, and on a shared 2-core machine OpenMP's
    spinning threads make small ops 10-40x slower; restored afterwards. Tests marked slow (the
    real SmolLM2) keep every thread."""
    if request.node.get_closest_marker('slow'):
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='session')
def tiny_depth_model(tmp_path_factory):
    """A random 2-layer Depth Anything with its image processor (56 px input), saved offline."""
    from transformers import (DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config,
                              DPTImageProcessor)
    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            image_size=56, patch_size=14, out_features=['stage1', 'stage2'],
                            reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[16, 32],
                              reassemble_factors=[2, 1], fusion_hidden_size=16, head_hidden_size=8,
                              depth_estimation_type='metric', max_depth=10)
    path = str(tmp_path_factory.mktemp('depth_anything'))
    DepthAnythingForDepthEstimation(cfg).save_pretrained(path)
    DPTImageProcessor(size={'height': 56, 'width': 56}).save_pretrained(path)
    return path
