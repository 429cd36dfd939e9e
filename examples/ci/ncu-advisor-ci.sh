#!/usr/bin/env bash
# The shell steps of examples/ci/ncu-advisor.yml, one subcommand per workflow step, so that the tests
# (tests/test_ci_workflow.py) run exactly what CI runs. See docs/ci.md.
#
#   ncu-advisor-ci.sh profile   profile $KERNEL_FILE into $RUNS; a failing variant (exit 1) is recorded,
#                               not fatal: RUN_DIR is set and the report steps still run
#   ncu-advisor-ci.sh report    job summary ($GITHUB_STEP_SUMMARY), SARIF, JUnit and HTML from $RUN_DIR
#   ncu-advisor-ci.sh compare   compare $BASELINE (the base branch's run) with $RUN_DIR; no baseline: a note
#   ncu-advisor-ci.sh gate      fail the job (last step) when profile, report or compare said so
#
# Inputs (environment): KERNEL_FILE, RUNS (default runs), PROFILE_ARGS (extra `profile` options, split on
# spaces), FAIL_ON (JUnit and gate severity, default error; `never` publishes without failing), BASELINE
# (default baseline-run), THRESHOLD (compare, percent, default 2), NCU_ADVISOR (the command, default
# ncu-advisor), and the runner's GITHUB_ENV, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY. Each step hands its exit
# status to the later ones through GITHUB_ENV (NCU_PROFILE_STATUS, NCU_REPORT_STATUS, NCU_COMPARE_STATUS).
# Exit codes of ncu-advisor: 0 clean, 1 findings/failed variant/regression, 2 bad input, 3 cannot profile.
set -uo pipefail

RUNS=${RUNS:-runs}
FAIL_ON=${FAIL_ON:-error}
BASELINE=${BASELINE:-baseline-run}
THRESHOLD=${THRESHOLD:-2}
read -r -a NCU_ADVISOR_CMD <<<"${NCU_ADVISOR:-ncu-advisor}"
: "${GITHUB_ENV:?set by the runner}" "${GITHUB_OUTPUT:?set by the runner}" "${GITHUB_STEP_SUMMARY:?set by the runner}"

ncu_advisor() { "${NCU_ADVISOR_CMD[@]}" "$@"; }
summary() { printf '%s\n' "$@" >>"$GITHUB_STEP_SUMMARY"; }
# Hand a value to this step's outputs and to every later step's environment.
export_var() {
  printf '%s=%s\n' "$1" "$2" >>"$GITHUB_ENV"
  printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
}

# The newest run directory under $RUNS that is not in the list given (names are <UTC stamp>-<stem>).
newest_new_run() {
  local before=$1 dir newest=""
  for dir in "$RUNS"/*/; do
    [[ -d $dir ]] || continue
    dir=${dir%/}
    grep -qxF -- "$dir" <<<"$before" && continue
    [[ -z $newest || $dir > $newest ]] && newest=$dir
  done
  printf '%s' "$newest"
}

step_profile() {
  : "${KERNEL_FILE:?set KERNEL_FILE to the kernel file to profile}"
  local before status run_dir
  before=$(for d in "$RUNS"/*/; do [[ -d $d ]] && printf '%s\n' "${d%/}"; done)
  read -r -a extra <<<"${PROFILE_ARGS:-}"
  ncu_advisor profile "$KERNEL_FILE" --runs-dir "$RUNS" "${extra[@]}"
  status=$?
  run_dir=$(newest_new_run "$before")
  export_var NCU_PROFILE_STATUS "$status"
  if [[ -z $run_dir ]]; then
    # Exit 2 (bad kernel file or option) or 3 (no GPU, no ncu, counter permission): nothing to report.
    summary "### ncu-advisor: profile wrote no run directory (exit $status)" "" \
      "Exit 2 is bad input (see the step's log), 3 means this runner cannot profile (no GPU, no ncu," \
      "or counter permission: NVreg_RestrictProfilingToAdminUsers=0)."
    echo "::error title=ncu-advisor profile::exit $status and no run directory under $RUNS"
    return "$(( status == 0 ? 2 : status ))"
  fi
  export_var RUN_DIR "$run_dir"
  if (( status != 0 )); then
    echo "::warning title=ncu-advisor profile::exit $status: a variant failed or is incorrect; reporting anyway"
  fi
  return 0
}

