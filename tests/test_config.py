"""Config layer: defaults, YAML, command-line overrides, strict errors, the resolved config saved beside outputs,
and every YAML in configs/ checked against its command's dataclass."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import pytest

from prm import cli
from prm.config import ConfigError, config, config_path_for, load_config, load_yaml, option, save_config

ROOT = Path(__file__).resolve().parents[1]


@config("_example")
class ExampleConfig:
    output: str = option(help="where to write", positional=True)
    n: int = option(10, "count")
    lr: float = option(1e-3, "learning rate")
    bf16: bool = option(True, "autocast")
    mode: Literal["hard", "soft"] = option("hard", "label kind")
    targets: tuple[str, ...] = option(("q_proj", "v_proj"), "modules")
    limit: int | None = option(None, "optional cap")

    def __post_init__(self):
        if self.n < 0:
            raise ValueError("n must be >= 0")


def test_defaults_yaml_then_cli(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("n: 5\nlr: 1\nmode: soft\ntargets: [a, b, c]\n")
    cfg = load_config(ExampleConfig, y, {"output": "o.jsonl", "n": "7", "limit": "3"})
    assert (cfg.n, cfg.lr, cfg.mode, cfg.targets, cfg.limit, cfg.bf16) == (7, 1.0, "soft", ("a", "b", "c"), 3, True)
    assert isinstance(cfg.lr, float)
    cfg2 = load_config(ExampleConfig, None, {"output": "o", "targets": "x,y", "bf16": "false", "limit": "null"})
    assert cfg2.targets == ("x", "y") and cfg2.bf16 is False and cfg2.limit is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n = 3


def test_floats_in_exponent_form_from_yaml_and_cli(tmp_path):
    """YAML 1.1 reads 2e-4 (no dot) as a string; a float key still takes it, from a file or a flag."""
    y = tmp_path / "c.yaml"
    y.write_text("lr: 2e-4\n")
    assert load_config(ExampleConfig, y, {"output": "o"}).lr == 2e-4
    assert load_config(ExampleConfig, None, {"output": "o", "lr": "3E-5"}).lr == 3e-5
    with pytest.raises(ConfigError, match="key 'lr' expects float"):
        load_config(ExampleConfig, None, {"output": "o", "lr": "2e-"})


def test_unknown_key_names_key_file_and_line(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("n: 5\n\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:3: unknown key 'learning_rate'"):
        load_config(ExampleConfig, y, {"output": "o"})
    with pytest.raises(ConfigError, match=r"--nn.*unknown key 'nn'"):
        load_config(ExampleConfig, None, {"output": "o", "nn": "1"})


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("n: 1.5", "n"),
        ("n: true", "n"),
        ("bf16: 1", "bf16"),
        ("mode: medium", "mode"),
        ("lr: fast", "lr"),
        ("targets: 3", "targets"),
        ("output: 3", "output"),
        ("limit: [1]", "limit"),
    ],
)
def test_wrong_type_names_key(tmp_path, yaml_text, key):
    y = tmp_path / "c.yaml"
    y.write_text("# header\n" + yaml_text + "\n")
    with pytest.raises(ConfigError, match=rf"c\.yaml:2: key '{key}' expects"):
        load_config(ExampleConfig, y, {"output": "o"})


def test_cli_wrong_type_and_missing_and_post_init():
    with pytest.raises(ConfigError, match=r"--n.*key 'n' expects int"):
        load_config(ExampleConfig, None, {"output": "o", "n": "ten"})
    with pytest.raises(ConfigError, match="missing required key.*output"):
        load_config(ExampleConfig, None, {})
    with pytest.raises(ConfigError, match="n must be >= 0"):
        load_config(ExampleConfig, None, {"output": "o", "n": "-1"})


def test_bad_yaml_file(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(ExampleConfig, y, {"output": "o"})
    y.write_text("n: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(ExampleConfig, y, {"output": "o"})
    with pytest.raises(ConfigError, match="not found"):
        load_config(ExampleConfig, tmp_path / "nope.yaml")


def test_save_config_round_trips(tmp_path):
    cfg = load_config(ExampleConfig, None, {"output": str(tmp_path / "out.jsonl"), "targets": "a,b"})
    path = save_config(cfg, cfg.output)
    assert path == tmp_path / "out.config.yaml" == config_path_for(cfg.output)
    text = path.read_text()
    assert text.startswith("# Resolved config of 'prm _example'")
    assert load_config(ExampleConfig, path) == cfg
    assert config_path_for(tmp_path) == tmp_path / "config.yaml"


def test_every_command_has_a_yaml_and_every_yaml_loads():
    yamls = sorted((ROOT / "configs").glob("*.yaml"))
    assert yamls, "configs/ is empty"
    commands = {name: cli.config_class(name) for name in cli.COMMANDS}
    for name in commands:
        assert (ROOT / "configs" / f"{name}.yaml").exists(), f"configs/{name}.yaml missing"
    for path in yamls:
        header = path.read_text().splitlines()[0]
        assert header.startswith("# prm ") or header.startswith("# make "), f"{path.name}: header must give the command"
        if path.stem not in commands:
            variant = next((c for c in commands if path.stem.startswith(c + "-")), None)
            if variant:  # a variant such as demo-quick.yaml: it must load, every key known and well typed
                load_config(commands[variant], path, partial=True)  # inputs and outputs come on the command line
            continue  # e.g. accelerate configs; checked by their own tests
        cls = commands[path.stem]
        values = load_config(cls, path, partial=True)
        # The YAML of a command states its defaults: it must agree with the dataclass, so they cannot drift apart.
        data, _ = load_yaml(path)
        for f in dataclasses.fields(cls):
            if f.name in values and f.default is not dataclasses.MISSING:
                assert values[f.name] == f.default, f"{path.name}: {f.name}={values[f.name]!r} != default {f.default!r}"
        optional = {f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
        assert optional <= set(data), f"{path.name} lacks {sorted(optional - set(data))}"


def test_cli_rejects_unknown_flag(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["validate", "x.jsonl", "--bogus", "1"])
    assert e.value.code == 2
    assert "--bogus" in capsys.readouterr().err


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Block:
    size: int = option(8, "rows")
    temp: float = option(0.8, "temperature")
    names: tuple[str, ...] | None = option(None, "names")


@config("_blocky")
class BlockConfig:
    output: str = option(help="where to write")
    block: _Block = option(_Block(size=16), "a nested block")
    n: int = option(1, "count")


def test_a_block_merges_yaml_then_cli_field_by_field(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("block:\n  temp: 0.5\n")
    cfg = load_config(BlockConfig, y, {"output": "o", "block.names": "a,b"})
    # size keeps the command's default (16, not the block class's 8); temp from the file; names from the flag
    assert cfg.block == _Block(size=16, temp=0.5, names=("a", "b"))
    assert load_config(BlockConfig, None, {"output": "o", "block": "{size: 3}"}).block.size == 3
    assert load_config(BlockConfig, y, partial=True)["block"] == _Block(size=16, temp=0.5)


def test_a_block_names_its_bad_fields(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("n: 2\nblock:\n  tmp: 0.5\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:2: key 'block': unknown field 'tmp'"):
        load_config(BlockConfig, y, {"output": "o"})
    with pytest.raises(ConfigError, match=r"--block\.size.*key 'block\.size' expects int"):
        load_config(BlockConfig, None, {"output": "o", "block.size": "big"})
    with pytest.raises(ConfigError, match=r"unknown key 'temp'.*did you mean 'block\.temp'"):
        load_config(BlockConfig, None, {"output": "o", "temp": "0.1"})
    with pytest.raises(ConfigError, match=r"unknown key 'n\.x'"):
        load_config(BlockConfig, None, {"output": "o", "n.x": "1"})
    with pytest.raises(ConfigError, match=r"key 'block' expects a mapping"):
        load_config(BlockConfig, None, {"output": "o", "block": "7"})


def test_a_block_round_trips_and_resumes_by_field(tmp_path):
    from prm.config import check_resumable

    out = tmp_path / "out.jsonl"
    cfg = load_config(BlockConfig, None, {"output": str(out), "block.temp": "0.3"})
    save_config(cfg, out)
    assert load_config(BlockConfig, config_path_for(out)) == cfg
    out.write_text("x\n")
    check_resumable(dataclasses.replace(cfg, block=_Block(size=4, temp=0.3)), out, free={"block.size"})
    with pytest.raises(ConfigError, match=r"block\.temp: 0\.3"):
        check_resumable(dataclasses.replace(cfg, block=_Block(size=16, temp=0.9)), out, free={"block.size"})


def test_the_sampling_block_on_the_command_line(tmp_path, capsys):
    from prm.generate import GenerateConfig

    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    assert "--sampling.temperature" in capsys.readouterr().out
    parser_cfg = load_config(
        GenerateConfig, None, {"input": "i", "output": "o", "sampling.top_p": "0.9", "sampling.shots": "[]"}
    )
    assert parser_cfg.sampling.top_p == 0.9 and parser_cfg.sampling.shots == ()
    with pytest.raises(ConfigError, match="top_p in"):
        load_config(GenerateConfig, None, {"input": "i", "output": "o", "sampling.top_p": "0"})
