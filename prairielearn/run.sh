#!/usr/bin/env bash
# PrairieLearn's external-grader entrypoint (prairielearn/README.md): grade the notebook in
# /grade/student and write /grade/results/results.json in PrairieLearn's format.
#
# In the grader's image it is /autograder/source/prairielearn/run.sh, the `entrypoint` a question's
# info.json names (prairielearn/example_question/info.json). It grades with the Gradescope entry,
# gradescope/run_autograder, unchanged: the same choice among several notebooks, the same hardened
# kernel (as nobody, the solution and expected outputs unreadable to it) and a results.json whatever
# happens, kept in /grade/results/grader/ (with report.html) for the course staff. Then
# grader/prairielearn.py turns that into PrairieLearn's results.json. Whatever happens, that file is
# written (by bash alone if Python cannot run) and the exit status is 0: PrairieLearn reads the
# results only from a job that exits 0.
#
# Settings (environment; a question sets them with externalGradingOptions.environment):
#   PRAIRIELEARN_GRADE     the job's folder (default /grade)
#   AUTOGRADER_SOURCE      the unpacked grader (default: this script's folder's parent)
#   AUTOGRADER_PYTHON      its interpreter (default $AUTOGRADER_SOURCE/.venv/bin/python)
#   AUTOGRADER_TIMEOUT     seconds before grading is stopped (default 540: under the question's
#                          `timeout`, at most 600, so that a timed-out grading is still reported)
#   AUTOGRADER_GRADE_OPTIONS  options for the grader (unset: "--memory 1.5 --submission-timeout 480":
#                          PrairieLearn gives a job 2 GiB, so the student's kernel gets 1.5; the
#                          grader's own time limit, which still gives partial credit, ends before
#                          the backstop; empty: the grader's defaults, 4 GiB and 600 s)
#   AUTOGRADER_NOTEBOOK, AUTOGRADER_KERNEL_USER  as for run_autograder
set -u

GRADE="${PRAIRIELEARN_GRADE:-/grade}"
SOURCE="${AUTOGRADER_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
PY="${AUTOGRADER_PYTHON:-$SOURCE/.venv/bin/python}"
OUT="$GRADE/results/results.json"
OURS="$GRADE/results/grader"
OPTIONS="${AUTOGRADER_GRADE_OPTIONS-"--memory 1.5 --submission-timeout 480"}"

mkdir -p "$GRADE/results" 2>/dev/null
rm -f "$OUT"  # a stale file must never pass for this job's

# The question's own files are not the student's to read: as on Gradescope, the kernel runs as an
# unprivileged user where the grader runs as root, and these (data.json holds the question's
# correct answers, if it has any) are made unreadable to it. /grade/student is the student's own.
# Nor may it write where the results go (it could leave a file or a link there for root to follow).
if [ "$(id -u)" -eq 0 ]; then
    for d in data tests serverFilesCourse shared; do
        [ -e "$GRADE/$d" ] && chmod -R o-rwx "$GRADE/$d" 2>/dev/null
    done
    chmod go-w "$GRADE/results" 2>/dev/null
fi

AUTOGRADER_SOURCE="$SOURCE" AUTOGRADER_PYTHON="$PY" \
    AUTOGRADER_SUBMISSION="$GRADE/student" AUTOGRADER_RESULTS="$OURS" \
    AUTOGRADER_TIMEOUT="${AUTOGRADER_TIMEOUT:-540}" \
    AUTOGRADER_GRADE_OPTIONS="$OPTIONS" \
    "$SOURCE/run_autograder"

(cd "$SOURCE" && "$PY" -m grader.prairielearn "$OURS/results.json" "$OUT")

# JSON string body: printable ASCII only, escaped (as run_autograder's).
json_escape() {
    local s
    s="$(printf '%s' "$1" | tr -c '\11\12\40-\176' '?')"
    s="${s//\\/\\\\}"
    s="${s//\"/\\\"}"
    s="${s//$'\t'/\\t}"
    s="${s//$'\n'/\\n}"
    printf '%s' "$s"
}

if [ ! -s "$OUT" ]; then
    why="the grader could not report its result. This is a problem with the autograder, not your notebook; tell the course staff."
    tmp="$OUT.tmp.$$"
    printf '{"gradable": false, "score": 0, "message": "%s", "format_errors": ["%s"], "output": "%s", "tests": []}\n' \
        "$(json_escape "$why")" "$(json_escape "$why")" \
        "$(json_escape "$(head -c 4000 "$OURS/results.json" 2>/dev/null)")" >"$tmp" && mv -f "$tmp" "$OUT"
    echo "prairielearn: $why" >&2
fi
[ -s "$OUT" ]
