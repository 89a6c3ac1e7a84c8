#!/usr/bin/env bash
# The project's test command (also what .ci/run runs):
#
#   bash scripts/test.sh [lint] [unit] [host] [browser] [-- PYTEST_ARGS...]  (default: every tier)
#
# Installs what it needs itself: a venv at .venv (or $PM_VENV) with the pinned packages of
# scripts/requirements-test.txt (no torch: the unit tier must not need it).
# Tiers:
#   lint     ruff check . (rules in pyproject.toml [tool.ruff]); pytest arguments do not apply.
#   unit     tests/unit, always.
#   host     tests/host against a real headless ComfyUI (and Ray from scripts/requirements-ray.txt,
#            installed into the venv for run_session.py --ray). The host is COMFYUI_PATH (ComfyUI
#            source dir) + COMFYUI_PYTHON (its python) from the environment, else the one
#            scripts/setup_test_host.sh lays out ($PM_HOST_DIR, default
#            ~/.cache/prompt-media/host: ComfyUI/ + venv/), else a host preinstalled at
#            $DEFAULT_COMFYUI_PATH below (PM_NO_HOST_AUTODETECT=1 turns both look-ups off).
#   browser  tests/browser with the host, Debian's chromium (apt-get installed when missing) and
#            playwright from scripts/requirements-browser.txt. PM_SKIP_BROWSER=1 skips it.
# With a host (configured or found), the host and browser tiers must run: a tier in which every
# test skipped, or that collected nothing, fails, and so does a half-set host (only one of the
# two variables). With no host at all both tiers are skipped and the summary says so loudly.
# Prints each tier (ran / skipped and why, counts, seconds, every skipped test with its reason),
# then one line "Total: N passed, N failed, N skipped". Exits non-zero when a tier fails. Each
# tier is limited to PM_TIER_TIMEOUT seconds (default 1800).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="${PM_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
RESULTS="$(mktemp -d "${TMPDIR:-/tmp}/pm-test-results.XXXXXX")"
trap 'rm -rf "$RESULTS"' EXIT
TIER_TIMEOUT="${PM_TIER_TIMEOUT:-1800}"
HOST_DIR="${PM_HOST_DIR:-$HOME/.cache/prompt-media/host}"     # scripts/setup_test_host.sh's
DEFAULT_COMFYUI_PATH=/tmp/comfy                     # the host the project's CI machine comes with
DEFAULT_COMFYUI_PYTHON=/tmp/comfyenv/bin/python

say() { echo "[test.sh] $*"; }
die() { say "ERROR: $*" >&2; exit 2; }

TIERS=()
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    lint|unit|host|browser) TIERS+=("$1"); shift ;;
    --) shift; PYTEST_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
    *) die "unknown argument '$1' (tiers: lint unit host browser; pytest arguments after --)" ;;
  esac
