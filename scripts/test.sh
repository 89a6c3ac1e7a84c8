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
#   host     tests/host against a real headless ComfyUI. The host is COMFYUI_PATH (ComfyUI
#            source dir) + COMFYUI_PYTHON (its python) from the environment, else the
#            harness defaults /tmp/comfy + /tmp/comfyenv/bin/python when both exist
#            (PM_NO_HOST_AUTODETECT=1 turns that look-up off). Without a host the tier still
#            runs so every test reports its skip reason.
#   browser  tests/browser (when it exists) with a host, Debian's chromium (apt-get installed
#            when missing) and playwright from scripts/requirements-browser.txt.
#            PM_SKIP_BROWSER=1 skips it.
# Prints which tiers ran or were skipped and why, then one line "Total: N passed, N failed,
# N skipped". Exits non-zero when a tier fails; pytest's exit 5 (nothing collected) is not a
# failure. Each tier is limited to PM_TIER_TIMEOUT seconds (default 1800).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="${PM_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
RESULTS="$(mktemp -d "${TMPDIR:-/tmp}/pm-test-results.XXXXXX")"
trap 'rm -rf "$RESULTS"' EXIT
TIER_TIMEOUT="${PM_TIER_TIMEOUT:-1800}"
DEFAULT_COMFYUI_PATH=/tmp/comfy
DEFAULT_COMFYUI_PYTHON=/tmp/comfyenv/bin/python

say() { echo "[test.sh] $*"; }
die() { say "ERROR: $*" >&2; exit 2; }

TIERS=()
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    lint|unit|host|browser) TIERS+=("$1"); shift ;;
    --) shift; PYTEST_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
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

# COMFYUI_PATH/COMFYUI_PYTHON for the host tiers; HOST_REASON says why there is none
detect_host() {
  HOST_FOUND=0
  if [ -n "${COMFYUI_PATH:-}" ] || [ -n "${COMFYUI_PYTHON:-}" ]; then
    if [ -z "${COMFYUI_PATH:-}" ] || [ -z "${COMFYUI_PYTHON:-}" ]; then
      HOST_REASON="only one of COMFYUI_PATH / COMFYUI_PYTHON is set; set both"
    else
      HOST_FOUND=1; HOST_FROM="environment"
    fi
  elif [ "${PM_NO_HOST_AUTODETECT:-0}" = 1 ]; then
    HOST_REASON="COMFYUI_PATH/COMFYUI_PYTHON not set and PM_NO_HOST_AUTODETECT=1"
  elif [ -f "$DEFAULT_COMFYUI_PATH/main.py" ] && [ -x "$DEFAULT_COMFYUI_PYTHON" ]; then
    export COMFYUI_PATH="$DEFAULT_COMFYUI_PATH" COMFYUI_PYTHON="$DEFAULT_COMFYUI_PYTHON"
    HOST_FOUND=1; HOST_FROM="harness defaults"
  else
    HOST_REASON="COMFYUI_PATH/COMFYUI_PYTHON not set and no $DEFAULT_COMFYUI_PATH + $DEFAULT_COMFYUI_PYTHON"
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

# counts "passed failed skipped" from a junit xml
junit_counts() {
  "$PY" - "$1" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print("0 0 0"); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - k, f, k)
EOF
}

run_tier() {  # name path
  local name="$1" path="$2" t0 rc secs counts p f s status
  say "---- tier $name: $path ----"
  t0=$(date +%s)
  timeout --kill-after=30 "$TIER_TIMEOUT" "$PY" -m pytest "$path" -q -p no:cacheprovider \
    --junitxml="$RESULTS/$name.xml" ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"}
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  read -r p f s <<<"$(junit_counts "$RESULTS/$name.xml")"
  case "$rc" in
    0) if [ "$p" = 0 ] && [ "$f" = 0 ] && [ "$s" -gt 0 ]; then status="skipped (every test)"; else status="passed"; fi ;;
    5) status="passed (no tests collected)" ;;
    124|137) status="FAILED (timed out after ${TIER_TIMEOUT}s)"; FAILED=1; f=$((f + 1)) ;;
    *) status="FAILED (pytest exit $rc)"; FAILED=1; [ "$f" = 0 ] && f=1 ;;
  esac
  TOTAL_PASSED=$((TOTAL_PASSED + p)); TOTAL_FAILED=$((TOTAL_FAILED + f)); TOTAL_SKIPPED=$((TOTAL_SKIPPED + s))
  SUMMARY+=("$(printf '%-8s %-34s %s passed, %s failed, %s skipped in %ss' "$name" "$status" "$p" "$f" "$s" "$secs")")
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
else
  say "host: none ($HOST_REASON)"
fi

wants lint && run_lint
wants unit && run_tier unit tests/unit

if wants host; then
  # without a host the tier still runs: each test then shows its skip reason
  run_tier host tests/host
  [ "$HOST_FOUND" = 1 ] || SUMMARY[-1]="${SUMMARY[-1]}  (no host: $HOST_REASON)"
fi

if wants browser; then
  if ! compgen -G "tests/browser/test_*.py" >/dev/null; then
    skip_tier browser "no tests/browser/test_*.py yet"
  elif [ "${PM_SKIP_BROWSER:-0}" = 1 ]; then
    skip_tier browser "PM_SKIP_BROWSER=1"
  elif [ "$HOST_FOUND" = 0 ]; then
    skip_tier browser "no host: $HOST_REASON"
  elif ! setup_browser; then
    SUMMARY+=("$(printf '%-8s %-34s %s' browser "FAILED (setup)" "$BROWSER_REASON")"); FAILED=1
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
  else
    run_tier browser tests/browser
  fi
fi

echo
say "==== tiers ($(( $(date +%s) - T0 ))s in all) ===="
for line in "${SUMMARY[@]}"; do echo "  $line"; done
echo "Total: $TOTAL_PASSED passed, $TOTAL_FAILED failed, $TOTAL_SKIPPED skipped"
exit "$FAILED"
