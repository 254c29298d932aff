"""Configs: one frozen dataclass per command, YAML defaults, `--key value` overrides, strict checking.

A command's config class is its schema: every field has a type, a default (or is required) and a help text. Values
come from the class defaults, then a YAML file (`--config`), then the command line; an unknown key or a value of the
wrong type stops the command with an error that names the key and where it came from (file and line, or the flag).
The resolved config is written beside every output (`save_config`).

    @config("synth")
    class SynthConfig:
        n: int = option(1000, "number of problems")
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from prm.fileio import atomic_write

T = TypeVar("T")

# Configs registered by command name; the CLI and the config test walk this.
REGISTRY: dict[str, type] = {}


class ConfigError(ValueError):
    """A bad config value; the message names the key and where the value came from."""


def option(default: Any = dataclasses.MISSING, help: str = "", *, flag: str | None = None, positional: bool = False):
    """A config field. `flag` renames the command-line option (e.g. --from); `positional` makes it a positional
    argument. A field without a default is required."""
    meta = {"help": help, "flag": flag, "positional": positional}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults: configs are frozen")
    return dataclasses.field(default=default, metadata=meta)


def config(command: str):
    """Decorator: make a frozen, keyword-only dataclass and register it as `command`'s config."""

    def wrap(cls: type[T]) -> type[T]:
        cls = dataclasses.dataclass(frozen=True, kw_only=True)(cls)
        cls.command = command  # type: ignore[attr-defined]
        REGISTRY[command] = cls
        return cls

    return wrap


# ---------------------------------------------------------------------------------------------------------------------
# Type checking and coercion


def _describe(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (typing.Union, types.UnionType):
        return " | ".join(_describe(a) for a in get_args(tp))
    if get_origin(tp) in (list, tuple):
        return f"list of {_describe(get_args(tp)[0])}"
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, where: str, *, from_cli: bool) -> Any:
    """Return `value` checked against the type `tp` (CLI values arrive as strings and are parsed as YAML scalars)."""

    def bad() -> ConfigError:
        return ConfigError(f"{where}: key '{key}' expects {_describe(tp)}, got {value!r}")

    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if type(None) in options and (value is None or (from_cli and str(value).lower() in ("null", "none", "~"))):
            return None
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _coerce(value, opt, key, where, from_cli=from_cli)
            except ConfigError:
                pass
        raise bad()
    if origin is Literal:
        choices = get_args(tp)
        if from_cli and isinstance(value, str) and value not in choices:
            value = yaml.safe_load(value)
        if value in choices and type(value) in {type(c) for c in choices}:
            return value
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    if from_cli and isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise bad() from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 2e-4 (no dot in the mantissa) as a string
            try:
                return float(value)
            except ValueError:
                raise bad() from None
        raise bad()
    if dataclasses.is_dataclass(tp):
        # A nested record (e.g. one few-shot example): a mapping whose keys are checked like a config's.
        if not isinstance(value, dict):
            raise bad()
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        for k in value:
            if k not in names:
                raise ConfigError(f"{where}: key '{key}': unknown field '{k}' (known: {', '.join(sorted(names))})")
        try:
            return tp(**{k: _coerce(v, hints[k], f"{key}.{k}", where, from_cli=False) for k, v in value.items()})
        except TypeError as e:
            raise ConfigError(f"{where}: key '{key}': {e}") from None
    if origin in (list, tuple):
        inner = get_args(tp)[0]
        if isinstance(value, str) and from_cli:
            parsed = yaml.safe_load(value) if value.lstrip().startswith("[") else None
            value = parsed if isinstance(parsed, list) else [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise bad()
        return tuple(_coerce(v, inner, key, where, from_cli=from_cli) for v in value)
    raise TypeError(f"unsupported config type {tp!r} for key {key!r}")


def _yaml_lines(text: str) -> dict[str, int]:
    """Line (1-based) of each top-level key in a YAML mapping, so errors can point at it."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def load_yaml(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, int]]:
    """Read a YAML config file: (mapping, line of each key)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(data).__name__}")
    return data, _yaml_lines(text)


