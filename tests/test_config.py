"""Tests for supernet.config: loading, overrides, type checks, validation, saving and diffing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from supernet.config import (
    ConfigError,
    DataConfig,
    DistillConfig,
    ExportConfig,
    SearchConfig,
    StageConfig,
    TrainConfig,
    config_to_dict,
    diff_configs,
    load_config,
    save_config,
)

REPO = Path(__file__).resolve().parents[1]
REQUIRED = ["model=all-minilm-l6-v2", "task=trec", "output_dir=runs/x"]


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(cls: type, path: str | os.PathLike[str] | None, overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(cls, path, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- defaults and direct construction


def test_defaults() -> None:
    cfg = TrainConfig(model="m", task="trec", output_dir="o")
    assert cfg.width_mults == (1.0, 0.75, 0.5, 0.25)
    assert cfg.depth_mults == (1.0, 0.75, 0.5)
    assert cfg.final_finetune == StageConfig(epochs=0.0)
    assert cfg.stage_w == StageConfig(epochs=3.0)
    assert cfg.data == DataConfig()
    assert cfg.distill.teacher_width == "same"
    # default_factory: sections are not shared between instances
    other = TrainConfig(model="m", task="trec", output_dir="o")
    assert cfg.data is not other.data


def test_direct_construction_is_coerced_and_normalised() -> None:
    cfg = TrainConfig(
        model="m", task="t", output_dir="o", width_mults=[0.5, 1, 0.25], data={"max_length": 64}
    )
    assert cfg.width_mults == (1.0, 0.5, 0.25)
    assert all(isinstance(m, float) for m in cfg.width_mults)
    assert cfg.data == DataConfig(max_length=64)


def test_direct_construction_nested_errors_name_full_key() -> None:
    with pytest.raises(ConfigError, match=r"^config key 'data\.max_length' must be int, got 'a' \(str\)$"):
        TrainConfig(model="m", task="t", output_dir="o", data={"max_length": "a"})
    with pytest.raises(ConfigError, match=r"^data\.dev_fraction must be in \[0, 1\), got 2\.0$"):
        TrainConfig(model="m", task="t", output_dir="o", data={"dev_fraction": 2})
    with pytest.raises(
        ConfigError, match=r"^unknown config key 'data\.max_lenght'; did you mean 'data\.max_length'\?$"
    ):
        TrainConfig(model="m", task="t", output_dir="o", data={"max_lenght": 1})


def test_config_error_is_value_error_with_key() -> None:
    with pytest.raises(ValueError) as info:
        DataConfig(max_length=0)
    assert isinstance(info.value, ConfigError)
    assert info.value.key == "max_length"
    assert str(info.value) == "max_length must be > 0, got 0"


# ---------------------------------------------------------------- loading


def test_load_yaml_then_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
model: all-minilm-l6-v2
task: trec
output_dir: runs/a
learning_rate: 1e-5
mixed_precision: no
width_mults: [0.5, 1]
data:
  max_length: 64
  text_pair_column: question
teacher:
  epochs: 2
""",
    )
    cfg = load_config(
        TrainConfig,
        path,
        [
            "learning_rate=3e-5",
            "data.max_length=32",
            "data.text_pair_column=null",
            "depth_mults=[0.5, 1.0]",
            "resume=true",
            "stage_w.learning_rate=1e-4",
        ],
    )
    assert cfg.learning_rate == 3e-5
    assert cfg.mixed_precision == "no"  # YAML 1.1 would have made this False
    assert cfg.width_mults == (1.0, 0.5)
    assert cfg.depth_mults == (1.0, 0.5)
    assert cfg.data.max_length == 32
    assert cfg.data.text_pair_column is None
    assert cfg.teacher.epochs == 2.0 and isinstance(cfg.teacher.epochs, float)
    assert cfg.resume is True
    assert cfg.stage_w.learning_rate == 1e-4
    assert cfg.stage_wd.learning_rate is None


