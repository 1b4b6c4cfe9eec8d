"""Subnets: parity with an independent reference, depth rule, names, validation."""

from __future__ import annotations

import copy
import random
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import FAMILY_NAMES, LAYOUT_NAMES, tiny_batch, tiny_model
from reference import reference_subnet

import supernet as sn
from supernet.convert import Arch
from supernet.elastic.depth import least_multiplier
from supernet.subnet import resolve_subnet

TOL = 1e-6


def _run(model, batch):
    with torch.no_grad():
        return model(**batch, output_hidden_states=True)


def _check_against_reference(stock, cfg: sn.SubnetConfig) -> None:
    model = sn.to_supernet(copy.deepcopy(stock))
    resolved = sn.set_active_subnet(model, cfg)
    ref = reference_subnet(stock, list(resolved.heads), list(resolved.ffn), list(resolved.layers))
    batch = tiny_batch(seed=3)
    got, want = _run(model, batch), _run(ref, batch)
    assert (got.logits - want.logits).abs().max().item() <= TOL
    # embedding output + one entry per executed layer
    assert len(got.hidden_states) == len(want.hidden_states) == 1 + len(resolved.layers)
    for g, w in zip(got.hidden_states, want.hidden_states, strict=True):
        assert (g - w).abs().max().item() <= TOL


@pytest.mark.parametrize("family", FAMILY_NAMES + LAYOUT_NAMES)
@pytest.mark.parametrize("width, depth", [(0.5, 1.0), (0.75, 0.5), (0.25, 0.75), (1.0, 0.5)])
def test_uniform_subnet_equals_reference(family: str, width: float, depth: float) -> None:
    _check_against_reference(tiny_model(family), sn.SubnetConfig(width_mult=width, depth_mult=depth))


@pytest.mark.parametrize("family", FAMILY_NAMES + LAYOUT_NAMES)
def test_per_layer_subnet_equals_reference(family: str) -> None:
    cfg = sn.SubnetConfig(heads=(4, 1, 3, 2), ffn=(48, 7, 20, 33), layers=(0, 1, 3))
    _check_against_reference(tiny_model(family), cfg)


def test_switching_subnets_back_to_max_restores_output() -> None:
    stock = tiny_model("bert")
    model = sn.to_supernet(copy.deepcopy(stock))
    batch = tiny_batch()
    for cfg in sn.SearchSpace().grid():
        sn.set_active_subnet(model, cfg)
        _run(model, batch)
    sn.set_max_net(model)
    assert sn.active_subnet(model) == sn.MAX_NET
    assert torch.equal(_run(model, batch).logits, _run(stock, batch).logits)


def test_skipped_layers_are_not_executed() -> None:
    model = sn.to_supernet(tiny_model("bert"))
    calls: list[int] = []
    for i, layer in enumerate(model.bert.encoder.layer._modules.values()):
        layer.register_forward_hook(lambda *_, _i=i: calls.append(_i))
    sn.set_active_subnet(model, sn.SubnetConfig(depth_mult=0.5))
    _run(model, tiny_batch())
    assert calls == [0, 2]
    assert sn.active_layers(model) == [0, 2]


@pytest.mark.parametrize(
    "layers, depth, expected",
    [
        (12, 1.0, list(range(12))),
        (12, 0.75, [0, 1, 2, 4, 5, 6, 8, 9, 10]),
        (12, 0.5, [0, 2, 4, 6, 8, 10]),
        (12, 0.25, [0, 4, 8]),
        (6, 1.0, [0, 1, 2, 3, 4, 5]),
        (6, 0.75, [0, 1, 2, 4]),
        (6, 0.5, [0, 2, 4]),
        (6, 0.25, [0, 4]),
        (4, 0.5, [0, 2]),
    ],
)
def test_depth_rule(layers: int, depth: float, expected: list[int]) -> None:
    assert sn.kept_layers(layers, depth) == expected


def test_width_counts() -> None:
    arch = sn.to_supernet(tiny_model("bert")).__dict__["_supernet_state"].arch
    r = resolve_subnet(arch, sn.SubnetConfig(width_mult=0.75))
    assert r.heads == (3, 3, 3, 3) and r.ffn == (36, 36, 36, 36)
    r = resolve_subnet(arch, sn.SubnetConfig(width_mult=0.25))
    assert r.heads == (1, 1, 1, 1) and r.ffn == (12, 12, 12, 12)


