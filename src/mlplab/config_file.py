"""Reading configurations from YAML/TOML files and CLI values, with errors that name
the file, the key and, for YAML, the line.

>>> parse_value("[8, 8]")
[8, 8]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mlplab.config import ConfigError, RunConfig, from_dict, with_overrides


def parse_value(text: str, key: str = "--set") -> Any:
    """Parse a CLI value (``"0.1"``, ``"[8, 8]"``, ``"true"``) the way YAML would.

    >>> parse_value("[8, 8]")
    [8, 8]
    """
    import yaml

    try:
        return yaml.load(text, Loader=_strict_loader())
    except yaml.YAMLError as e:
        raise ConfigError(key, text, "a YAML value such as 0.1, true, adam or [8, 8] ("
                          + _yaml_problem(e) + ")") from None


def _strict_loader() -> type:
    """yaml's SafeLoader that refuses a key given twice in one mapping (plain yaml keeps
    the last value without a word, so ``lr: 0.1`` then ``lr: 5.0`` would train at 5.0)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key '{key}' (first given on line {seen[key]})",
                        key_node.start_mark)
                if isinstance(key, (str, int, float, bool)):
                    seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep)

    return StrictLoader


def _yaml_problem(e: Exception) -> str:
    """A YAML error on one line: what is wrong and where (1-based line and column)."""
    import yaml

    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        mark = e.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: " + " ".join(str(e.problem).split())
    return " ".join(str(e).split())


def read_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML or TOML file into a dict, with errors that name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("--config", str(path), "an existing .yaml, .yml or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError("(file)", str(path), f"a UTF-8 text file (byte {e.start} is not UTF-8)") from None
    if path.suffix == ".toml":
        import tomllib

        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError("(file)", str(path), f"valid TOML: {e}") from None
    elif path.suffix in (".yaml", ".yml", ".json"):
        import yaml

        try:
            raw = yaml.load(text, Loader=_strict_loader())
        except yaml.YAMLError as e:
            raise ConfigError("(file)", str(path), "valid YAML: " + _yaml_problem(e)) from None
    else:
        raise ConfigError("--config", str(path), "a .yaml, .yml, .json or .toml file")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("(file)", str(path), "a mapping at the top level")
    return raw


def yaml_line(path: Path, key: str) -> int | None:
    """1-based line of a dotted key in a YAML file, for error messages."""
    import yaml

    try:
        node = yaml.compose(path.read_text())
    except yaml.YAMLError:
        return None
    line = None
    for part in key.split("."):
        if not isinstance(node, yaml.MappingNode):
            return line
        for k, v in node.value:
            if k.value == part:
                line, node = k.start_mark.line + 1, v
                break
        else:
            return line
    return line


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Load a YAML/TOML config file and apply dotted overrides."""
    path = Path(path)
    raw = read_mapping(path)
    try:
        cfg = from_dict(raw)
    except ConfigError as e:
        line = yaml_line(path, e.key) if path.suffix in (".yaml", ".yml") else None
        where = f"{path.name}, line {line}" if line else path.name
        raise ConfigError(e.key, e.value, e.allowed, where) from None
    return with_overrides(cfg, overrides) if overrides else cfg