def test_file_float_forms(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\ntask: t\noutput_dir: o\nlearning_rate: 5E-6\nweight_decay: .5e-2\n")
    cfg = load_config(TrainConfig, path)
    assert cfg.learning_rate == 5e-6
    assert cfg.weight_decay == 0.005


def test_overrides_only_without_file() -> None:
    cfg = load_config(TrainConfig, None, REQUIRED)
    assert cfg.model == "all-minilm-l6-v2"
    assert cfg.task == "trec"


def test_later_override_wins_and_value_may_contain_equals() -> None:
    cfg = load_config(TrainConfig, None, [*REQUIRED, "seed=1", "seed=2", "output_dir=runs/a=b"])
    assert cfg.seed == 2
    assert cfg.output_dir == "runs/a=b"


def test_text_fields_keep_the_raw_override_text() -> None:
    cfg = load_config(TrainConfig, None, [*REQUIRED, "model=123", "wandb_project=2024", "mixed_precision=no"])
    assert cfg.model == "123"
    assert cfg.wandb_project == "2024"
    assert cfg.mixed_precision == "no"
    # "output_dir=~" was YAML's null ("must be str, got None"): a text field that takes no null keeps
    # the text (the home folder, expanded where it is used); one that takes null still takes it.
    cfg = load_config(TrainConfig, None, [*REQUIRED, "output_dir=~", "data.text_pair_column=~"])
    assert cfg.output_dir == "~" and cfg.data.text_pair_column is None
    with pytest.raises(ConfigError, match="must be str, got None"):  # null itself stays null
        load_config(TrainConfig, None, [*REQUIRED, "output_dir=null"])


def test_section_override_merges_with_file(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\ntask: t\noutput_dir: o\ndata:\n  max_length: 64\n")
    cfg = load_config(TrainConfig, path, ["data={split_seed: 7}"])
    assert cfg.data.max_length == 64
    assert cfg.data.split_seed == 7


def test_empty_section_means_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\ntask: t\noutput_dir: o\ndata:\n#  max_length: 64\n")
    assert load_config(TrainConfig, path).data == DataConfig()


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n")
    assert load_config(SearchConfig, path, ["run=runs/a"]) == SearchConfig(run="runs/a")


def test_search_and_export_configs(tmp_path: Path) -> None:
    search = load_config(
        SearchConfig, None, ["run=runs/a", "latency_budget_ms=12", "backend=onnxruntime", "num_threads=4"]
    )
    assert search.latency_budget_ms == 12.0
    assert search.backend == "onnxruntime"
    assert search.num_threads == 4
    assert search.accuracy_subset == 128  # the per-layer search's dev subset by default
    assert load_config(SearchConfig, None, ["run=r", "accuracy_subset=null"]).accuracy_subset is None
    export = load_config(ExportConfig, None, ["run=runs/a", "int8=true", "onnx=false", "out=/tmp/x"])
    assert export == ExportConfig(run="runs/a", int8=True, onnx=False, out="/tmp/x")


# ---------------------------------------------------------------- loading errors (exact texts)


def test_missing_file(monkeypatch) -> None:
    assert load_error(TrainConfig, "x.yaml", []) == "config file 'x.yaml' not found"
    # A preset named without its folder or suffix, or misspelled, is pointed at (from the repository root).
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    for given in ("quickstart", "quickstat.yaml", "configs/quickstart", "/elsewhere/quickstart.yaml"):
        assert load_error(TrainConfig, given, []) == (
            f"config file '{given}' not found; did you mean configs/quickstart.yaml?"
        )
    assert load_error(TrainConfig, "rt-minlm", []) == (
        "config file 'rt-minlm' not found; did you mean configs/rt-minilm.yaml?"
    )


def test_invalid_yaml_reports_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\n  task: t\n")
    assert load_error(TrainConfig, path, []) == (
        f"config file '{path}' is not valid YAML: line 2, column 7: mapping values are not allowed here"
    )


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\nmodel: n\n")
    assert load_error(TrainConfig, path, []) == (
        f"config file '{path}' is not valid YAML: line 2, column 1: duplicate key 'model'"
    )


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- model\n")
    assert load_error(TrainConfig, path, []) == (
        f"config file '{path}' must contain a mapping of config keys, got list"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("learning_rat=1", "unknown config key 'learning_rat'; did you mean 'learning_rate'?"),
        ("data.max_lenght=1", "unknown config key 'data.max_lenght'; did you mean 'data.max_length'?"),
        ("max_length=1", "unknown config key 'max_length'; did you mean 'data.max_length'?"),
        ("teachr.path=x", "unknown config key 'teachr.path'; did you mean 'teacher.path'?"),
        ("zzzzzz=1", "unknown config key 'zzzzzz'"),
        ("seed.value=1", "unknown config key 'seed.value'"),
    ],
)
def test_unknown_override_key(override: str, message: str) -> None:
    assert load_error(TrainConfig, None, [*REQUIRED, override]) == message


def test_unknown_file_key(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\ntask: t\noutput_dir: o\ndata:\n  lable_column: y\n")
    # Said with the file the key is in (an override's key is said without one).
    assert load_error(TrainConfig, path, []) == (
        f"{path}: unknown config key 'data.lable_column'; did you mean 'data.label_column'?"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch_size=abc", "config key 'batch_size' must be int, got 'abc' (str)"),
        ("batch_size=true", "config key 'batch_size' must be int, got True (bool)"),
        ("batch_size=2.5", "config key 'batch_size' must be int, got 2.5 (float)"),
        ("learning_rate=false", "config key 'learning_rate' must be float, got False (bool)"),
        ("seed=null", "config key 'seed' must be int, got None (NoneType)"),
        ("task=null", "config key 'task' must be str, got None (NoneType)"),  # no home-folder hint
        # `output_dir: ~` in a YAML file is nothing, not the home folder: said how to mean it.
        (
            "output_dir=null",
            "config key 'output_dir' must be str, got None (NoneType); in YAML a bare ~ or null is nothing: "
            "quote it ('~') for the home folder",
        ),
        ("resume=yes", "config key 'resume' must be bool, got 'yes' (str)"),
        (
            "data.max_train_samples=x",
            "config key 'data.max_train_samples' must be int or None, got 'x' (str)",
        ),
        ("width_mults=0.5", "config key 'width_mults' must be a list of float, got 0.5 (float)"),
        ("width_mults=[1.0, a]", "config key 'width_mults' must be a list of float, got [1.0, 'a'] (list)"),
        ("data=3", "config key 'data' must be a mapping, got 3 (int)"),
    ],
)
def test_wrong_type(override: str, message: str) -> None:
    assert load_error(TrainConfig, None, [*REQUIRED, override]) == message


def test_ints_accepted_for_floats_and_none_for_optionals() -> None:
    cfg = load_config(
        TrainConfig,
        None,
        [*REQUIRED, "learning_rate=1", "data.max_train_samples=null", "teacher.max_steps=~"],
    )
    assert cfg.learning_rate == 1.0 and isinstance(cfg.learning_rate, float)
    assert cfg.data.max_train_samples is None
    assert cfg.teacher.max_steps is None


def test_missing_required() -> None:
    assert load_error(TrainConfig, None, []) == "config key 'model' is required"
    assert load_error(TrainConfig, None, ["model=m", "task=t"]) == "config key 'output_dir' is required"
    assert load_error(ExportConfig, None, []) == "config key 'run' is required"


@pytest.mark.parametrize("override", ["foo", "=3", " =3"])
def test_override_without_equals(override: str) -> None:
    assert load_error(TrainConfig, None, [override]) == f"override '{override}' must look like key=value"


def test_invalid_yaml_override_value_for_non_text_field() -> None:
    message = load_error(TrainConfig, None, [*REQUIRED, "width_mults=[1.0,"])
    assert message == (
        "override value '[1.0,' is not valid YAML: line 1, column 6: expected the node content, "
        "but found '<stream end>'"
    )


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("recipe=x", "recipe must be one of dynabert, sandwich, layerdrop, single-stage, got 'x'"),
        ("mixed_precision=fp16", "mixed_precision must be one of no, bf16, got 'fp16'"),
        ("report_to=tensorboard", "report_to must be one of wandb, none, got 'tensorboard'"),
        ("distill.teacher_width=half", "distill.teacher_width must be one of same, full, got 'half'"),
        ("width_mults=[]", "width_mults must not be empty"),
        ("width_mults=[1.0, 0.0]", "width_mults must only contain values in (0, 1], got [1.0, 0.0]"),
        ("depth_mults=[1.5, 1.0]", "depth_mults must only contain values in (0, 1], got [1.5, 1.0]"),
        ("width_mults=[1.0, 0.5, 0.5]", "width_mults must not contain duplicates, got [1.0, 0.5, 0.5]"),
        ("width_mults=[0.5, 0.25]", "width_mults must contain 1.0 (the full model), got [0.5, 0.25]"),
        ("learning_rate=0", "learning_rate must be > 0, got 0.0"),
        ("learning_rate=-1e-5", "learning_rate must be > 0, got -1e-05"),
        ("learning_rate=.nan", "config key 'learning_rate' must be a finite number, got nan"),
        ("max_grad_norm=.inf", "config key 'max_grad_norm' must be a finite number, got inf"),
        # Typed as Python writes them: strings to YAML, which said "must be float, got 'nan' (str)".
        ("learning_rate=nan", "config key 'learning_rate' must be a finite number, got nan"),
        ("max_grad_norm=-Infinity", "config key 'max_grad_norm' must be a finite number, got -Infinity"),
        ("teacher.learning_rate=0", "teacher.learning_rate must be > 0, got 0.0"),
        ("stage_wd.learning_rate=0", "stage_wd.learning_rate must be > 0 or null, got 0.0"),
        ("stage_w.epochs=-1", "stage_w.epochs must be >= 0, got -1.0"),
        ("batch_size=0", "batch_size must be > 0, got 0"),
        ("gradient_accumulation_steps=-2", "gradient_accumulation_steps must be > 0, got -2"),
        ("layerdrop=1", "layerdrop must be in [0, 1), got 1.0"),
        ("layerdrop=-0.1", "layerdrop must be in [0, 1), got -0.1"),
        ("warmup_ratio=1.5", "warmup_ratio must be in [0, 1), got 1.5"),
        ("data.dev_fraction=1", "data.dev_fraction must be in [0, 1), got 1.0"),
        (
            "data.test_fraction=0.9",
            "data.test_fraction must be < 1 - dev_fraction (0.1) so rows remain for training, got 0.9",
        ),
        ("data.max_length=0", "data.max_length must be > 0, got 0"),
        ("data.max_eval_samples=0", "data.max_eval_samples must be > 0 or null, got 0"),
        ("importance.num_batches=0", "importance.num_batches must be > 0 or null, got 0"),
        ("distill.temperature=0", "distill.temperature must be > 0, got 0.0"),
        ("distill.lambda_hidden=-1", "distill.lambda_hidden must be >= 0, got -1.0"),
        ("checkpoint_every=-1", "checkpoint_every must be >= 0, got -1"),
        ("keep_last_checkpoints=-1", "keep_last_checkpoints must be >= 0, got -1"),
        ("log_every=0", "log_every must be > 0, got 0"),
        ("model=", "override 'model=' has no value; config key 'model' must not be empty"),
        ("model=' '", "model must not be empty"),
    ],
)
def test_validation_messages(override: str, message: str) -> None:
    assert load_error(TrainConfig, None, [*REQUIRED, override]) == message