def test_names_and_values() -> None:
    cfg = sn.SubnetConfig(width_mult=0.5, depth_mult=0.75)
    assert cfg.name == "w0.50-d0.75"
    assert sn.SubnetConfig().name == "w1.00-d1.00"
    assert sn.SubnetConfig.from_name("w0.50-d0.75") == cfg
    assert hash(cfg) == hash(sn.SubnetConfig(width_mult=0.5, depth_mult=0.75))
    per_layer = sn.SubnetConfig(heads=[4, 1, 3, 2], ffn=[48, 7, 20, 33], layers=[0, 1, 3])
    assert per_layer.heads == (4, 1, 3, 2)
    # Pinned: the name keys every cache and results file, so a change of it must be deliberate.
    assert per_layer.name == "sub-16eb81ec21"
    assert sn.SubnetConfig.from_dict(per_layer.to_dict()) == per_layer
    assert sn.SubnetConfig.from_dict(per_layer.to_dict()).name == per_layer.name
    with pytest.raises(AttributeError):
        cfg.width_mult = 0.3  # type: ignore[misc]


def test_grid_names_read_back_as_the_space_multipliers() -> None:
    """A name writes 2 decimals: read against its space it is that space's subnet, not the rounded one."""
    space = sn.SearchSpace(width_mults=(1.0, 0.625, 0.25), depth_mults=(1.0, 2 / 3))
    named = {c.name: c for c in space.grid()}
    assert sorted(named) == [
        "w0.25-d0.67",
        "w0.25-d1.00",
        "w0.62-d0.67",
        "w0.62-d1.00",
        "w1.00-d0.67",
        "w1.00-d1.00",
    ]
    for name, cfg in named.items():
        assert sn.SubnetConfig.from_name(name, space) == cfg
    # BERT-base's shape: 0.625 of 12 heads and of 3072 neurons, 2/3 of 12 layers, against 0.62 / 0.67.
    arch = Arch(family="bert", num_layers=12, num_heads=12, head_dim=64, hidden_size=768, ffn_dim=3072)
    exact = resolve_subnet(arch, sn.SubnetConfig.from_name("w0.62-d0.67", space))
    rounded = resolve_subnet(arch, sn.SubnetConfig.from_name("w0.62-d0.67"))
    assert (exact.heads[0], exact.ffn[0], exact.layers) == (8, 1920, (0, 1, 3, 4, 6, 7, 9, 10))
    assert (rounded.heads[0], rounded.ffn[0], rounded.layers) == (7, 1905, (0, 1, 2, 4, 5, 7, 8, 10))
    # A name outside the space keeps its own values.
    assert sn.SubnetConfig.from_name("w0.50-d0.50", space) == sn.SubnetConfig(width_mult=0.5, depth_mult=0.5)


def test_space_refuses_multipliers_one_name_apart() -> None:
    with pytest.raises(ValueError) as err:
        sn.SearchSpace(width_mults=(1.0, 0.125, 0.12))
    assert str(err.value) == (
        "width_mults must not hold values that are the same to 2 decimals (0.12), got [1.0, 0.125, 0.12]"
    )


def test_grid_order_and_sampling_is_seeded() -> None:
    space = sn.SearchSpace(width_mults=(0.5, 1.0), depth_mults=(0.5, 1.0))
    assert [c.name for c in sn.iter_grid(space)] == [
        "w1.00-d1.00",
        "w1.00-d0.50",
        "w0.50-d1.00",
        "w0.50-d0.50",
    ]
    model = sn.to_supernet(tiny_model("bert"))
    rng = random.Random(7)
    drawn = []
    for _ in range(400):
        drawn.append(sn.sample_active_subnet(model, space, rng))
        assert sn.active_subnet(model) == drawn[-1]  # each draw is the one activated
    again = random.Random(7)
    assert [sn.sample_active_subnet(model, space, again) for _ in range(400)] == drawn
    # Uniform over the grid: each of the 4 subnets 100 times in 400 draws, give or take ~3 standard deviations.
    counts = Counter(c.name for c in drawn)
    assert sorted(counts) == sorted(c.name for c in space.grid())
    assert all(70 <= n <= 130 for n in counts.values()), counts
    # Per layer, every layer draws both head counts (and both FFN widths) over 50 draws.
    per_layer = [sn.sample_active_subnet(model, space, random.Random(3), per_layer=True)]
    per_layer += [sn.sample_active_subnet(model, space, rng, per_layer=True) for _ in range(49)]
    assert sn.active_subnet(model) == per_layer[-1]
    assert all(len(c.heads) == len(c.ffn) == 4 for c in per_layer)
    arch = sn.supernet_state(model).arch
    for layer in range(4):
        assert {c.heads[layer] for c in per_layer} == {arch.num_heads // 2, arch.num_heads}
        assert {c.ffn[layer] for c in per_layer} == {arch.ffn_dim // 2, arch.ffn_dim}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(width_mult=0.0), "width_mult must be in (0, 1], got 0.0"),
        (dict(width_mult=1.5), "width_mult must be in (0, 1], got 1.5"),
        (dict(depth_mult=-0.5), "depth_mult must be in (0, 1], got -0.5"),
        (dict(depth_mult="half"), "depth_mult must be a number in (0, 1], got 'half'"),
        (
            dict(width_mult=0.5, heads=(1,), ffn=(1,)),
            "give either width_mult or per-layer heads/ffn, not both",
        ),
        (dict(heads=(1, 2)), "per-layer heads and ffn must be given together"),
        (dict(depth_mult=0.5, layers=(0,)), "give either depth_mult or layers, not both"),
        (dict(heads=(True, 2), ffn=(1, 1)), "heads must be a list of integers, got (True, 2)"),
        (dict(heads=(2.0, 2), ffn=(1, 1)), "heads must be a list of integers, got (2.0, 2)"),
    ],
)
def test_subnet_config_errors(kwargs, message: str) -> None:
    with pytest.raises(ValueError) as err:
        sn.SubnetConfig(**kwargs)
    assert str(err.value) == message


