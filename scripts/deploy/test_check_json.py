"""Tests of check_json.py: strict parsing, and launch.json's cross-references."""

import json

import check_json as cj


def write(root, rel, text):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return rel


def project(tmp_path):
    (tmp_path / "src" / "apps" / "pix-api").mkdir(parents=True)
    write(tmp_path, "tests/CMakeLists.txt", "add_executable(unit_tests a.cpp)\nadd_executable( kafka_it b.cpp)\n")
    tasks = {"tasks": [{"label": "build debug"}]}
    launch = {"configurations": [
        {"name": "api", "preLaunchTask": "build debug", "program": "${workspaceFolder}/build/debug/src/pix-api"},
        {"name": "tests", "program": "${workspaceFolder}/build/debug/tests/unit_tests"}]}
    return [write(tmp_path, ".vscode/tasks.json", json.dumps(tasks)), write(tmp_path, ".vscode/launch.json", json.dumps(launch))]


def test_valid_files_pass(tmp_path, capsys):
    files = project(tmp_path) + [write(tmp_path, "a.json", '{"a": {"b": 1}}')]
    assert cj.check(str(tmp_path), files) == []
    assert "2 configurations cross-checked" in capsys.readouterr().out


def test_duplicate_keys_trailing_commas_and_comments_fail(tmp_path):
    files = [write(tmp_path, "dup.json", '{"a": 1, "a": 2}'), write(tmp_path, "comma.json", '{"a": 1,}'),
             write(tmp_path, "comment.json", '// x\n{}')]
    found = cj.check(str(tmp_path), files)
    assert found[0] == "dup.json: duplicate key 'a'"
    assert found[1].startswith("comma.json: Expecting property name enclosed in double quotes")
    assert found[2].startswith("comment.json: Expecting value")


def test_launch_cross_references_fail(tmp_path):
    project(tmp_path)
    launch = {"configurations": [
        {"name": "a", "preLaunchTask": "build relase", "program": "${workspaceFolder}/build/debug/src/pix-api"},
        {"name": "b", "program": "${workspaceFolder}/build/asan/src/pix-api"},
        {"name": "c", "program": "${workspaceFolder}/build/release/src/pix-gone"},
        {"name": "d", "program": "${workspaceFolder}/build/debug/tests/kafka_it"}]}
    files = [".vscode/tasks.json", write(tmp_path, ".vscode/launch.json", json.dumps(launch))]
    assert cj.check(str(tmp_path), files) == [
        ".vscode/launch.json 'a': preLaunchTask 'build relase' is not a task label in tasks.json",
        ".vscode/launch.json 'b': program '${workspaceFolder}/build/asan/src/pix-api' is not build/<preset>/src|tests/<target>",
        ".vscode/launch.json 'c': pix-gone is not a target the project builds"]