@pytest.mark.parametrize(
    ("cls", "overrides", "message"),
    [
        (SearchConfig, ["run=r", "backend=tvm"], "backend must be one of torch, onnxruntime, got 'tvm'"),
        (SearchConfig, ["run=r", "latency_budget_ms=0"], "latency_budget_ms must be > 0 or null, got 0.0"),
        (SearchConfig, ["run=r", "repeats=0"], "repeats must be > 0, got 0"),
        (SearchConfig, ["run=r", "num_threads=0"], "num_threads must be > 0 or null, got 0"),
        (SearchConfig, ["run=r", "accuracy_subset=0"], "accuracy_subset must be > 0 or null, got 0"),
        (ExportConfig, ["run=r", "opset=0"], "opset must be > 0, got 0"),
    ],
)
def test_search_export_validation(cls: type, overrides: list[str], message: str) -> None:
    assert load_error(cls, None, overrides) == message


@pytest.mark.parametrize(
    ("value", "message"),
    [("1.0", "ema_decay must be in [0, 1), got 1.0"), ("-0.1", "ema_decay must be in [0, 1), got -0.1")],
)
def test_ema_decay_must_be_in_unit_interval(tmp_path: Path, value: str, message: str) -> None:
    path = write(tmp_path, f"model: m\ntask: t\noutput_dir: o\nema_decay: {value}\n")
    assert load_error(TrainConfig, path, []) == f"{path}: {message}"
    assert load_error(TrainConfig, path, [f"ema_decay={value}"]) == message  # the override's value