def load_config(
    cls: type[T],
    path: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    partial: bool = False,
) -> T | dict[str, Any]:
    """Build `cls` from its defaults, then the YAML file at `path`, then `overrides` (raw command-line strings).

    With `partial=True`, only check the keys and types given and return them as a dict: a YAML file of defaults
    may leave out what only the command line can say (input and output paths)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    layers: list[tuple[dict[str, Any], bool, Any]] = []
    if path is not None:
        data, lines = load_yaml(path)
        layers.append((data, False, lambda k: f"{path}:{lines.get(k, '?')}"))
    if overrides:

        def flag(k: str) -> str:
            return (fields[k].metadata.get("flag") if k in fields else None) or f"--{k}"

        layers.append((overrides, True, lambda k: f"command line ({flag(k)})"))
    for data, from_cli, where in layers:
        for key, value in data.items():
            head, _, sub = key.partition(".")
            if head not in fields or (sub and not dataclasses.is_dataclass(hints[head])):
                raise ConfigError(f"{where(key)}: unknown key '{key}' for 'prm {cls.command}' ({_known(cls, key)})")
            if dataclasses.is_dataclass(hints[head]):
                # A block (e.g. `sampling`): a mapping, or one `block.field` flag, changes only the fields it names.
                base = values.get(head, fields[head].default)
                mapping = {sub: value} if sub else _mapping(value, key, where(key), from_cli)
                values[head] = _merge(base, hints[head], mapping, head, where(key), from_cli)
                continue
            values[key] = _coerce(value, hints[key], key, where(key), from_cli=from_cli)
    if partial:
        return values
    missing = [
        name
        for name, f in fields.items()
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"'prm {cls.command}': missing required key(s): {', '.join(missing)}")
    try:
        return cls(**values)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"'prm {cls.command}': {e}") from None


def _known(cls: type, key: str) -> str:
    """The known keys, and the block field a flat key probably meant (`temperature` -> `sampling.temperature`)."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for name in names:
        if dataclasses.is_dataclass(hints[name]) and key in {f.name for f in dataclasses.fields(hints[name])}:
            return f"did you mean '{name}.{key}'?"
    return f"known keys: {', '.join(sorted(names))}"


def _mapping(value: Any, key: str, where: str, from_cli: bool) -> dict[str, Any]:
    if from_cli and isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            value = None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: key '{key}' expects a mapping of its fields, got {value!r}")
    return value