def test_numpy_integers_are_integers() -> None:
    """Counts from numpy (an argsort, an array) were refused as "not a list of integers"."""
    plain = sn.SubnetConfig(heads=(4, 2), ffn=(48, 24), layers=(0, 1))
    from_numpy = sn.SubnetConfig(
        heads=tuple(np.array([4, 2])), ffn=(np.int64(48), 24), layers=(np.int32(0), 1)
    )
    assert from_numpy == plain and from_numpy.name == plain.name
    assert all(type(v) is int for v in from_numpy.heads + from_numpy.ffn + from_numpy.layers)


@pytest.mark.parametrize(
    "cfg, message",
    [
        (dict(width_mult=0.1), "width_mult=0.1 gives 0 of 4 heads; use width_mult > 0.125 (1 head)"),
        (dict(depth_mult=0.1), "depth_mult=0.1 keeps 0 of 4 layers; use depth_mult > 0.125 (1 layer)"),
        (dict(layers=(0, 4)), "layers: index 4 is out of range [0, 3]"),
        (dict(layers=(-1,)), "layers: index -1 is out of range [0, 3]"),
        (dict(layers=(1, 1)), "layers: indices must not repeat, got [1, 1]"),
        (dict(layers=()), "layers must list at least one index in [0, 3]"),
        (dict(heads=(4, 4, 4), ffn=(8, 8, 8)), "heads must list one value per layer (4), got 3"),
        (dict(heads=(4, 4, 4, 4), ffn=(8, 8)), "ffn must list one value per layer (4), got 2"),
        (dict(heads=(4, 0, 4, 4), ffn=(8, 8, 8, 8)), "heads values must be in [1, 4], got 0"),
        (dict(heads=(4, 4, 4, 4), ffn=(8, 49, 8, 8)), "ffn values must be in [1, 48], got 49"),
    ],
)
def test_resolve_errors(cfg, message: str) -> None:
    model = sn.to_supernet(tiny_model("bert"))
    with pytest.raises(ValueError) as err:
        sn.set_active_subnet(model, sn.SubnetConfig(**cfg))
    assert str(err.value) == message


def test_search_space_validation() -> None:
    assert sn.SearchSpace(width_mults=(0.5, 1.0)).width_mults == (1.0, 0.5)
    with pytest.raises(ValueError, match=r"^width_mults must not be empty$"):
        sn.SearchSpace(width_mults=())
    with pytest.raises(ValueError, match=r"^depth_mults must be in \(0, 1\], got 2.0$"):
        sn.SearchSpace(depth_mults=(1.0, 2.0))
    with pytest.raises(ValueError, match=r"^width_mults must not repeat values, got \[1.0, 1.0\]$"):
        sn.SearchSpace(width_mults=(1.0, 1.0))


def test_layers_in_any_order_are_one_subnet() -> None:
    """Unsorted layers gave a second name (and cache entry) for the same subnet."""
    listed = sn.SubnetConfig(heads=(4, 2, 2, 1), ffn=(48, 24, 24, 12), layers=(3, 0, 1))
    ordered = sn.SubnetConfig(heads=(4, 2, 2, 1), ffn=(48, 24, 24, 12), layers=(0, 1, 3))
    assert listed.layers == (0, 1, 3) and listed == ordered and listed.name == ordered.name