def test_ema_decay_is_off_by_default_and_works_with_every_recipe() -> None:
    assert load_config(TrainConfig, None, REQUIRED).ema_decay == 0.0
    for recipe in ("dynabert", "sandwich", "single-stage"):
        cfg = load_config(TrainConfig, None, [*REQUIRED, f"recipe={recipe}", "ema_decay=0.999"])
        assert cfg.ema_decay == 0.999


def test_boundary_values_accepted() -> None:
    cfg = load_config(
        TrainConfig,
        None,
        [
            *REQUIRED,
            "width_mults=[1.0]",
            "recipe=layerdrop",
            "layerdrop=0.99",
            "data.dev_fraction=0",
            "checkpoint_every=0",
        ],
    )
    assert cfg.width_mults == (1.0,)
    assert cfg.data.dev_fraction == 0.0
    assert DistillConfig(lambda_logit=0, lambda_hidden=0, lambda_hard=1).lambda_hard == 1.0


@pytest.mark.parametrize("key", ["width_mults", "depth_mults"])
def test_multipliers_that_share_a_subnet_name_are_refused(key: str) -> None:
    # 0.75 and 0.7500001 both name w0.75-...: a grid of 12 names held 15 subnets, two rows of the
    # search table were chosen, and export --subnet could not tell them apart.
    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, None, [*REQUIRED, f"{key}=[1.0,0.75,0.7500001,0.251,0.249]"])
    assert str(err.value) == (
        f"{key} must not hold values that are the same to 2 decimals (0.25, 0.75), got "
        "[1.0, 0.75, 0.7500001, 0.251, 0.249]"
    )


