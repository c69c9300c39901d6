"""A GitHub Actions runner for the tests, so the workflows' jobs really run (tests/test_workflows.py).

It evaluates the `${{ }}` expressions the way GitHub does (into `env:`, `with:` and `if:` values only), runs
every `run:` script with bash and the variables a runner sets, enters the composite action for
`uses: ./kiki-bot`, and stands in for the two third-party actions (checkout copies the model repository or
links this checkout; setup-python hands over a stub interpreter whose venv holds the real `kiki-bot`). The
bot talks to the GitHub and Hub emulators with a token minted for each job, carrying exactly that job's
`permissions:` (the model repository is private, so reads need their scope too); no token may show in
anything it prints.
"""

from __future__ import annotations

import json
import operator
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from conftest import REPO
from emulator_fixtures import GITHUB_TOKEN, HF_TOKEN

GH_REPO = "test-lab/models"
HUB_ENV = "hub-publish"
SHA40 = re.compile(r"^[0-9a-f]{40}$")


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as true
        doc["on"] = doc.pop(True)
    return doc


class Expr:
    """GitHub Actions expressions: literals, contexts, `.*` filters, ! == != < > && ||, and a few functions."""

    TOKEN = re.compile(
        r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\],.*])"
        r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
    )

    def __init__(self, text: str, ctx: dict) -> None:
        self.tokens, pos = [], 0
        text = text.strip()
        while pos < len(text):
            m = self.TOKEN.match(text, pos)
            assert m and m.end() > pos, f"cannot read expression {text!r} at {pos}"
            self.tokens.append((m.lastgroup, m.group(m.lastgroup)))
            pos = m.end()
        self.i, self.ctx = 0, ctx

    def value(self) -> Any:
        out = self.or_()
        assert self.i == len(self.tokens), f"trailing tokens in {self.tokens}"
        return out

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self, want: str | None = None) -> tuple[str, str]:
        tok = self.tokens[self.i]
        assert want is None or tok[1] == want, f"expected {want}, got {tok}"
        self.i += 1
        return tok

    def or_(self) -> Any:
        left = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            left = left if truthy(left) else right
        return left

    def and_(self) -> Any:
        left = self.cmp()
        while self.peek() == "&&":
            self.take()
            right = self.cmp()
            left = right if truthy(left) else left
        return left

    def cmp(self) -> Any:
        left = self.unary()
        while self.peek() in ("==", "!=", "<", ">", "<=", ">="):
            op = self.take()[1]
            right = self.unary()
            a, b = (x.casefold() if isinstance(x, str) else x for x in (left, right))
            left = COMPARE[op](a, b)
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not truthy(self.unary())
        return self.postfix(self.primary())

    def primary(self) -> Any:
        kind, tok = self.take()
        if tok == "(":
            out = self.or_()
            self.take(")")
            return out
        if kind == "str":
            return tok[1:-1].replace("''", "'")
        if kind == "num":
            return float(tok) if "." in tok else int(tok)
        if tok in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok]
        if self.peek() == "(":
            self.take("(")
            args = []
            while self.peek() != ")":
                args.append(self.or_())
                if self.peek() == ",":
                    self.take(",")
            self.take(")")
            return FUNCTIONS[tok.casefold()](*args)
        assert tok in self.ctx, f"unknown context {tok}"
        return self.ctx[tok]

    def postfix(self, value: Any) -> Any:
        while self.peek() in (".", "["):
            if self.take()[1] == "[":
                key = self.or_()
                self.take("]")
            else:
                key = self.take()[1]
            if key == "*":
                value = list(value.values()) if isinstance(value, dict) else list(value or [])
                if self.peek() == ".":
                    self.take(".")
                    name = self.take()[1]
                    value = [v.get(name) if isinstance(v, dict) else None for v in value]
                continue
            value = value.get(key) if isinstance(value, dict) else None
        return value


def truthy(value: Any) -> bool:
    return value not in (False, 0, "", None)


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _contains(hay: Any, needle: Any) -> bool:
    if isinstance(hay, list):
        return any(as_text(x).casefold() == as_text(needle).casefold() for x in hay)
    return as_text(needle).casefold() in as_text(hay).casefold()


COMPARE = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}
FUNCTIONS = {
    "contains": _contains,
    "startswith": lambda s, p: as_text(s).casefold().startswith(as_text(p).casefold()),
    "endswith": lambda s, p: as_text(s).casefold().endswith(as_text(p).casefold()),
    "fromjson": json.loads,
    "tojson": json.dumps,
    "success": lambda: True,
    "always": lambda: True,
}