def _merge(base: Any, tp: type, mapping: dict[str, Any], key: str, where: str, from_cli: bool) -> Any:
    """`base` (a block's current value, or MISSING) with the fields in `mapping` checked and replaced."""
    hints = typing.get_type_hints(tp)
    names = {f.name for f in dataclasses.fields(tp)}
    changes = {}
    for k, v in mapping.items():
        if k not in names:
            raise ConfigError(f"{where}: key '{key}': unknown field '{k}' (known: {', '.join(sorted(names))})")
        changes[k] = _coerce(v, hints[k], f"{key}.{k}", where, from_cli=from_cli)
    try:
        return tp(**changes) if base is dataclasses.MISSING else dataclasses.replace(base, **changes)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: key '{key}': {e}") from None


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A config dict with its blocks spelt out as dotted keys: {"sampling": {"top_p": 1}} -> {"sampling.top_p": 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= flat(v, f"{prefix}{k}.")
        else:
            out[prefix + k] = v
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    return list(_plain(x) for x in v) if isinstance(v, tuple) else v


def config_path_for(output: str | os.PathLike) -> Path:
    """Where the resolved config of an output goes: `out.jsonl` -> `out.config.yaml`; a folder -> `folder/config.yaml`."""
    p = Path(output)
    if p.is_dir() or not p.suffix:
        return p / "config.yaml"
    return p.with_name(p.name[: -len(p.suffix)] + ".config.yaml")


def save_config(cfg: Any, output: str | os.PathLike) -> Path:
    """Write the resolved config beside `output`; it reloads with `load_config(type(cfg), path)`."""
    path = config_path_for(output)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    header = f"# Resolved config of 'prm {type(cfg).command}', written {stamp}.\n"
    header += f"# Rerun: prm {type(cfg).command} --config {path}\n"
    with atomic_write(path) as f:
        f.write(header)
        yaml.safe_dump(to_dict(cfg), f, sort_keys=False, allow_unicode=True)
    return path


def check_resumable(
    cfg: Any, output: str | os.PathLike, free: set[str] = frozenset(), only: set[str] | None = None
) -> None:
    """Refuse to continue an existing output written under other settings: a rerun resumes only what the same
    config started. `free` names the fields that change no output byte (batch sizes, progress), `only` (if given)
    the only fields compared; an output that exists without its saved config is refused too."""
    out = Path(output)
    if not out.exists() or (out.is_file() and out.stat().st_size == 0) or (out.is_dir() and not any(out.iterdir())):
        return
    saved = config_path_for(out)
    if not saved.exists():
        raise ConfigError(f"{out} exists without its config {saved.name}: delete it or choose another output")
    old, new = flat(to_dict(load_config(type(cfg), saved))), flat(to_dict(cfg))
    changed = [k for k in new if k not in free and (only is None or k in only) and old.get(k) != new[k]]
    if changed:
        raise ConfigError(
            f"{out} was written with other settings ({', '.join(f'{k}: {old.get(k)!r}' for k in changed)}); "
            "rerun with those to resume, or delete it / choose another output"
        )


def defaults_yaml(cls: type, header: str) -> str:
    """YAML text of a config's defaults, one key per line with its help text as a comment (for configs/)."""
    lines = [f"# {line}" for line in header.strip().splitlines()]

    def scalar(v: Any) -> str:
        text = yaml.safe_dump(_plain(v), default_flow_style=True, width=10_000).strip()
        return text.removesuffix("\n...").removesuffix("...").strip()

    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING:
            continue
        if dataclasses.is_dataclass(f.default):  # a block: its fields indented under it, each with its help
            lines.append(f"{f.name}:  # {f.metadata.get('help', '')}")
            for sub in dataclasses.fields(f.default):
                lines.append(f"  {sub.name}: {scalar(getattr(f.default, sub.name))}  # {sub.metadata.get('help', '')}")
            continue
        lines.append(f"{f.name}: {scalar(f.default)}  # {f.metadata.get('help', '')}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One option per config field (`--key value`), plus `--config FILE`. Defaults are suppressed so that only
    the flags a user typed override the YAML file."""
    parser.add_argument("--config", metavar="FILE", help="YAML file of defaults (see configs/)")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        default = "required" if f.default is dataclasses.MISSING else f"default: {_plain(f.default)!r}"
        help_text = f"{meta.get('help', '')} [{_describe(hints[f.name])}; {default}]".replace("%", "%%")
        if meta.get("positional"):
            parser.add_argument(f.name, nargs="?", default=argparse.SUPPRESS, help=help_text)
            continue
        flags = [meta["flag"]] if meta.get("flag") else []
        flags.append(f"--{f.name}")
        if "_" in f.name:
            flags.append(f"--{f.name.replace('_', '-')}")
        parser.add_argument(*flags, dest=f.name, default=argparse.SUPPRESS, metavar="VALUE", help=help_text)
        if dataclasses.is_dataclass(hints[f.name]):  # a block: one flag per field, --block.field
            sub_hints = typing.get_type_hints(hints[f.name])
            for sub in dataclasses.fields(hints[f.name]):
                name = f"{f.name}.{sub.name}"
                value = getattr(f.default, sub.name, sub.default)
                text = f"{sub.metadata.get('help', '')} [{_describe(sub_hints[sub.name])}; default: {_plain(value)!r}]"
                parser.add_argument(
                    f"--{name}", dest=name, default=argparse.SUPPRESS, metavar="VALUE", help=text.replace("%", "%%")
                )


def from_args(cls: type[T], ns: argparse.Namespace) -> T:
    names = {f.name for f in dataclasses.fields(cls)}
    overrides = {k: v for k, v in vars(ns).items() if k.partition(".")[0] in names}
    return load_config(cls, ns.config, overrides)
