"""Shared by every test file: tiny models run on one thread (see `one_thread`); a tiny random
Depth Anything saved offline, for the teacher and real-data tests; seeds for tests that draw fresh
random inputs on every run, named by their failures and replayed with TEST_SEED (see `fresh_seed`);
`two_gloo_ranks`, the one way the tests launch torchrun."""
import os
import subprocess

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEED_ENV = 'TEST_SEED'
_SEED = pytest.StashKey[int]()


@pytest.fixture
def fresh_seed(request) -> int:
    """A seed for inputs drawn afresh on every run (each run tries other cases), kept on the test so
    that its failure report names it with the command that replays it (pytest_runtest_makereport);
    that command sets TEST_SEED, which this then returns instead of a fresh one."""
    seed = seed_from(os.environ.get(SEED_ENV, ''))
    request.node.stash[_SEED] = seed
    return seed


def seed_from(text: str) -> int:
    """TEST_SEED's value where it is set, else 32 fresh bits from os.urandom (torch's and numpy's
    generators take any seed >= 0)."""
    if not text.strip():
        return int.from_bytes(os.urandom(4), 'little')
    if not text.strip().isdigit():
        raise pytest.UsageError(f'{SEED_ENV}={text!r}: a seed is a whole number >= 0')
    return int(text)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failure of a test that drew from fresh_seed ends with its seed and how to rerun it."""
    report = yield
    if report.failed and _SEED in item.stash:
        seed = item.stash[_SEED]
        note = f'fresh inputs from seed {seed}; rerun with: {SEED_ENV}={seed} python -m pytest "{item.nodeid}"'
        if hasattr(report.longrepr, 'addsection'):
            report.longrepr.addsection('seed', note)
        else:
            report.sections.append(('seed', note))
    return report


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


def two_gloo_ranks(args: list[str], log, timeout: int = 300) -> None:
    """`torchrun --standalone --nproc_per_node=2 *args` from the repository root, one thread a rank,
    its output written to `log` and shown when it fails. On a timeout torchrun is sent SIGTERM, which
    it passes to its ranks before it exits (they run in sessions of their own, out of reach of a
    kill of the launcher alone); SIGKILL follows if it has not ended 30 s later."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': ROOT}
    with open(log, 'w') as f:
        proc = subprocess.Popen(['torchrun', '--standalone', '--nproc_per_node=2', *args], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        try:
            code, why = proc.wait(timeout=timeout), ''
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            code, why = proc.wait(), f'ran past {timeout} s and was stopped with its ranks'
    if code != 0:
        why = why or f'exited with status {code}'
        pytest.fail(f'torchrun {" ".join(args)}: {why}\noutput (last 4000 characters):\n{open(log).read()[-4000:]}')
