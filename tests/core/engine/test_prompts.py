"""Prompt templates: rendering, missing variables, defaults that say the right things, overrides."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aura_core.engine.prompts import (
    BUILTIN_VARIABLES,
    PROMPT_STAGES,
    InvalidPromptTemplate,
    LineComment,
    MissingPromptVariable,
    PromptError,
    UnknownPromptStage,
    default_templates,
    format_feedback,
    merge_templates,
    parse_verdict,
    placeholders,
    render,
)

VARS = {
    "task_title": "Add --json to ls",
    "task_prompt": "Make `aura ls` print one JSON object per task.",
    "repo": "aura",
    "branch": "aura/1a2b3c4d-add-json-to-ls",
    "base_branch": "main",
    "diff_summary": "aura_tui/cli.py | 40 ++++++--",
    "feedback": "Please add a test for the empty board.",
}


# --- render ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    ["Hi {{name}}!", "Hi {{ name }}!", "Hi {{   name\t}}!", "Hi {{name }}!", "Hi {{ name}}!"],
)
def test_whitespace_inside_braces_is_optional(template):
    assert render(template, {"name": "Ada"}) == "Hi Ada!"


def test_render_fills_every_occurrence_and_ignores_extra_variables():
    out = render("{{ a }}-{{ b }}-{{ a }}", {"a": "1", "b": "2", "unused": "x"})
    assert out == "1-2-1"


def test_render_converts_non_text_values():
    assert render("{{ n }} files", {"n": 3}) == "3 files"


def test_text_without_placeholders_is_unchanged():
    text = "no placeholders here, { single } braces and }} closers are fine"
    assert render(text, {}) == text


def test_missing_variable_is_named():
    with pytest.raises(MissingPromptVariable) as info:
        render("Fix {{ task_title }} on {{ branch }}", {"task_title": "x"})
    assert info.value.names == ("branch",)
    assert "branch" in str(info.value)
    assert "task_title" not in info.value.names


def test_all_missing_variables_are_named_once_in_order():
    with pytest.raises(MissingPromptVariable) as info:
        render("{{ b }} {{ a }} {{ b }} {{ c }}", {"c": "ok"}, template_name="review")
    assert info.value.names == ("b", "a")
    assert info.value.template_name == "review"
    message = str(info.value)
    assert "'review'" in message and "b, a" in message and "--var b=" in message


def test_none_counts_as_missing():
    """Rendering the word None into a prompt is always a bug upstream of the template."""
    with pytest.raises(MissingPromptVariable) as info:
        render("{{ feedback }}", {"feedback": None})
    assert info.value.names == ("feedback",)


def test_empty_string_is_a_value_not_missing():
    assert render("[{{ feedback }}]", {"feedback": ""}) == "[]"


def test_missing_prompt_variable_is_a_prompt_error_and_value_error():
    with pytest.raises(PromptError):
        render("{{ x }}", {})
    with pytest.raises(ValueError):
        render("{{ x }}", {})


def test_values_are_not_expanded_again():
    """Feedback or a task prompt may contain braces (Jinja, Go templates): they stay literal."""
    out = render("{{ feedback }} / {{ repo }}", {"feedback": "use {{ repo }} here", "repo": "r"})
    assert out == "use {{ repo }} here / r"


@given(st.text(max_size=60))
def test_any_value_round_trips_verbatim(value):
    assert render("<{{ v }}>", {"v": value}) == f"<{value}>"


@pytest.mark.parametrize(
    "template", ["{{ task title }}", "{{}}", "{{ }}", "open {{ only", "{{9x}}"]
)
def test_malformed_placeholders_are_refused(template):
    with pytest.raises(InvalidPromptTemplate, match="malformed placeholder"):
        render(template, {"task": "x", "title": "y", "only": "z", "9x": "w"})


def test_placeholders_lists_names_once_in_order():
    assert placeholders("{{ b }}{{a}} {{ b }} {{ user-var }}") == ("b", "a", "user-var")


# --- default templates ----------------------------------------------------------------------


def test_defaults_cover_exactly_the_prompt_stages():
    assert tuple(default_templates()) == PROMPT_STAGES
    assert set(PROMPT_STAGES) == {
        "setup",
        "coding_initial",
        "coding_follow_up",
        "review",
        "cleanup",
    }


@pytest.mark.parametrize("stage", PROMPT_STAGES)
def test_each_default_renders_with_builtin_variables_only(stage):
    template = default_templates()[stage]
    assert set(placeholders(template)) <= set(BUILTIN_VARIABLES)
    out = render(template, VARS, template_name=stage)
    assert "{{" not in out and "}}" not in out
    assert VARS["branch"] in out  # every agent is told which branch it is on


def test_default_templates_are_a_fresh_copy():
    first = default_templates()
    first["review"] = "changed"
    assert default_templates()["review"] != "changed"


def test_coding_initial_says_where_and_what():
    out = render(default_templates()["coding_initial"], VARS)
    assert VARS["task_prompt"] in out and VARS["task_title"] in out
    assert VARS["base_branch"] in out and "worktree" in out
    assert "push" in out  # it is told not to push
    assert "test" in out.lower()


def test_coding_initial_requires_the_task_prompt():
    variables = {k: v for k, v in VARS.items() if k != "task_prompt"}
    with pytest.raises(MissingPromptVariable) as info:
        render(default_templates()["coding_initial"], variables)
    assert info.value.names == ("task_prompt",)


def test_follow_up_passes_the_feedback_and_line_comments():
    feedback = format_feedback(
        "Close, two things.",
        [LineComment("src/ls.py", 42, "handle the empty board"), LineComment("README.md", 3, "x")],
    )
    out = render(default_templates()["coding_follow_up"], {**VARS, "feedback": feedback})
    assert "Close, two things." in out
    assert "src/ls.py:42: handle the empty board" in out
    assert "README.md:3: x" in out
    assert "point by point" in out


def test_follow_up_requires_feedback():
    variables = {k: v for k, v in VARS.items() if k != "feedback"}
    with pytest.raises(MissingPromptVariable, match="feedback"):
        render(default_templates()["coding_follow_up"], variables)


def test_review_asks_for_findings_with_location_severity_and_a_verdict():
    out = render(default_templates()["review"], VARS)
    assert VARS["diff_summary"] in out
    assert f"git diff {VARS['base_branch']}...{VARS['branch']}" in out
    assert "path/to/file:LINE" in out
    for severity in ("blocker", "major", "minor", "nit"):
        assert severity in out
    assert "VERDICT: approve" in out and "VERDICT: request_changes" in out
    assert "do not modify files" in out


def test_review_requires_the_diff_summary():
    variables = {k: v for k, v in VARS.items() if k != "diff_summary"}
    with pytest.raises(MissingPromptVariable, match="diff_summary"):
        render(default_templates()["review"], variables, template_name="review")


def test_setup_and_cleanup_forbid_changing_behaviour():
    templates = default_templates()
    assert "change nothing else" in render(templates["setup"], VARS)
    assert "without changing behaviour" in render(templates["cleanup"], VARS)


# --- overrides ------------------------------------------------------------------------------


def test_override_replaces_one_stage_and_keeps_the_others():
    defaults = default_templates()
    merged = merge_templates(defaults, {"review": "Review {{ branch }} for {{ ticket }}."})
    assert merged["review"] == "Review {{ branch }} for {{ ticket }}."
    assert merged["coding_initial"] == defaults["coding_initial"]
    assert defaults["review"] != merged["review"]  # the defaults were not mutated


def test_override_with_user_variable_renders_and_names_it_when_missing():
    merged = merge_templates(default_templates(), {"review": "Review {{ branch }} ({{ ticket }})"})
    assert (
        render(merged["review"], {**VARS, "ticket": "ENG-7"}) == f"Review {VARS['branch']} (ENG-7)"
    )
    with pytest.raises(MissingPromptVariable) as info:
        render(merged["review"], VARS, template_name="review")
    assert info.value.names == ("ticket",)


def test_unknown_stage_is_refused_with_the_known_ones_listed():
    with pytest.raises(UnknownPromptStage) as info:
        merge_templates(default_templates(), {"reviw": "x", "review": "ok"})
    assert info.value.stages == ("reviw",)
    message = str(info.value)
    assert "'reviw'" in message
    for stage in PROMPT_STAGES:
        assert stage in message


def test_prepare_workspace_override_explains_why_it_has_no_prompt():
    with pytest.raises(UnknownPromptStage, match="AURA creates the worktree itself"):
        merge_templates(default_templates(), {"prepare_workspace": "x"})


@pytest.mark.parametrize("value", [3, None, ["a"], {"text": "x"}])
def test_non_text_override_is_refused(value):
    with pytest.raises(PromptError, match="'setup' must be text"):
        merge_templates(default_templates(), {"setup": value})


def test_blank_override_is_refused():
    with pytest.raises(PromptError, match="remove the key"):
        merge_templates(default_templates(), {"cleanup": "  \n"})


def test_malformed_override_is_refused_at_merge_time():
    with pytest.raises(InvalidPromptTemplate, match="'review'"):
        merge_templates(default_templates(), {"review": "Look at {{ diff summary }}"})


def test_empty_overrides_give_the_defaults():
    assert merge_templates(default_templates(), {}) == default_templates()


# --- feedback and verdicts ------------------------------------------------------------------


def test_format_feedback_groups_comments_by_file_then_line_and_indents_continuations():
    text = format_feedback(
        "  General remark.  ",
        [
            LineComment("b.py", 9, "second"),
            LineComment("a.py", 20, "later\nwith detail"),
            LineComment("a.py", 3, "first"),
        ],
    )
    assert text == (
        "General remark.\n\n"
        "Line comments (path:line in the current files on this branch):\n"
        "- a.py:3: first\n"
        "- a.py:20: later\n"
        "  with detail\n"
        "- b.py:9: second"
    )


def test_format_feedback_message_only():
    assert format_feedback("Just this.") == "Just this."


def test_format_feedback_comments_only():
    assert format_feedback("", [LineComment("x.py", 1, "y")]).endswith("- x.py:1: y")


def test_format_feedback_refuses_an_empty_follow_up():
    with pytest.raises(ValueError, match="needs a message"):
        format_feedback("   ", [])


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("- [nit] a.py:1: x\nVERDICT: approve", "approve"),
        ("findings...\nVERDICT: request_changes\n", "request_changes"),
        ("**VERDICT:** approve", "approve"),
        ("verdict: Request_Changes", "request_changes"),
        ("VERDICT: approve\nwait, no.\nVERDICT: request_changes", "request_changes"),
        ("Looks good to me.", None),
        ("The VERDICT: approve is inline, not a line", None),
    ],
)
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) == verdict