def evaluate(value: Any, ctx: dict) -> Any:
    """A YAML value with `${{ }}` templates: one expression keeps its type, mixed text becomes a string."""
    if not isinstance(value, str) or "${{" not in value:
        return value
    parts = re.split(r"\$\{\{(.*?)\}\}", value)
    if len(parts) == 3 and parts[0] == parts[2] == "":
        return Expr(parts[1], ctx).value()
    return "".join(p if i % 2 == 0 else as_text(Expr(p, ctx).value()) for i, p in enumerate(parts))


def condition(text: Any, ctx: dict) -> bool:
    if text is None:
        return True
    if isinstance(text, bool):
        return text
    text = text.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    return truthy(Expr(text, ctx).value())


def read_outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT as the runner reads it: `key=value` lines and `key<<DELIMITER` heredocs."""
    out, lines, i = {}, path.read_text().split("\n") if path.exists() else [], 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            out[key] = "\n".join(lines[i + 1 : end])
            i = end + 1
            continue
        if "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
        i += 1
    return out


@dataclass
class Job:
    status: str  # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    summary: str = ""
    env_seen: set[str] = field(default_factory=set)  # variables that reached a script with a value


@dataclass
class Runner:
    """Plays one workflow run for one event, in `tmp`, the way a runner would (see the module docstring)."""

    tmp: Path
    event_name: str
    payload: dict
    model: Path  # what `actions/checkout` of the model repository yields
    inputs: dict = field(default_factory=dict)
    secrets: dict = field(default_factory=dict)
    environment_secrets: dict = field(default_factory=dict)
    pip_log: Path = field(init=False)
    texts: list[str] = field(default_factory=list)  # everything printed or written: checked for tokens
    tokens: list[str] = field(default_factory=lambda: [GITHUB_TOKEN])  # the jobs' GITHUB_TOKENs, and the default

    def __post_init__(self) -> None:
        self.pip_log = self.tmp / "pip.log"
        self.event_path = self.tmp / "event.json"
        self.event_path.write_text(json.dumps(self.payload))
        ref = (
            self.payload.get("ref")
            or f"refs/pull/{(self.payload.get('pull_request') or {}).get('number', 0)}/merge"
        )
        self.github = {
            "event_name": self.event_name,
            "event": self.payload,
            "repository": GH_REPO,
            "ref": ref,
            "ref_name": ref.removeprefix("refs/tags/").removeprefix("refs/heads/"),
            "sha": "0" * 40,
        }

    # ------------------------------------------------------------ workflow and jobs
    def run(self, path: Path) -> dict[str, Job]:
        doc = load(path)
        declared = doc["on"]["workflow_call"]
        inputs = {k: v.get("default") for k, v in (declared.get("inputs") or {}).items()} | self.inputs
        for name, spec in (declared.get("inputs") or {}).items():
            assert not spec.get("required") or name in inputs, f"required input {name} missing"
        results: dict[str, Job] = {}
        for jid, job in doc["jobs"].items():
            needs = [job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", [])
            assert all(n in results for n in needs), "jobs are listed after the jobs they need"
            ctx = {
                "github": self.github,
                "inputs": inputs,
                "vars": {},
                "needs": {n: {"outputs": results[n].outputs, "result": results[n].status} for n in needs},
            }
            if any(results[n].status != "success" for n in needs) or not condition(job.get("if"), ctx):
                results[jid] = Job("skipped")
                continue
            from emulator_fixtures import GITHUB

            token = GITHUB.mint_token(job["permissions"])  # what GitHub hands the job as GITHUB_TOKEN
            self.tokens.append(token)
            secrets = self.secrets | (self.environment_secrets if job.get("environment") == HUB_ENV else {})
            ctx |= {"github": self.github | {"token": token}, "secrets": {"GITHUB_TOKEN": token, **secrets}}
            results[jid] = self.job(jid, job, ctx)
        return results

    def job(self, jid: str, job: dict, ctx: dict) -> Job:
        home = self.tmp / jid
        workspace, temp = home / "workspace", home / "temp"
        workspace.mkdir(parents=True)
        temp.mkdir()
        summary = home / "summary.md"
        summary.touch()
        result, steps = Job("success"), {}
        env = {
            "GITHUB_WORKSPACE": str(workspace),
            "RUNNER_TEMP": str(temp),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        for step in job["steps"]:
            step_ctx = ctx | {"steps": steps}
            outputs = self.step(step, step_ctx, workspace, env, result)
            if outputs is None:
                result.status = "failure"
                break
            if "id" in step:
                steps[step["id"]] = {"outputs": outputs}
        if result.status == "success":
            result.outputs = {
                k: as_text(evaluate(v, ctx | {"steps": steps})) for k, v in (job.get("outputs") or {}).items()
            }
        result.summary = summary.read_text()
        self.texts += [result.summary, *result.outputs.values()]
        return result

    def step(self, step: dict, ctx: dict, workspace: Path, env: dict, job: Job) -> dict | None:
        """Run one step; its outputs, or None when it failed."""
        uses = step.get("uses")
        with_ = {k: evaluate(v, ctx) for k, v in (step.get("with") or {}).items()}
        if uses is None:
            step_env = env | {k: as_text(evaluate(v, ctx)) for k, v in (step.get("env") or {}).items()}
            return self.script(step["run"], step_env, workspace, job)
        if uses.startswith("actions/checkout@"):
            target = workspace / with_.get("path", ".")
            if with_.get("repository") == "kiki-bot/kiki-bot":
                assert SHA40.match(with_["ref"])
                target.symlink_to(REPO, target_is_directory=True)
            else:
                shutil.copytree(self.model, target, symlinks=True)
            return {}
        if uses.startswith("actions/setup-python@"):
            return {"python-path": str(self.stub_python())}
        assert uses.startswith("./"), uses
        return self.composite(workspace / uses, with_, ctx, workspace, env, job)

    def composite(
        self, path: Path, with_: dict, ctx: dict, workspace: Path, env: dict, job: Job
    ) -> dict | None:
        doc = load(path / "action.yml")
        inputs = {k: as_text(evaluate(v.get("default", ""), ctx)) for k, v in doc["inputs"].items()}
        inputs |= {k: as_text(v) for k, v in with_.items()}
        inner_ctx, steps = {"github": ctx["github"] | {"action_path": str(path)}, "inputs": inputs}, {}
        inner_env = env | {"GITHUB_ACTION_PATH": str(path)}
        for step in doc["runs"]["steps"]:
            outputs = self.step(step, inner_ctx | {"steps": steps}, workspace, inner_env, job)
            if outputs is None:
                return None
            if "id" in step:
                steps[step["id"]] = {"outputs": outputs}
        return {
            k: as_text(evaluate(v["value"], inner_ctx | {"steps": steps})) for k, v in doc["outputs"].items()
        }

    def script(self, script: str, step_env: dict, workspace: Path, job: Job) -> dict | None:
        output = Path(step_env["RUNNER_TEMP"]) / f"output-{len(job.logs)}"
        output.touch()
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "KIKI_")) and k not in ("HF_TOKEN", "PYTEST_CURRENT_TEST")
        }
        runner_env = {
            "GITHUB_EVENT_NAME": self.event_name,
            "GITHUB_EVENT_PATH": str(self.event_path),
            "GITHUB_REPOSITORY": GH_REPO,
            "GITHUB_API_URL": os.environ["GITHUB_API_URL"],
            "GITHUB_REF": self.github["ref"],
            "GITHUB_REF_NAME": self.github["ref_name"],
            "GITHUB_OUTPUT": str(output),
            "GITHUB_ACTIONS": "true",
            "CI": "true",
            "KIKI_GITHUB_THROTTLE": "0",
        }
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            env=base | runner_env | step_env,
            cwd=workspace,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        job.env_seen |= {k for k, v in step_env.items() if v}
        job.logs.append(f"$ {script}\n--- exit {proc.returncode}\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        self.texts += [proc.stdout, proc.stderr, output.read_text()]
        return read_outputs(output) if proc.returncode == 0 else None

    def stub_python(self) -> Path:
        """What setup-python hands over: `-m venv DIR` makes a venv whose pip only logs and whose kiki-bot is real."""
        stub = self.tmp / "stub-python"
        if not stub.exists():
            stub.write_text(f"""#!/usr/bin/env bash
set -e
[ "$1 $2 $3" = "-m venv --clear" ] || {{ echo "stub python: unexpected $*" >&2; exit 3; }}
mkdir -p "$4/bin"
printf '#!/usr/bin/env bash\\necho "$*" >> {self.pip_log}\\n' > "$4/bin/python"
chmod +x "$4/bin/python"
ln -sf {Path(sys.executable).parent / "kiki-bot"} "$4/bin/kiki-bot"
""")
            stub.chmod(0o755)
        return stub

    def assert_no_token_leaked(self) -> None:
        for secret in (*self.tokens, HF_TOKEN):
            assert not any(secret in text for text in self.texts), f"{secret} leaked"
