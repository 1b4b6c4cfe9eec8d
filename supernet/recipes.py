"""Elastic-training recipes: which subnets a step trains, what each distils from, in which stages.

A recipe is data for the trainer: its `stages` (name, teacher source) and a `plan(stage, step)` that
returns the step's subnets in groups that share one teacher forward. The trainer keeps the loop,
accumulation, checkpoints and logging and knows no recipe by name; a preset picks one with
``recipe: <name>``.

| recipe | stages | subnets per step | teacher |
|---|---|---|---|
| ``dynabert`` | W, then W x D | every width; then every (width, depth) | fixed; then the stage-W net |
| ``sandwich`` | W, then W x D | largest, smallest + k random | as dynabert |
| ``layerdrop`` | W, then W x D | every width; then random layer sets | as dynabert |
| ``single-stage`` | W x D | largest, smallest + k random (uniform or per layer) | fixed, or in place |

Sources: DynaBERT (Hou et al., 2020) for the two-stage grid; BigNAS (Yu et al., 2020) for the
sandwich rule and in-place distillation; SortedNet (Valipour et al., 2023) and MatFormer (Kudugunta
et al., 2023) for training a few sampled nested subnets per step instead of all of them; LayerDrop
(Fan et al., 2019); Once-for-All (Cai et al., 2020) and HAT (Wang et al., 2020) for per-layer
sampling.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from supernet.convert import Arch
from supernet.subnet import SearchSpace, SubnetConfig, random_subnet

__all__ = ["RECIPES", "Group", "Recipe", "StagePlan", "make_recipe", "recipe_names", "two_stage_recipes"]


@dataclass(frozen=True)
class Group:
    """Students that share one teacher forward.

    `teacher` is the subnet of the stage's teacher model that teaches them (None = that model as
    is). With `inplace`, `students[0]` learns from the gold labels and its own outputs, detached,
    teach the other students: the stage's teacher model is not run for this group.
    """

    teacher: SubnetConfig | None
    students: tuple[SubnetConfig, ...]
    inplace: bool = False
    weights: tuple[float, ...] | None = None
    """Loss weight of each student (None = all 1)."""

    @property
    def student_weights(self) -> tuple[float, ...]:
        """`weights`, or 1 for every student."""
        return self.weights if self.weights is not None else (1.0,) * len(self.students)


@dataclass(frozen=True)
class StagePlan:
    """One training stage of a recipe."""

    name: str
    """"stage_w" or "stage_wd": the config section holding its budget, checkpoint and metric names."""
    teacher: str
    """"fixed": the fine-tuned teacher; "previous": a frozen copy of the network the previous stage left."""


STAGE_W = StagePlan("stage_w", "fixed")
STAGE_WD_FROM_W = StagePlan("stage_wd", "previous")


def _seed(*parts: object) -> int:
    # String seeds go through SHA-512 in `random`: stable across processes and runs.
    return random.Random("-".join(map(str, parts))).getrandbits(31)


class Recipe(ABC):
    """A named training recipe; subclasses set `name`, `stages` and implement `plan`.

    Args:
        space: the width and depth multipliers the supernet is trained for.
        arch: the architecture (layer, head and FFN counts).
        seed: the run's seed; every draw depends only on (seed, stage, step).
        num_random_subnets: random subnets per step besides the largest and smallest (sampling recipes).
        teacher_width: stage-W x D teacher of two-stage recipes, "same" or "full" width.
        layerdrop: per-layer skip probability (layerdrop recipe).
        layerdrop_depth_scaled: scale that probability with depth.
        inplace_distill: in-place distillation from the largest subnet (single-stage).
        per_layer: draw heads and FFN width per layer (single-stage).
        smallest_weight: loss weight of the smallest subnet, the others weighing 1 (single-stage).
        small_bias: the random subnets draw each multiplier m with probability ~ m ** -small_bias
            (single-stage; 0 = uniform).
    """

    name: ClassVar[str]
    stages: ClassVar[tuple[StagePlan, ...]]

    def __init__(
        self,
        space: SearchSpace,
        arch: Arch,
        *,
        seed: int,
        num_random_subnets: int = 2,
        teacher_width: str = "same",
        layerdrop: float = 0.0,
        layerdrop_depth_scaled: bool = False,
        inplace_distill: bool = False,
        per_layer: bool = False,
        smallest_weight: float = 1.0,
        small_bias: float = 0.0,
    ) -> None:
        self.space, self.arch, self.seed = space, arch, seed
        self.num_random_subnets = num_random_subnets
        self.same_width = teacher_width == "same"
        self.layerdrop, self.layerdrop_depth_scaled = layerdrop, layerdrop_depth_scaled
        self.inplace_distill, self.per_layer = inplace_distill, per_layer
        self.smallest_weight, self.small_bias = smallest_weight, small_bias

    @abstractmethod
    def plan(self, stage: str, step: int) -> list[Group]:
        """The groups of subnets trained at optimizer step `step` of `stage`."""

    def rng(self, stage: str, step: int) -> random.Random:
        return random.Random(_seed(self.seed, stage, step))

    def subnets_per_step(self, stage: str) -> float:
        """Students per step of `stage` (the mean over 16 steps), for cost estimates and logs."""
        return sum(len(g.students) for s in range(16) for g in self.plan(stage, s)) / 16

    # ---------------------------------------------------------------- shared by the two-stage recipes

    def _by_teacher_width(self, students: Sequence[SubnetConfig]) -> list[Group]:
        """Stage W x D groups: one per width (the paper's rule) or one for all (full-width teacher)."""
        if not self.same_width:
            return [Group(SubnetConfig(), tuple(students))]
        by_width: dict[float, list[SubnetConfig]] = {}
        for s in students:
            by_width.setdefault(s.width_mult if s.width_mult is not None else 1.0, []).append(s)
        return [Group(SubnetConfig(width_mult=w), tuple(s)) for w, s in by_width.items()]


class DynaBERT(Recipe):
    """DynaBERT's schedule: every width, then every (width, depth), each step."""

    name = "dynabert"
    stages = (STAGE_W, STAGE_WD_FROM_W)

    def plan(self, stage: str, step: int) -> list[Group]:
        if stage == "stage_w":
            return [Group(None, tuple(SubnetConfig(width_mult=w) for w in self.space.width_mults))]
        return self._by_teacher_width(self.space.grid())


class Sandwich(Recipe):
    """DynaBERT's two stages with the sandwich rule: largest, smallest and k random subnets per step."""

    name = "sandwich"
    stages = (STAGE_W, STAGE_WD_FROM_W)

    def plan(self, stage: str, step: int) -> list[Group]:
        rng = self.rng(stage, step)
        widths, depths = self.space.width_mults, self.space.depth_mults
        if stage == "stage_w":
            extra = [rng.choice(widths) for _ in range(self.num_random_subnets)]
            chosen = [max(widths), min(widths), *extra]
            return [Group(None, tuple(SubnetConfig(width_mult=w) for w in chosen))]
        pairs = [(max(widths), max(depths)), (min(widths), min(depths))]
        pairs += [(rng.choice(widths), rng.choice(depths)) for _ in range(self.num_random_subnets)]
        return self._by_teacher_width([SubnetConfig(width_mult=w, depth_mult=d) for w, d in pairs])


class LayerDrop(DynaBERT):
    """DynaBERT's stage W, then per width random layer sets (each layer skipped with probability p)."""

    name = "layerdrop"

    def plan(self, stage: str, step: int) -> list[Group]:
        if stage == "stage_w":
            return super().plan(stage, step)
        rng, n = self.rng(stage, step), self.arch.num_layers
        students = []
        for w in self.space.width_mults:
            for _ in self.space.depth_mults:
                keep = [
                    i
                    for i in range(n)
                    if rng.random() >= self.layerdrop * ((i + 1) / n if self.layerdrop_depth_scaled else 1.0)
                ]
                students.append(SubnetConfig(width_mult=w, layers=tuple(keep or [0])))
        return self._by_teacher_width(students)


class SingleStage(Recipe):
    """One width x depth stage from the fixed teacher: largest, smallest and k random subnets per step.

    The student starts as a copy of the fine-tuned teacher, so the largest subnet is already trained
    and a separate width stage buys little; sampling a few subnets per step (SortedNet, MatFormer)
    instead of all twelve is what makes the training cheap. With `inplace_distill` the largest
    subnet learns from the gold labels and teaches the others (BigNAS), so the fixed teacher is not
    run at all. With `per_layer` the random subnets draw heads and FFN width per layer, so
    heterogeneous subnets (search.py --per-layer) are trained too; the largest and smallest stay
    uniform. `smallest_weight` scales the smallest subnet's loss: the subnet furthest from the
    teacher gets a larger share of each update at no extra compute. `small_bias` draws the random
    subnets' multipliers with probability ~ m ** -small_bias, so the small subnets, which share
    only the most important heads and neurons, are trained more often than uniform draws would.
    """

    name = "single-stage"
    stages = (StagePlan("stage_wd", "fixed"),)

    def plan(self, stage: str, step: int) -> list[Group]:
        rng = self.rng(stage, step)
        extra = [
            random_subnet(self.arch, self.space, rng, per_layer=self.per_layer, small_bias=self.small_bias)
            for _ in range(self.num_random_subnets)
        ]
        students = (self.space.largest, self.space.smallest, *extra)
        weights = None if self.smallest_weight == 1.0 else (1.0, self.smallest_weight, *[1.0] * len(extra))
        return [Group(None, students, inplace=self.inplace_distill, weights=weights)]


RECIPES: dict[str, type[Recipe]] = {r.name: r for r in (DynaBERT, Sandwich, LayerDrop, SingleStage)}


def recipe_names() -> tuple[str, ...]:
    return tuple(RECIPES)


def two_stage_recipes() -> tuple[str, ...]:
    """The recipes with a stage W (the ones that read stage_w's keys and distill.teacher_width), sorted."""
    return tuple(sorted(n for n, r in RECIPES.items() if any(s.name == STAGE_W.name for s in r.stages)))


def make_recipe(name: str, space: SearchSpace, arch: Arch, **options: object) -> Recipe:
    """The recipe called `name` (a key of `RECIPES`) with the trainer's options.

    Raises:
        ValueError: `name` is not a recipe.
    """
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {name!r}")
    return RECIPES[name](space, arch, **options)  # type: ignore[arg-type]