def test_all_zero_loss_weights_are_refused_before_anything_runs() -> None:
    # They failed in the first distillation step, after the teacher was fine-tuned, in a traceback,
    # and left a run that no resume could finish (the fixed weights are a changed config).
    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, None, [*REQUIRED, "distill.lambda_logit=0", "distill.lambda_hidden=0"])
    assert str(err.value) == (
        "distill.lambda_logit = lambda_hidden = lambda_hard = 0: the subnets would have no loss to learn from; "
        "set one of them > 0"
    )


# ---------------------------------------------------------------- to_dict / save / diff


def test_config_to_dict_is_plain_yaml() -> None:
    cfg = load_config(TrainConfig, None, REQUIRED)
    data = config_to_dict(cfg)
    assert data["width_mults"] == [1.0, 0.75, 0.5, 0.25]
    assert data["data"]["max_length"] == 128
    assert data["final_finetune"] == {"epochs": 0.0, "max_steps": None, "learning_rate": None}
    assert list(data)[:3] == ["model", "task", "output_dir"]
    yaml.safe_dump(data)  # raises on tuples or dataclasses
    with pytest.raises(TypeError) as info:
        config_to_dict({"a": 1})
    assert str(info.value) == "config_to_dict needs a dataclass instance, got dict"


def test_save_load_round_trip(tmp_path: Path) -> None:
    cfg = load_config(
        TrainConfig,
        None,
        [*REQUIRED, "learning_rate=1e-5", "mixed_precision=no", "teacher.path=/t", "model=123"],
    )
    target = tmp_path / "run" / "config.yaml"
    save_config(cfg, target)
    assert load_config(TrainConfig, target) == cfg
    assert os.listdir(target.parent) == ["config.yaml"]  # no temp file left behind
    # overwriting goes through the same atomic replace
    save_config(config_to_dict(cfg) | {"seed": 7}, target)
    assert load_config(TrainConfig, target).seed == 7
    assert os.listdir(target.parent) == ["config.yaml"]


def test_save_failure_keeps_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    target.write_text("old: 1\n")
    with pytest.raises(yaml.representer.RepresenterError):  # PyYAML's own error: not a user-facing line
        save_config({"bad": object()}, target)
    assert target.read_text() == "old: 1\n"
    assert os.listdir(tmp_path) == ["config.yaml"]