done
[ ${#TIERS[@]} -eq 0 ] && TIERS=(lint unit host browser)
wants() { local t; for t in "${TIERS[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

# ------------------------------------------------------------------ environment
# pip install -r FILE into the venv unless the stamp says this exact file is installed already
pip_install() {
  local req="$1" stamp="$VENV/.installed-$(basename "$1").sha256" want
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  say "installing $req into $VENV"
  "$PY" -m pip install -q --disable-pip-version-check -r "$req" || return 1
  echo "$want" > "$stamp"
}

setup_venv() {
  if [ ! -x "$PY" ]; then
    local base="${PYTHON:-python3}"
    command -v "$base" >/dev/null || die "$base not found (Python 3.10+ is needed)"
    "$base" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$base is older than 3.10"
    say "creating $VENV with $("$base" --version 2>&1)"
    if ! "$base" -m venv "$VENV" 2>/dev/null; then
      # Debian splits ensurepip into python3-venv
      rm -rf "$VENV"
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "python3 -m venv failed; installing python3-venv"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      fi
      "$base" -m venv "$VENV" || die "cannot create a venv at $VENV"
    fi
  fi
  pip_install scripts/requirements-test.txt || die "pip install of scripts/requirements-test.txt failed"
}

# COMFYUI_PATH/COMFYUI_PYTHON for the host tiers. HOST_FOUND=1: found; 0: none (HOST_REASON
# says why); HOST_ERROR: a host is configured but unusable (the host tiers then fail)
detect_host() {
  HOST_FOUND=0 HOST_ERROR=""
  if [ -n "${COMFYUI_PATH:-}" ] || [ -n "${COMFYUI_PYTHON:-}" ]; then
    if [ -z "${COMFYUI_PATH:-}" ] || [ -z "${COMFYUI_PYTHON:-}" ]; then
      HOST_ERROR="only one of COMFYUI_PATH / COMFYUI_PYTHON is set; set both (or neither)"
    else
      HOST_FOUND=1; HOST_FROM="environment"
    fi
  elif [ "${PM_NO_HOST_AUTODETECT:-0}" = 1 ]; then
    HOST_REASON="COMFYUI_PATH/COMFYUI_PYTHON not set and PM_NO_HOST_AUTODETECT=1"
  elif [ -f "$HOST_DIR/ComfyUI/main.py" ] && [ -x "$HOST_DIR/venv/bin/python" ]; then
    export COMFYUI_PATH="$HOST_DIR/ComfyUI" COMFYUI_PYTHON="$HOST_DIR/venv/bin/python"
    HOST_FOUND=1; HOST_FROM="scripts/setup_test_host.sh's $HOST_DIR"
  elif [ -f "$DEFAULT_COMFYUI_PATH/main.py" ] && [ -x "$DEFAULT_COMFYUI_PYTHON" ]; then
    export COMFYUI_PATH="$DEFAULT_COMFYUI_PATH" COMFYUI_PYTHON="$DEFAULT_COMFYUI_PYTHON"
    HOST_FOUND=1; HOST_FROM="preinstalled"
  else
    HOST_REASON="COMFYUI_PATH/COMFYUI_PYTHON not set and none in $HOST_DIR"
  fi
  if [ "$HOST_FOUND" = 0 ]; then unset COMFYUI_PATH COMFYUI_PYTHON; fi
}

setup_browser() {
  local chromium
  chromium="$(command -v chromium || true)"
  if [ -z "$chromium" ]; then
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || { BROWSER_REASON="chromium missing and apt-get unavailable (not root?)"; return 1; }
    say "installing Debian chromium (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || { BROWSER_REASON="apt-get install chromium failed"; return 1; }
    chromium="$(command -v chromium)"
  fi
  export PM_CHROMIUM="$chromium" CHROMIUM="${CHROMIUM:-$chromium}"   # tests/browser reads CHROMIUM
  pip_install scripts/requirements-browser.txt || { BROWSER_REASON="pip install of playwright failed"; return 1; }
}

# ------------------------------------------------------------------ tiers
SUMMARY=()
FAILED=0
TOTAL_PASSED=0 TOTAL_FAILED=0 TOTAL_SKIPPED=0

# "passed failed skipped" from a junit xml; writes "  skipped: test -- reason" lines to $2
junit_counts() {
  "$PY" - "$1" "$2" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print("0 0 0"); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
with open(sys.argv[2], "w") as out:
    for case in root.iter("testcase"):
        skip = case.find("skipped")
        if skip is not None:
            reason = (skip.get("message") or "").removeprefix("Skipped: ")
            out.write(f"           skipped: {case.get('classname')}::{case.get('name')} -- {reason}\n")
print(t - f - k, f, k)
EOF
}

fail_tier() {  # name reason
  SUMMARY+=("$(printf '%-8s %-34s %s' "$1" "FAILED" "$2")"); FAILED=1; TOTAL_FAILED=$((TOTAL_FAILED + 1))
}

run_tier() {  # name path must_run (1: every test skipped or nothing collected is a failure)
  local name="$1" path="$2" must_run="$3" t0 rc secs p f s status skipped="$RESULTS/$1.skipped"
  say "---- tier $name: $path ----"
  t0=$(date +%s)
  timeout --kill-after=30 "$TIER_TIMEOUT" "$PY" -m pytest "$path" -q -p no:cacheprovider \
    --junitxml="$RESULTS/$name.xml" ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"}
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  read -r p f s <<<"$(junit_counts "$RESULTS/$name.xml" "$skipped")"
  case "$rc" in
    0) if [ "$p" = 0 ] && [ "$s" -gt 0 ]; then
         if [ "$must_run" = 1 ]; then status="FAILED (every test skipped)"; FAILED=1; f=$((f + 1))
         else status="skipped (every test)"; fi
       else status="passed"; fi ;;
    5) if [ ${#PYTEST_ARGS[@]} -gt 0 ]; then status="passed (nothing selected)"
       else status="FAILED (no tests collected)"; FAILED=1; f=$((f + 1)); fi ;;
    124|137) status="FAILED (timed out after ${TIER_TIMEOUT}s)"; FAILED=1; f=$((f + 1)) ;;
    *) status="FAILED (pytest exit $rc)"; FAILED=1; [ "$f" = 0 ] && f=1 ;;
  esac
  TOTAL_PASSED=$((TOTAL_PASSED + p)); TOTAL_FAILED=$((TOTAL_FAILED + f)); TOTAL_SKIPPED=$((TOTAL_SKIPPED + s))
  SUMMARY+=("$(printf '%-8s %-34s %s passed, %s failed, %s skipped in %ss' "$name" "$status" "$p" "$f" "$s" "$secs")")
  if [ "$s" -gt 0 ]; then     # every skipped test by name: a skip is coverage that did not run
    while IFS= read -r line; do SUMMARY+=("$line"); done < "$skipped"
  fi
}

run_lint() {
  local t0 status
  say "---- tier lint: ruff check . ----"
  t0=$(date +%s)
  if "$VENV/bin/ruff" check . ; then status="passed"
  else status="FAILED (ruff: fix or 'ruff check --fix .')"; FAILED=1; TOTAL_FAILED=$((TOTAL_FAILED + 1)); fi
  SUMMARY+=("$(printf '%-8s %-34s ruff %s in %ss' lint "$status" "$("$VENV/bin/ruff" --version | cut -d' ' -f2)" "$(( $(date +%s) - t0 ))")")
}

skip_tier() { SUMMARY+=("$(printf '%-8s %-34s %s' "$1" "skipped" "$2")"); }

T0=$(date +%s)
setup_venv
detect_host
if [ "$HOST_FOUND" = 1 ]; then
  say "host: ComfyUI $COMFYUI_PATH with $COMFYUI_PYTHON (from $HOST_FROM)"
elif [ -n "$HOST_ERROR" ]; then
  say "host: ERROR: $HOST_ERROR"
else
  say "host: none ($HOST_REASON)"
fi

wants lint && run_lint
wants unit && run_tier unit tests/unit 0

NO_HOST_TIERS=()
if wants host; then
  if [ -n "$HOST_ERROR" ]; then
    fail_tier host "$HOST_ERROR"
  elif [ "$HOST_FOUND" = 1 ]; then
    pip_install scripts/requirements-ray.txt || say "WARNING: pip install of scripts/requirements-ray.txt failed: the Ray test skips"
    run_tier host tests/host 1
  else
    skip_tier host "NO HOST: $HOST_REASON"; NO_HOST_TIERS+=(host)
  fi
fi

if wants browser; then
  if [ -n "$HOST_ERROR" ]; then
    fail_tier browser "$HOST_ERROR"
  elif [ "$HOST_FOUND" = 0 ]; then
    skip_tier browser "NO HOST: $HOST_REASON"; NO_HOST_TIERS+=(browser)
  elif [ "${PM_SKIP_BROWSER:-0}" = 1 ]; then
    skip_tier browser "PM_SKIP_BROWSER=1 (asked for)"
  elif ! setup_browser; then
    fail_tier browser "setup: $BROWSER_REASON"
  else
    run_tier browser tests/browser 1
  fi
fi

echo
say "==== tiers ($(( $(date +%s) - T0 ))s in all) ===="
for line in "${SUMMARY[@]}"; do echo "  $line"; done
if [ ${#NO_HOST_TIERS[@]} -gt 0 ]; then
  echo
  if [ ${#NO_HOST_TIERS[@]} = 2 ]; then what="host and browser tiers"; else what="${NO_HOST_TIERS[0]} tier"; fi
  echo "  !!!!! NO COMFYUI HOST: the $what did NOT run, so nodes/ and js/ are untested here."
  echo "  !!!!! Lay one out with: bash scripts/setup_test_host.sh   (or set COMFYUI_PATH and COMFYUI_PYTHON)"
fi
echo "Total: $TOTAL_PASSED passed, $TOTAL_FAILED failed, $TOTAL_SKIPPED skipped"
exit "$FAILED"
