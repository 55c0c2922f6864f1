"""Tests of check_workflows.py: the policy on small workflows, and the summary of action-validator's
JSON error tree."""

import json

import pytest

import check_workflows as wf

GOOD = """\
on: push
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-24.04
    timeout-minutes: 30
    steps:
      - uses: actions/checkout@v4
      - uses: docker/build-push-action@0123456789abcdef0123456789abcdef01234567
      - uses: ./.github/actions/local
      - uses: docker://alpine:3.20
      - run: echo "${{ github.sha }}"
      - run: Write-Host hi
        shell: pwsh
  reuse:
    uses: org/repo/.github/workflows/w.yml@v1
"""

BAD = """\
on: push
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v3
      - uses: actions/cache@main
      - uses: someone/action
      - uses: docker://alpine
      - run: echo ${{ secrets.DOCKER_PASSWORD }}
"""


def test_a_workflow_that_follows_the_policy_passes():
    problems, scripts = wf.workflow_policy("ci.yml", GOOD)
    assert problems == []
    assert scripts == [("ci.yml-build-5.sh", '#!/usr/bin/env bash\n# ci.yml: job build step 5 (run)\necho "GHA_EXPR"\n')]


def test_each_breach_of_the_policy_fails():
    problems, scripts = wf.workflow_policy("ci.yml", BAD)
    assert problems == [
        "ci.yml:10: Docker Hub secret referenced (- run: echo ${{ secrets.DOCKER_PASSWORD }}); push to GHCR with GITHUB_TOKEN",
        "ci.yml: no top-level permissions: (least privilege, e.g. contents: read)",
        "ci.yml: job build: no timeout-minutes (the default is 6 hours)",
        "ci.yml: job build step 1 (actions/checkout@v3): actions/checkout@v3 is older than actions/checkout@v4 "
        "(no longer runs on hosted runners)",
        "ci.yml: job build step 2 (actions/cache@main): actions/cache@main is pinned to 'main', a branch or unknown ref "
        "(use vN or a commit sha)",
        "ci.yml: job build step 3 (someone/action): someone/action is not pinned (owner/repo@vN or @<commit sha>)",
        "ci.yml: job build step 4 (docker://alpine): docker://alpine has no tag or digest",
    ]
    assert len(scripts) == 1


def test_not_a_mapping_fails():
    assert wf.workflow_policy("x.yml", "- a\n- b\n") == (["x.yml: not a mapping"], [])


def test_policy_writes_the_scripts(tmp_path, capsys):
    (tmp_path / "ci.yml").write_text(GOOD)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert wf.policy(str(scratch), [str(tmp_path / "ci.yml")]) == 0
    assert [p.name for p in scratch.iterdir()] == ["ci.yml-build-5.sh"]
    assert "1 workflow(s), 1 run: script(s) extracted, 0 problem(s)" in capsys.readouterr().out


# action-validator's answer for a job with `runs-onn:` (a oneOf: a job that runs, or a reusable call).
VALIDATOR_OUTPUT = json.dumps({"actionType": "workflow", "errors": [{
    "code": "one_of", "path": "/jobs/a", "title": "OneOf conditions are not met", "states": [
        {"errors": [{"code": "properties", "detail": "Additional property 'runs-onn' is not allowed", "path": "/jobs/a"},
                    {"code": "required", "path": "/jobs/a/runs-on", "title": "This property is required"}]},
        {"errors": [{"code": "properties", "detail": "Additional property 'runs-onn' is not allowed", "path": "/jobs/a"},
                    {"code": "required", "path": "/jobs/a/uses", "title": "This property is required"},
                    {"code": "required", "path": "/jobs/a/with", "title": "This property is required"}]}]}]}, indent=2)


def test_summary_follows_the_branch_with_fewest_errors():
    assert wf.summarize("Fatal Error:\n" + VALIDATOR_OUTPUT) == (
        "    | /jobs/a: Additional property 'runs-onn' is not allowed\n"
        "    | /jobs/a/runs-on: This property is required")


@pytest.mark.parametrize("text", ["not json at all\nsecond line", "{ broken"])
def test_other_output_is_kept(text):
    assert wf.summarize(text) == "\n".join("    | " + line for line in text.splitlines())