def test_numpy_multipliers_are_numbers() -> None:
    cfg = sn.SubnetConfig(width_mult=np.float32(0.5), depth_mult=np.float64(0.75))
    assert cfg == sn.SubnetConfig(width_mult=0.5, depth_mult=0.75) and cfg.name == "w0.50-d0.75"
    assert sn.SearchSpace(width_mults=np.array([0.5, 1.0])).width_mults == (1.0, 0.5)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: sn.SubnetConfig(heads=4, ffn=8), ValueError, "heads must be a list of integers, got 4"),
        (
            lambda: sn.SearchSpace(width_mults="0.5"),
            ValueError,
            "width_mults must be a list of numbers in (0, 1], got '0.5'",
        ),
        (
            lambda: sn.SearchSpace(depth_mults=0.5),
            ValueError,
            "depth_mults must be a list of numbers in (0, 1], got 0.5",
        ),
        (
            lambda: sn.SearchSpace(width_mults=(1.0, "half")),
            ValueError,
            "width_mults must be a number in (0, 1], got 'half'",
        ),
    ],
)
def test_bad_types_are_one_line(make, error, message: str) -> None:
    with pytest.raises(error) as err:
        make()
    assert str(err.value) == message


def test_verbs_name_what_they_take(tmp_path) -> None:
    model = sn.to_supernet(tiny_model("bert"))
    with pytest.raises(TypeError) as err:
        sn.set_active_subnet(model, "w0.50-d0.50")
    assert str(err.value) == (
        "cfg must be a SubnetConfig (a grid name: SubnetConfig.from_name(name)), got str 'w0.50-d0.50'"
    )
    with pytest.raises(TypeError) as err:
        sn.set_active_subnet(model, 0.5)
    assert str(err.value) == "cfg must be a SubnetConfig, got float 0.5"
    # The counters and the dense cut (export_subnet's first step) too: they said "'str' object has no
    # attribute 'heads'".
    from supernet.export import export_subnet

    for verb in (
        lambda cfg: sn.count_params(model, cfg),
        lambda cfg: sn.count_flops(model, cfg, 16),
        lambda cfg: sn.resolve_subnet(sn.supernet_state(model).arch, cfg),
        lambda cfg: export_subnet(model, cfg, tmp_path / "export"),
    ):
        with pytest.raises(TypeError) as err:
            verb("w0.50-d0.50")
        assert str(err.value) == (
            "cfg must be a SubnetConfig (a grid name: SubnetConfig.from_name(name)), got str 'w0.50-d0.50'"
        )
        with pytest.raises(TypeError) as err:
            verb(None)
        assert str(err.value) == "cfg must be a SubnetConfig, got NoneType None"
    with pytest.raises(TypeError) as err:
        sn.sample_active_subnet(model, sn.SearchSpace(), 0)
    assert str(err.value) == "rng must be a random.Random (e.g. random.Random(seed)), got int"
    for seq_len, shown in ((1.5, "float 1.5"), (True, "bool True"), ("128", "str '128'")):
        with pytest.raises(TypeError) as err:
            sn.count_flops(model, sn.MAX_NET, seq_len=seq_len)
        assert str(err.value) == f"seq_len must be an integer, got {shown}"
    assert sn.count_flops(model, sn.MAX_NET, seq_len=np.int64(16)) == sn.count_flops(
        model, sn.MAX_NET, seq_len=16
    )
    assert sn.active_subnet(model) == sn.MAX_NET  # nothing was changed by the refused calls


def test_the_hint_names_the_exact_smallest_multiplier() -> None:
    """round() is half-to-even, so 4 heads need width_mult > 0.125 (0.125 gives round(0.5) == 0 heads),
    and 4 layers depth_mult > 0.125. The hint once said `>= 0.125`, which 0.125 fails, then `>= 0.25`,
    though 0.13 works (a probe trained w0.10 on 6 heads after being told >= 0.1667)."""
    model = sn.to_supernet(tiny_model("bert"))  # 4 layers, 4 heads, FFN 48
    assert sn.set_active_subnet(model, sn.SubnetConfig(width_mult=0.13, depth_mult=0.13)).heads == (1,) * 4
    assert sn.active_layers(model) == [0]
    with pytest.raises(ValueError) as err:
        sn.set_active_subnet(model, sn.SubnetConfig(width_mult=0.125))
    assert str(err.value) == "width_mult=0.125 gives 0 of 4 heads; use width_mult > 0.125 (1 head)"
    with pytest.raises(ValueError) as err:
        sn.set_active_subnet(model, sn.SubnetConfig(depth_mult=0.125))
    assert str(err.value) == "depth_mult=0.125 keeps 0 of 4 layers; use depth_mult > 0.125 (1 layer)"
    # Not exact in 4 digits: rounded up, so a value above the printed bound keeps a unit (0.5 / 6 =
    # 0.083333... printed 0.08333 had refused 0.083331).
    assert [least_multiplier(n) for n in (4, 6, 7, 384)] == ["0.125", "0.08334", "0.07143", "0.001303"]
    for n in (6, 7, 12, 384, 1536, 3072):
        assert round(n * (float(least_multiplier(n)) + 1e-9)) >= 1
