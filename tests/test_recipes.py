"""Recipes: which subnets each step trains and from which teacher, and the trainer running them."""

from __future__ import annotations

from collections import Counter

import pytest

from supernet.convert import Arch
from supernet.recipes import RECIPES, Group, StagePlan, make_recipe
from supernet.subnet import SearchSpace, SubnetConfig

SPACE = SearchSpace()
ARCH = Arch(family="bert", num_layers=6, num_heads=12, head_dim=32, hidden_size=384, ffn_dim=1536)
WIDTHS = (1.0, 0.75, 0.5, 0.25)
GRID = [SubnetConfig(width_mult=w, depth_mult=d) for w in WIDTHS for d in (1.0, 0.75, 0.5)]


def _recipe(name: str, **options):
    return make_recipe(name, SPACE, ARCH, seed=42, **options)


def test_every_recipe_is_registered_under_its_name() -> None:
    assert list(RECIPES) == ["dynabert", "sandwich", "layerdrop", "single-stage"]
    with pytest.raises(
        ValueError, match=r"^recipe must be one of dynabert, sandwich, layerdrop, single-stage, got 'x'$"
    ):
        _recipe("x")


def test_dynabert_trains_every_width_then_every_grid_subnet_grouped_by_teacher_width() -> None:
    r = _recipe("dynabert")
    assert r.stages == (StagePlan("stage_w", "fixed"), StagePlan("stage_wd", "previous"))
    assert r.plan("stage_w", 0) == [Group(None, tuple(SubnetConfig(width_mult=w) for w in WIDTHS))]
    assert r.plan("stage_wd", 3) == [
        Group(SubnetConfig(width_mult=w), tuple(s for s in GRID if s.width_mult == w)) for w in WIDTHS
    ]
    # The released code's variant: one full-width teacher forward for all twelve.
    assert _recipe("dynabert", teacher_width="full").plan("stage_wd", 0) == [
        Group(SubnetConfig(), tuple(GRID))
    ]


def test_sandwich_has_largest_smallest_and_k_seeded_random_subnets() -> None:
    r = _recipe("sandwich", num_random_subnets=3)
    draws = []
    for step in range(20):
        students = [s for g in r.plan("stage_wd", step) for s in g.students]
        assert {GRID[0], GRID[-1]} <= set(students) and len(students) == 5 and set(students) <= set(GRID)
        # Grouped by width: each group's teacher is its students' width at full depth.
        for g in r.plan("stage_wd", step):
            assert {s.width_mult for s in g.students} == {
                g.teacher.width_mult
            } and g.teacher.depth_mult is None
        draws.append(students)
    assert r.plan("stage_wd", 7) == _recipe("sandwich", num_random_subnets=3).plan("stage_wd", 7)
    assert len({tuple(d) for d in draws}) > 10  # the random ones change from step to step
    assert _recipe("sandwich", num_random_subnets=3).subnets_per_step("stage_w") == 5


def test_layerdrop_keeps_stage_w_and_draws_layer_sets_per_width() -> None:
    r = _recipe("layerdrop", layerdrop=0.5)
    assert r.plan("stage_w", 0) == _recipe("dynabert").plan("stage_w", 0)
    groups = r.plan("stage_wd", 0)
    assert [g.teacher for g in groups] == [SubnetConfig(width_mult=w) for w in WIDTHS]
    for g in groups:
        assert len(g.students) == 3
        assert all(
            s.width_mult == g.teacher.width_mult and s.layers and s.depth_mult is None for s in g.students
        )


@pytest.mark.parametrize(
    ("options", "kept_share"),
    [
        ({"layerdrop": 0.5}, [0.5] * 6),
        ({"layerdrop": 0.2}, [0.8] * 6),
        # Scaled with depth, layer i of 6 is skipped with p * (i + 1) / 6: deeper layers more often.
        ({"layerdrop": 0.6, "layerdrop_depth_scaled": True}, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]),
    ],
)
def test_layerdrop_keeps_each_layer_at_its_rate(options: dict, kept_share: list[float]) -> None:
    r = _recipe("layerdrop", **options)
    kept, drawn = Counter(), 0
    for step in range(400):
        for s in (s for g in r.plan("stage_wd", step) for s in g.students):
            kept.update(s.layers)
            drawn += 1
    assert drawn == 400 * 12
    # 4800 draws per layer: one standard deviation of a share is <= 0.0073, the bound ~4 of them.
    assert [kept[i] / drawn for i in range(6)] == pytest.approx(kept_share, abs=0.03)


