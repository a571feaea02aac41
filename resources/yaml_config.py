"""Reading one YAML settings file into a pydantic model, with errors that name the file and field.

Every declarative file (REST banks, CSV mappings, SFTP drops) is read the same way: the error says
where, never what value was there (a secret pasted into the wrong field must not reach a log).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def load_yaml_model(path: Path, model: type[Model], error: type[Exception]) -> Model:
    """`model` validated from the YAML mapping in `path`; raises `error` naming the file and each bad field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of settings at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(f"{path}:\n{describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    # loc and message only: pydantic's default text repeats the input value.
    lines = []
    for detail in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in detail["loc"]) or "(top level)"
        message = re.sub(r"^Value error, ", "", detail["msg"])
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)