def test_diff_configs() -> None:
    old = config_to_dict(load_config(TrainConfig, None, REQUIRED))
    new = config_to_dict(
        load_config(TrainConfig, None, [*REQUIRED, "learning_rate=3e-5", "resume=true", "data.max_length=64"])
    )
    assert diff_configs(old, new) == ["learning_rate: 2e-05 -> 3e-05", "data.max_length: 128 -> 64"]
    assert diff_configs(old, old) == []
    assert diff_configs(old, new, ignore=("resume", "data")) == ["learning_rate: 2e-05 -> 3e-05"]
    assert "resume: False -> True" in diff_configs(old, new, ignore=())


def test_diff_configs_missing_keys_and_normalisation() -> None:
    a = {"x": 1, "mults": (1.0, 0.5), "sec": {"y": "a"}}
    b = {"x": 1.0, "mults": [1.0, 0.5], "sec": {"z": "b"}}
    assert diff_configs(a, b) == ["sec.y: 'a' -> <missing>", "sec.z: <missing> -> 'b'"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["recipe=sandwich", "layerdrop=0.2"],
            "layerdrop works with recipe=layerdrop only; set layerdrop=0 or recipe=layerdrop (recipe is 'sandwich')",
        ),
        (["recipe=layerdrop"], "layerdrop must be > 0 with recipe=layerdrop"),
        (
            ["inplace_distill=true"],
            "inplace_distill works with recipe=single-stage only; set inplace_distill=false or recipe=single-stage "
            "(recipe is 'dynabert')",
        ),
        (
            ["recipe=sandwich", "per_layer_sampling=true"],
            "per_layer_sampling works with recipe=single-stage only; set per_layer_sampling=false or recipe=single-stage "
            "(recipe is 'sandwich')",
        ),
        (
            ["recipe=dynabert", "smallest_weight=2"],
            "smallest_weight works with recipe=single-stage only; set smallest_weight=1 or recipe=single-stage "
            "(recipe is 'dynabert')",
        ),
        (["recipe=single-stage", "smallest_weight=0"], "smallest_weight must be > 0, got 0.0"),
        (
            ["recipe=sandwich", "small_bias=1"],
            "small_bias works with recipe=single-stage only; set small_bias=0 or recipe=single-stage "
            "(recipe is 'sandwich')",
        ),
        (["recipe=single-stage", "small_bias=-1"], "small_bias must be >= 0, got -1.0"),
        (
            ["sampling=grid"],
            "config key 'sampling' was replaced by 'recipe'; sampling=grid is recipe=dynabert "
            "(recipe=layerdrop with layerdrop > 0), sampling=sandwich is recipe=sandwich",
        ),
    ],
)
def test_recipe_options_belong_to_their_recipe(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, None, ["model=m", "task=t", "output_dir=o", *overrides])
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("saved", "recipe"),
    [
        ("sampling: grid\n", "dynabert"),
        ("sampling: grid\nlayerdrop: 0.2\n", "layerdrop"),
        ("sampling: sandwich\n", "sandwich"),
    ],
)
def test_run_configs_from_before_recipes_still_load(tmp_path, saved: str, recipe: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("model: m\ntask: t\noutput_dir: o\n" + saved)
    assert load_config(TrainConfig, path).recipe == recipe


@pytest.mark.parametrize("preset", ["rt-minilm.yaml", "trec-minilm.yaml", "quickstart.yaml"])
def test_presets_weight_the_smallest_subnet_and_say_how_to_switch_recipe(preset: str) -> None:
    # The presets' recipe weights the smallest subnet's loss 2x (BENCHMARKS.md, "Elastic training
    # cost"); switching such a preset to another recipe must name the key to reset.
    path = Path(__file__).resolve().parents[1] / "configs" / preset
    assert load_config(TrainConfig, path).smallest_weight == 2.0
    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, path, ["recipe=sandwich"])
    assert str(err.value) == (
        f"{path}: smallest_weight works with recipe=single-stage only; set smallest_weight=1 or "
        "recipe=single-stage (recipe is 'sandwich')"
    )
    assert load_config(TrainConfig, path, ["recipe=sandwich", "smallest_weight=1"]).recipe == "sandwich"