def test_single_stage_samples_from_the_fixed_teacher_in_one_stage() -> None:
    r = _recipe("single-stage", num_random_subnets=2)
    assert r.stages == (StagePlan("stage_wd", "fixed"),)
    for step in range(10):
        [group] = r.plan("stage_wd", step)
        assert group.teacher is None and not group.inplace
        assert group.students[:2] == (GRID[0], GRID[-1]) and len(group.students) == 4
        assert set(group.students) <= set(GRID)
    [inplace] = _recipe("single-stage", inplace_distill=True).plan("stage_wd", 0)
    assert inplace.inplace and inplace.students[0] == GRID[0]
    # Every student weighs 1 unless the smallest is given more.
    assert group.weights is None and group.student_weights == (1.0,) * 4
    [weighted] = _recipe("single-stage", num_random_subnets=2, smallest_weight=2.0).plan("stage_wd", 3)
    assert weighted.students == _recipe("single-stage", num_random_subnets=2).plan("stage_wd", 3)[0].students
    assert weighted.weights == (1.0, 2.0, 1.0, 1.0)


def test_single_stage_per_layer_draws_heterogeneous_widths_from_the_search_space() -> None:
    r = _recipe("single-stage", num_random_subnets=2, per_layer=True)
    heads, ffn, layer_sets = set(), set(), set()
    for step in range(30):
        [group] = r.plan("stage_wd", step)
        assert group.students[:2] == (GRID[0], GRID[-1])  # the sandwich ends stay uniform
        for s in group.students[2:]:
            assert len(s.heads) == len(s.ffn) == 6
            heads |= set(s.heads)
            ffn |= set(s.ffn)
            layer_sets.add(s.layers)
    assert heads == {12, 9, 6, 3} and ffn == {1536, 1152, 768, 384}
    assert layer_sets == {(0, 1, 2, 3, 4, 5), (0, 1, 2, 4), (0, 2, 4)}


def test_single_stage_small_bias_draws_multipliers_in_inverse_proportion() -> None:
    # small_bias=0 is the uniform draw, the same subnets as before the option existed.
    assert [_recipe("single-stage", small_bias=0.0).plan("stage_wd", s) for s in range(20)] == [
        _recipe("single-stage").plan("stage_wd", s) for s in range(20)
    ]
    widths, depths = Counter(), Counter()
    r = _recipe("single-stage", num_random_subnets=2, small_bias=1.0)
    for step in range(3000):
        [group] = r.plan("stage_wd", step)
        assert group.students[:2] == (GRID[0], GRID[-1])
        for s in group.students[2:]:
            widths[s.width_mult] += 1
            depths[s.depth_mult] += 1
    # Probability ~ 1/m: widths 1, 0.75, 0.5, 0.25 as 3:4:6:12, depths 1, 0.75, 0.5 as 3:4:6;
    # 6000 draws, so each share within 0.02 of its expectation (over 3 standard errors).
    for counts, weights in (
        (widths, {1.0: 3, 0.75: 4, 0.5: 6, 0.25: 12}),
        (depths, {1.0: 3, 0.75: 4, 0.5: 6}),
    ):
        total = sum(weights.values())
        for m, w in weights.items():
            assert abs(counts[m] / 6000 - w / total) < 0.02, (m, counts[m])
    # Per layer, the bias applies to each layer's heads and FFN width alike.
    heads = Counter()
    r = _recipe("single-stage", num_random_subnets=1, per_layer=True, small_bias=1.0)
    for step in range(500):
        heads.update(r.plan("stage_wd", step)[0].students[2].heads)
    assert heads[3] > 3 * heads[12]
