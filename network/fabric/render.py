"""Fill `${NAME}` fields of a config template (configtx.yaml) from explicit values."""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path


class TemplateError(ValueError):
    """A field has no value, or a value would break the YAML it is put into."""


def render_text(text: str, values: Mapping[str, str]) -> str:
    for name, value in values.items():
        if any(ch in value for ch in "\n\r\"'#"):
            raise TemplateError(f"value of {name} contains a character unsafe in YAML")
    try:
        return string.Template(text).substitute(values)
    except KeyError as exc:
        raise TemplateError(f"template field {exc.args[0]} has no value") from None
    except ValueError as exc:  # a lone `$` or a malformed `${...}`
        raise TemplateError(f"malformed template: {exc}") from None


def render_file(template: Path, values: Mapping[str, str], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_text(template.read_text(encoding="utf-8"), values), encoding="utf-8")
    return out
