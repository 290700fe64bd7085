"""Error lines stay one line of bounded length (issue 31, item 4: an error quoting an
expanded alias bomb was a 312 MB line)."""

from model_zoo.cli_errors import MAX_LINE, bug_line, error_line


def test_an_error_line_is_one_line_cut_to_the_cap():
    line = error_line("config.yaml: 'x' must be a mapping, got " + "[lol] " * 10**6 + "\nmore")
    assert line.startswith("error: config.yaml: 'x' must be a mapping")
    assert "\n" not in line and len(line) < MAX_LINE + 60
    assert line.endswith("characters cut)")
    assert error_line("short\ntwo lines") == "error: short two lines"


def test_a_bug_line_is_cut_too():
    line = bug_line("eager-llm", TypeError("bad " + "x" * 10**6))
    assert line.startswith("internal error: eager-llm failed with TypeError: bad xxx")
    assert len(line) < MAX_LINE + 300 and "This is a bug" in line
