"""Shared by every test file: tiny models run on one thread (see `one_thread`)."""
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
