"""Tests of dockerfiles.py: a small Dockerfile that follows every rule passes, one that breaks each
rule fails with the line and the rule; .dockerignore matching; the repository's own Dockerfiles."""

import textwrap

import pytest

import dockerfiles as df
from checklib import ROOT, Checker

GOOD = """\
    # syntax=docker/dockerfile:1
    ARG BASE=debian:12.5-slim
    FROM ${BASE} AS build
    RUN apt-get update \\
        && apt-get install -y --no-install-recommends g++
    COPY src/main.cpp /src/
    COPY keep.tmp /keep.tmp
    FROM debian:12.5-slim AS app
    COPY --from=build /src /src
    ADD --checksum=sha256:%s https://example.org/tool.tar.gz /opt/
    USER 10001:10001
""" % ("0" * 64)

BAD = """\
    FROM debian:latest AS app
    RUN apt-get install -y curl
    ADD https://example.org/tool.tar.gz /opt/
    ADD notes.txt /notes.txt
    COPY missing/ /missing/
    COPY src/scratch.tmp /tmp/
    USER root
"""


@pytest.fixture
def context(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.cpp").write_text("int main() {}\n")
    (tmp_path / "src" / "scratch.tmp").write_text("x\n")
    (tmp_path / "keep.tmp").write_text("x\n")
    (tmp_path / "notes.txt").write_text("x\n")
    (tmp_path / ".dockerignore").write_text("# build output\nbuild\n**/*.tmp\n!keep.tmp\n")
    return tmp_path


def lint(ctx, text, targets=("app",), numeric_user=True):
    path = ctx / "Dockerfile"
    path.write_text(textwrap.dedent(text))
    chk = Checker()
    result = df.lint_dockerfile(chk, str(path), str(ctx), list(targets), numeric_user, root=str(ctx))
    return chk.failures, result


def test_a_dockerfile_that_follows_the_rules_passes(context):
    found, (_, stages, by_name, expand) = lint(context, GOOD)
    assert found == []
    assert [s["name"] for s in stages] == ["build", "app"]
    assert expand(stages[0]["base"]) == "debian:12.5-slim"


def test_each_broken_rule_fails_with_its_line(context):
    found, _ = lint(context, BAD)
    assert found == [
        "Dockerfile: first line must be `# syntax=docker/dockerfile:1`",
        "Dockerfile: app USER 'root' is not a numeric non-root uid[:gid]",
        "Dockerfile:1: FROM debian:latest is not pinned to a tag",
        "Dockerfile:3: remote source https://example.org/tool.tar.gz without ADD --checksum=sha256:...",
        "Dockerfile:4: ADD of local files: use COPY",
        "Dockerfile:5: COPY source missing/ does not exist in context .",
        "Dockerfile:6: COPY src/scratch.tmp: .dockerignore excludes ['src/scratch.tmp']",
        "Dockerfile:2: apt-get install without --no-install-recommends",
    ]


def test_a_missing_target_fails(context):
    found, _ = lint(context, GOOD, targets=("app", "api"))
    assert found == ["Dockerfile: no stage named api"]


def test_root_is_refused_where_the_base_user_is_kept(context):
    found, _ = lint(context, "# syntax=docker/dockerfile:1\nFROM apache/kafka:3.9.1\nUSER 0\n", targets=(), numeric_user=False)
    assert found == ["Dockerfile: last stage runs as root"]
    found, _ = lint(context, "# syntax=docker/dockerfile:1\nFROM apache/kafka:3.9.1\n", targets=(), numeric_user=False)
    assert found == []


def test_dockerignore_last_match_wins(context):
    pats = df.dockerignore(str(context))
    assert df.ignored(pats, "src/scratch.tmp")
    assert not df.ignored(pats, "keep.tmp")
    assert df.ignored(pats, "build/release/src/pix-api")  # a directory pattern covers what is under it
    assert not df.ignored(pats, "src/main.cpp")


def test_continuations_and_comments(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text("# syntax=docker/dockerfile:1\nFROM a:1\nRUN one \\\n# a comment inside\n    two\nenv K=v\n")
    assert df.parse_dockerfile(path) == [("FROM", "a:1", 2), ("RUN", "one  two", 3), ("ENV", "K=v", 6)]


def test_split_flags():
    assert df.split_flags("--from=build --chmod=0755 a b /dst") == ({"from": "build", "chmod": "0755"}, ["a", "b", "/dst"])
    assert df.split_flags('["a b", "/dst"]') == ({}, ["a b", "/dst"])


def test_the_repository_dockerfiles_pass():
    chk = Checker()
    df.check_main_dockerfile(chk, ROOT, bindir=False)  # the linked libraries need a build: check_compose.sh
    df.check_kafka_dockerfile(chk, ROOT)
    assert chk.failures == []
