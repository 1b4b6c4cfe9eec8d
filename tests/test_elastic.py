"""ElasticLinear's inference cache: same results as views, and never stale."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from supernet.elastic import ElasticLinear


def _sliced(seed: int = 0, *, bias: bool = True) -> ElasticLinear:
    torch.manual_seed(seed)
    lin = ElasticLinear.from_linear(nn.Linear(12, 10, bias=bias))
    lin.set_active(in_features=5, out_features=7)  # column slice: a strided view
    return lin


def _expected(lin: ElasticLinear, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        w = lin.weight[: lin.active_out_features, : lin.active_in_features]
        b = None if lin.bias is None else lin.bias[: lin.active_out_features]
        return F.linear(x, w, b)


def _x(cols: int = 5) -> torch.Tensor:
    return torch.randn(2, 3, cols, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
@pytest.mark.parametrize("bias", [True, False])
def test_cached_forward_matches_views_and_is_reused(mode, bias: bool) -> None:
    lin, x = _sliced(bias=bias), _x()
    with mode():
        first = lin(x)
        cached = lin._active_cache
        second = lin(x)
    assert cached is not None and cached.weight.is_contiguous()
    assert lin._active_cache is cached  # reused, not rebuilt
    assert torch.equal(first, _expected(lin, x)) and torch.equal(second, first)
    assert torch.equal(lin(x).detach(), first)  # the autograd path agrees


def test_in_place_update_invalidates() -> None:
    lin, x = _sliced(), _x()
    with torch.no_grad():
        lin(x)
        old = lin._active_cache
        lin.weight.mul_(2.0)
        lin.bias.add_(1.0)
        out = lin(x)
    assert lin._active_cache is not old
    assert torch.equal(out, _expected(lin, x))


def test_optimizer_step_and_load_state_dict_invalidate() -> None:
    lin, x = _sliced(), _x()
    opt = torch.optim.SGD(lin.parameters(), lr=0.5)
    with torch.no_grad():
        before = lin(x)
    lin(x).sum().backward()
    opt.step()
    with torch.no_grad():
        after = lin(x)
    assert not torch.equal(after, before)
    assert torch.equal(after, _expected(lin, x))

    other = _sliced(seed=5)
    lin.load_state_dict(other.state_dict())
    with torch.no_grad():
        assert torch.equal(lin(x), _expected(other, x))


def test_replaced_or_converted_parameters_invalidate() -> None:
    lin, x = _sliced(), _x()
    with torch.no_grad():
        lin(x)
    lin.weight = nn.Parameter(torch.randn(10, 12))
    with torch.no_grad():
        assert torch.equal(lin(x), _expected(lin, x))
    lin.double()
    with torch.no_grad():
        out = lin(x.double())
    assert out.dtype == torch.float64 and torch.equal(out, _expected(lin, x.double()))


def test_storage_swap_invalidates() -> None:
    lin, x = _sliced(), _x()
    with torch.no_grad():
        lin(x)
    lin.weight.data = torch.randn(10, 12)  # same Parameter object, new storage
    with torch.no_grad():
        assert torch.equal(lin(x), _expected(lin, x))


def test_data_writes_need_clear_cache() -> None:
    lin, x = _sliced(), _x()
    with torch.no_grad():
        lin(x)
    lin.weight.data.zero_()  # bypasses the version counter (documented)
    lin.clear_cache()
    with torch.no_grad():
        assert torch.equal(lin(x), _expected(lin, x))


def test_new_sizes_and_full_width_drop_the_copy() -> None:
    lin, x = _sliced(), _x()
    with torch.no_grad():
        lin(x)
    lin.set_active(out_features=7)  # same sizes: kept
    assert lin._active_cache is not None
    lin.set_active(out_features=4)
    assert lin._active_cache is None
    with torch.no_grad():
        out = lin(x)
    assert out.shape[-1] == 4 and torch.equal(out, _expected(lin, x))
    lin.set_active(in_features=12, out_features=10)
    with torch.no_grad():
        lin(_x(12))
    assert lin._active_cache is None


def test_training_gets_gradients_on_the_full_weight_and_drops_the_copy() -> None:
    lin, x = _sliced(), _x()
    with torch.no_grad():
        lin(x)
    lin(x).sum().backward()
    assert lin._active_cache is None
    grad = lin.weight.grad
    assert grad is not None and grad.shape == (10, 12)
    assert grad[:7, :5].abs().sum() > 0
    assert grad[7:].abs().sum() == 0 and grad[:, 5:].abs().sum() == 0


def test_inference_tensor_parameters_fall_back_to_views() -> None:
    with torch.inference_mode():
        lin = _sliced()
        x = _x()
        out = lin(x)
    assert lin._active_cache is None  # no version counter to trust
    assert torch.equal(out, _expected(lin, x))


def test_deepcopy_does_not_share_a_stale_copy() -> None:
    lin, x = _sliced(), _x()
    with torch.no_grad():
        lin(x)
    twin = copy.deepcopy(lin)
    with torch.no_grad():
        twin.weight.mul_(3.0)
        assert torch.equal(twin(x), _expected(twin, x))
        assert torch.equal(lin(x), _expected(lin, x))
