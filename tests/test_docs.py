"""README.md's configuration reference is generated from the pydantic models and must not go stale."""

from __future__ import annotations

import pytest
from conftest import REPO

from kiki_bot import docs
from kiki_bot.repo.project import Adapter, KikiConfig, Source


def test_readme_configuration_reference_is_current():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert docs.update(readme) == readme, (
        f"README.md's configuration reference is stale: run `{docs.COMMAND}`"
    )


def test_reference_covers_every_key_of_every_file():
    text = docs.config_reference()
    for model in (KikiConfig, Adapter, Source):
        for name in model.model_fields:
            assert f"| `{name}` |" in text or f"#### `[{name}]`" in text, name
            for sub_name, sub in docs._nested(model):
                for key in sub.model_fields:
                    assert f"| `{key}` |" in text, f"{sub_name}.{key}"
    for table in (
        "[provider]",
        "[policy]",
        "[hub]",
        "[base_model]",
        "[lora]",
        "[training]",
        "[eval]",
        "[crawler]",
        "[hub_data]",
    ):
        assert f"#### `{table}`" in text


def test_reference_rows_say_type_default_and_description():
    text = docs.config_reference()
    assert (
        "| `removal_window_days` | integer, ≥ 1, ≤ 365 | `30` | Days from a removal request to its deadline"
        in text
    )
    assert '| `approve_permission` | one of `triage`, `write`, `maintain`, `admin` | `"write"` |' in text
    assert "| `country` | string, matches `^[A-Z]{2}$` | **required** | ISO 3166-1 alpha-2" in text
    assert "| `name` | string, matches `^[a-z0-9][a-z0-9._-]*$` | optional: the file name |" in text
    assert "`2.3` (crawled and scraped online data)" in text
    assert "| `eval` | table `[eval]`, below | optional |" in text


def test_update_needs_the_markers_once():
    with pytest.raises(ValueError, match="config-reference:start"):
        docs.update("no markers here")
    fresh = docs.update(f"intro\n{docs.START}\nold text\n{docs.END}\nrest\n")
    assert fresh.startswith(f"intro\n{docs.START}\n<!-- Generated") and fresh.endswith(f"{docs.END}\nrest\n")
    assert docs.update(fresh) == fresh


def test_the_command_line(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{docs.START}\n{docs.END}\n")
    assert docs.main(["--check", str(readme)]) == 1
    assert docs.COMMAND in capsys.readouterr().err
    assert docs.main(["--write", str(readme)]) == 0
    assert docs.main(["--check", str(readme)]) == 0
    assert docs.main(["--bogus"]) == 2