step_report() {
  : "${RUN_DIR:?the profile step sets RUN_DIR}"
  local status=0 junit_status
  if (( ${NCU_PROFILE_STATUS:-0} != 0 )); then
    summary "> **profile exited ${NCU_PROFILE_STATUS}**: a variant failed, crashed or is incorrect (table below)." ""
  fi
  ncu_advisor report "$RUN_DIR" --format md --fail-on never >>"$GITHUB_STEP_SUMMARY" || status=$?
  ncu_advisor report "$RUN_DIR" --format sarif --fail-on never -o ncu-advisor.sarif || status=$?
  ncu_advisor report "$RUN_DIR" --format html --fail-on never -o ncu-advisor.html || status=$?
  # The JUnit cases fail at FAIL_ON; its exit 1 (a failing variant) is kept for the gate, not fatal here.
  ncu_advisor report "$RUN_DIR" --format junit --fail-on "$FAIL_ON" -o ncu-advisor-junit.xml
  junit_status=$?
  (( status == 0 )) && status=$junit_status
  export_var NCU_REPORT_STATUS "$status"
  (( status == 0 || status == 1 ))  # 2 (an unreadable run) stops here; 1 waits for the gate
}

step_compare() {
  : "${RUN_DIR:?the profile step sets RUN_DIR}"
  local status=0
  if [[ ! -f $BASELINE/manifest.json ]]; then
    summary "### Comparison with the base branch" "" \
      "No baseline run of the base branch was found in \`$BASELINE\` (the first pull request, or its" \
      "artifact expired): nothing to compare. The next run on the base branch records one."
    echo "::notice title=ncu-advisor compare::no baseline run; the comparison is skipped"
    export_var NCU_COMPARE_STATUS 0
    return 0
  fi
  ncu_advisor compare "$BASELINE" "$RUN_DIR" --threshold "$THRESHOLD" --format md -o compare.md || status=$?
  summary "### Comparison with the base branch" ""
  if [[ -f compare.md ]]; then cat compare.md >>"$GITHUB_STEP_SUMMARY"; fi
  export_var NCU_COMPARE_STATUS "$status"
  return 0
}

# What an ncu-advisor exit code means (README, "Exit codes").
meaning() {
  case $1 in
    1) echo "a variant failed or is incorrect" ;;
    2) echo "bad input: see the step's log" ;;
    3) echo "this runner cannot profile: no GPU, no ncu or no counter permission" ;;
    *) echo "unexpected exit code" ;;
  esac
}

step_gate() {
  local profile=${NCU_PROFILE_STATUS:-} report=${NCU_REPORT_STATUS:-} compare=${NCU_COMPARE_STATUS:-0}
  local reasons=()
  [[ -z $profile ]] && reasons+=("the profile step did not run")
  [[ -n $profile && $profile != 0 ]] && reasons+=("profile exited $profile ($(meaning "$profile"))")
  [[ -z $report ]] && reasons+=("the report step did not run")
  [[ -n $report && $report != 0 ]] && reasons+=("report exited $report (--fail-on $FAIL_ON)")
  [[ $compare == 1 ]] && reasons+=("compare found a regression against the base branch")
  [[ $compare != 0 && $compare != 1 ]] && reasons+=("compare exited $compare (runs not comparable: see its step)")
  if (( ${#reasons[@]} == 0 )); then
    summary "" "**ncu-advisor: passed** (profile, report and comparison clean)."
    return 0
  fi
  local joined
  joined=$(printf '%s; ' "${reasons[@]}")
  summary "" "**ncu-advisor: failed**: ${joined%; }."
  for reason in "${reasons[@]}"; do echo "::error title=ncu-advisor::$reason"; done
  local code=1
  for status in "$profile" "$report" "$compare"; do
    [[ -n $status && $status != 0 && $status != 1 ]] && code=$status
  done
  return "$code"
}

case "${1:-}" in
  profile) step_profile ;;
  report) step_report ;;
  compare) step_compare ;;
  gate) step_gate ;;
  *) echo "usage: $0 profile|report|compare|gate" >&2; exit 2 ;;
esac
