from __future__ import annotations

import pytest
import torch

from fedot.learning import resolve_device, set_torch_threads


def test_cpu_and_auto() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device().type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_unavailable_raises(spec: str) -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device(spec)


@pytest.mark.parametrize("spec", ["gpu", "tpu", "cuda:x", ""])
def test_unknown_spec_raises(spec: str) -> None:
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device(spec)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_resolves_when_available() -> None:
    assert resolve_device("cuda").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match="visible"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_set_torch_threads() -> None:
    before = torch.get_num_threads()
    try:
        set_torch_threads(1)
        assert torch.get_num_threads() == 1
        set_torch_threads(None)
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError):
            set_torch_threads(0)
    finally:
        torch.set_num_threads(before)
