"""`kiki-bot demo`, the README's first command, tells the story in plain text: each step once, in order, and
none of the Markdown of the bot's comments (bold markers, escapes, entities) on the terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from rendering import page, to_html

from kiki_bot.core.escape import md
from kiki_bot.demo.story import _line


def test_a_comment_line_is_shown_as_plain_text():
    comment = f"intro\n**Records matched per source:** {md('esp-idf')}: 46 · {md('a_b')}: 1 · {md('@x')}: 2\n"
    assert _line(comment, "Records matched per source") == "Records matched per source: esp-idf: 46 · a_b: 1 · @x: 2"


def test_the_demo_runs_each_step_once_in_plain_text(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for name in ("GITHUB_TOKEN", "KIKI_GITHUB_TOKEN", "GITHUB_REPOSITORY", "HF_ENDPOINT", "HF_TOKEN", "HF_HOME"):
        env.pop(name, None)
    res = subprocess.run([sys.executable, "-m", "kiki_bot", "demo", "--workdir", str(tmp_path / "work")],
                         capture_output=True, text=True, env=env, timeout=1200)
    assert res.returncode == 0, res.stderr
    steps = re.findall(r"^(\d+)/(\d+)  ", res.stderr, re.M)
    total = int(steps[0][1])
    assert steps == [(str(n), str(total)) for n in range(1, total + 1)], res.stderr
    assert "**" not in res.stderr and "\\-" not in res.stderr and "&#" not in res.stderr, res.stderr
    assert "triage answered at once: Records matched per source: esp-idf: 46" in res.stderr
    assert "Version 0.1.1 of tiny-cpp-lora is published" in res.stderr
    assert "(mlx-lm, mlx/)" in res.stderr and "and in transformers + PEFT (the repository's root)" in res.stderr
    assert "Warning" not in res.stderr, res.stderr
    _the_published_card_says_only_what_the_data_backs(tmp_path / "work" / "model-repo")

    # The v0.1.1 card links v0.1.0's Hub revision, gives each version's placement date and lists v0.1.0 as built
    # before the removal (issue 15, points 4 and 6), read as GitHub renders it.
    card_dir = tmp_path / "work" / "model-repo" / "cards" / "tiny-cpp-lora"
    card = json.loads((card_dir / "card.json").read_text())
    [v010] = card["header"]["previous_versions"]
    assert (card["header"]["version"], v010["version"], v010["revision"]) == ("0.1.1", "0.1.0", "v0.1.0")
    [superseded] = card["superseded"]
    [request] = superseded["requests"]
    assert superseded["version"] == "0.1.0" and superseded["action"] == "flag"
    readme = (card_dir / "README.md").read_text()
    links = [dict(attrs)["href"] for tag, attrs in page(readme).elements if tag == "a"]
    assert "https://huggingface.co/kiki-demo/tiny-cpp-lora/blob/v0.1.0/README.md" in links
    placement = next(line for line in readme.splitlines() if line.startswith("**Date of placement"))
    assert f"v0.1.1: {card['header']['last_update']}; v0.1.0: {v010['placed_on_market']}" in placement
    assert "- **0.1.0** (" in readme and f"superseded: built before the records of removal request {request}" in readme
    # The rightsholder's route and the raw Markdown (points 7 and 8): a direct form link, a mailto: link, no
    # zero-width space or entity inside an address, one changelog entry a list item.
    assert any(href.endswith("/issues/new?template=removal-request.yml") for href in links), links
    assert any(href.startswith("mailto:") for href in links), links
    assert "\u200b" not in readme and "&#8203;" not in readme
    assert len(re.findall(r"<li>\s*(?:<p>)?<strong>0\.1\.", to_html(readme[readme.index("## Appendix G"):]))) == 2
    # The demo's cards pass `card check` (v0.1.1 is published after the purge: nothing pending, no drift).
    check = subprocess.run([sys.executable, "-m", "kiki_bot", "card", "check", "-C", str(card_dir.parent.parent)],
                           capture_output=True, text=True, env=env, timeout=600)
    assert check.returncode == 0, check.stderr + check.stdout


def test_without_the_demo_extra_the_demo_says_what_to_install(tmp_path):
    """The emulators' werkzeug ships only with `kiki-bot[demo]`; without it the demo is refused up front (exit 2)."""
    blocked = "import sys; sys.modules['werkzeug'] = None; from kiki_bot.cli import main; main(sys.argv[1:])"
    res = subprocess.run([sys.executable, "-c", blocked, "demo", "--workdir", str(tmp_path / "work")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    assert "werkzeug is not installed: the demo needs `pip install 'kiki-bot[demo]'`" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "work").exists()


def _the_published_card_says_only_what_the_data_backs(repo) -> None:
    """Issue 15 points 2, 9 and 10 on the demo's v0.1.1 card, as GitHub renders it; `card check` passes."""
    from test_card_truth import answer, links, section

    from rendering import visible

    check = subprocess.run([sys.executable, "-m", "kiki_bot", "card", "check", "-C", str(repo)],
                           capture_output=True, text=True, timeout=600)
    assert check.returncode == 0, check.stderr
    readme = (repo / "cards" / "tiny-cpp-lora" / "README.md").read_text()
    text = visible(readme)
    assert "**Version of the Summary:** 0.1.1" in readme
    assert "instruction/response pairs" in visible(section(readme, "### 1.3", "**Latest date"))
    assert answer(section(readme, "### 2.5", "### 2.6")) == "No"
    assert answer(section(readme, "### 2.6", "## 3.")) == "Yes"
    assert "2,850" not in text and "the devstral-cpp-lora adapter" not in text  # v0.1.0's figure, the example's name
    contact = links(section(readme, "**Provider name", "**Authorised"))
    assert "https://github.com/kiki-demo/embedded-models/issues" in contact
    assert not any("Ailiance-fr" in url for url in contact)
    evaluation = visible(section(readme, "## Appendix C", "## Appendix D"))
    assert "This adapter: measured by this release's training run" in evaluation
    assert "no training run recorded" not in text