@pytest.mark.parametrize(
    ("text", "value"), [("010", 10), ("0777", 777), ("0o17", 15), ("0x1f", 31), ("+7", 7)]
)
def test_integers_read_as_yaml_1_2(tmp_path: Path, text: str, value: int) -> None:
    """PyYAML's YAML 1.1 read `seed: 010` as octal 8 and `1:30` as base-60 90, without a word."""
    path = write(tmp_path, f"model: m\ntask: t\noutput_dir: o\ndata:\n  split_seed: {text}\n")
    assert load_config(TrainConfig, path).data.split_seed == value
    assert load_config(TrainConfig, None, [*REQUIRED, f"data.split_seed={text}"]).data.split_seed == value


def test_a_sexagesimal_integer_is_text_not_a_number(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\ntask: t\noutput_dir: o\nseed: 1:30\n")
    assert load_error(TrainConfig, path, []) == f"{path}: config key 'seed' must be int, got '1:30' (str)"
    assert (
        load_error(TrainConfig, None, [*REQUIRED, "seed=1:30"])
        == "config key 'seed' must be int, got '1:30' (str)"
    )


def test_an_empty_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing set yet\n")
    assert load_error(TrainConfig, path, []) == (
        f"config file '{path}' sets no config keys; config key 'model' is required"
    )
    # A key the file lacks is said with the file, not blamed on the overrides.
    partial = write(tmp_path, "model: m\n", name="partial.yaml")
    assert load_error(TrainConfig, partial, ["task=t"]) == f"{partial}: config key 'output_dir' is required"


@pytest.mark.parametrize("override", ["teacher=", "data=null", "distill={}"])
def test_an_empty_section_override_is_refused(override: str) -> None:
    """'teacher=' silently reset the whole section (the preset's max_steps and learning rate) to defaults."""
    key = override.split("=")[0]
    first = {"teacher": "path", "data": "text_column", "distill": "lambda_logit"}[key]
    assert load_error(TrainConfig, REPO / "configs" / "quickstart.yaml", [override]) == (
        f"override '{override}' sets no key of section '{key}': set them one by one ({key}.{first}=...) "
        f"or as a mapping ({key}={{{first}: ...}})"
    )
    assert load_error(TrainConfig, None, [*REQUIRED, "teacher=0"]) == (
        "config key 'teacher' must be a mapping, got 0 (int)"
    )


def test_a_check_an_override_trips_does_not_blame_the_file() -> None:
    """'recipe=layerdrop' against the default layerdrop 0 was said as the preset's, which has no layerdrop."""
    preset = REPO / "configs" / "rt-minilm-dynabert.yaml"
    assert "layerdrop" not in preset.read_text()
    assert (
        load_error(TrainConfig, preset, ["recipe=layerdrop"]) == "layerdrop must be > 0 with recipe=layerdrop"
    )


@pytest.mark.parametrize("text", ["08", "0o17", "1e5", "1:30", "010", "no"])
def test_saved_text_that_reads_as_a_number_is_quoted(tmp_path: Path, text: str) -> None:
    """save_config wrote output_dir: 08 unquoted (YAML 1.1 reads it as text), which the YAML 1.2 loader
    read back as the integer 8: the run's config.yaml no longer loaded."""
    cfg = load_config(TrainConfig, None, ["model=m", "task=t", f"output_dir={text}"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(TrainConfig, tmp_path / "config.yaml").output_dir == text


def test_search_config_defaults_are_search_pys() -> None:
    """SearchConfig said 10 warm-up calls, 50 repeats, population 40 and 10 generations while
    search.py used 5, 30, 24 and 6: an API user got another search than the command line."""
    from supernet.search_cli import search_defaults

    fields, args = SearchConfig(run="-"), search_defaults()
    names = ("warmup", "repeats", "population", "generations", "accuracy_subset", "seed")
    assert {n: getattr(args, n) for n in names} == {n: getattr(fields, n) for n in names}
    assert (fields.warmup, fields.repeats, fields.population, fields.generations) == (5, 30, 24, 6)
