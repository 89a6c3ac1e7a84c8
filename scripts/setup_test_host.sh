#!/usr/bin/env bash
# Lays out the real ComfyUI the host and browser tiers run against, in one command:
#
#   bash scripts/setup_test_host.sh [--from SOURCE] [--ref REF] [--comfyui DIR] [--venv DIR]
#                                   [--python PYTHON] [--torch "SPEC"]
#
#   --from SOURCE   where ComfyUI's source comes from when DIR has none yet: a git URL or a local
#                   git dir (a clone or a bare mirror). Default https://github.com/Comfy-Org/ComfyUI.git
#   --ref REF       the ComfyUI version to check out (default v0.3.64, the one the tiers are run
#                   with; when SOURCE has no such ref, its HEAD is used and the version printed)
#   --comfyui DIR   the ComfyUI checkout: used as it is when it has main.py, else cloned there.
#                   Default $PM_HOST_DIR/ComfyUI
#   --venv DIR      ComfyUI's venv: reused when it exists, else created with PYTHON (3.10+,
#                   default python3). Default $PM_HOST_DIR/venv
#   --torch SPEC    the torch packages (default "torch==2.14.1 torchvision==0.29.1": ComfyUI
#                   imports torchvision at start-up, and these two import together on the CPU)
#
# $PM_HOST_DIR defaults to ~/.cache/prompt-media/host; scripts/test.sh looks there (after
# COMFYUI_PATH / COMFYUI_PYTHON). A --comfyui or --venv elsewhere is linked into it, so the test
# command finds it too. Then: ComfyUI's requirements.txt (its torch lines replaced by SPEC, plus
# `requests`, which ComfyUI imports without listing), and the project's tiny test models
# (tests/fixtures/make_test_models.py --verify). Safe to run again: every step that is already
# done is skipped (stamps in the venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

HOST_DIR="${PM_HOST_DIR:-$HOME/.cache/prompt-media/host}"
SOURCE="https://github.com/Comfy-Org/ComfyUI.git"
REF="v0.3.64"
COMFY="" VENV="" BASE_PY="${PYTHON:-python3}"
TORCH_SPEC="torch==2.14.1 torchvision==0.29.1"

say() { echo "[setup] $*"; }
die() { echo "[setup] ERROR: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --from) SOURCE="${2:?--from needs a git URL or dir}"; shift 2 ;;
    --ref) REF="${2:?--ref needs a ref}"; shift 2 ;;
    --comfyui) COMFY="${2:?--comfyui needs a dir}"; shift 2 ;;
    --venv) VENV="${2:?--venv needs a dir}"; shift 2 ;;
    --python) BASE_PY="${2:?--python needs an interpreter}"; shift 2 ;;
    --torch) TORCH_SPEC="${2:?--torch needs a pip spec}"; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
t0=$(date +%s)
mkdir -p "$HOST_DIR"

# the default location of DIR is a link to it when DIR lives elsewhere (test.sh looks there)
link_default() {  # dir default-path
  local dir default; dir="$(cd "$1" && pwd -P)"; default="$2"
  [ "$dir" = "$(cd "$default" 2>/dev/null && pwd -P || true)" ] && return 0
  if [ -e "$default" ] && [ ! -L "$default" ]; then
    say "note: $default exists, so scripts/test.sh will use that one; to use $dir set COMFYUI_PATH/COMFYUI_PYTHON"
    return 0
  fi
  ln -sfn "$dir" "$default"
  say "linked $default -> $dir"
}

# ------------------------------------------------------------------ 1. ComfyUI's source
COMFY="${COMFY:-$HOST_DIR/ComfyUI}"
if [ -f "$COMFY/main.py" ]; then
  say "ComfyUI: $COMFY (existing checkout, used as it is)"
else
  [ -e "$COMFY" ] && [ -n "$(ls -A "$COMFY" 2>/dev/null)" ] && die "$COMFY is not empty and has no main.py"
  command -v git >/dev/null || die "git is needed to fetch ComfyUI"
  say "cloning ComfyUI from $SOURCE into $COMFY"
  git clone --quiet --no-checkout "$SOURCE" "$COMFY" || die "git clone $SOURCE failed"
  if git -C "$COMFY" rev-parse --verify --quiet "$REF^{commit}" >/dev/null; then
    target="$REF"
  else
    target="HEAD"; say "$SOURCE has no $REF: using its HEAD"
  fi
  if ! git -C "$COMFY" checkout --quiet "$target" 2>/dev/null; then
    git -C "$COMFY" update-ref --no-deref HEAD "$(git -C "$COMFY" rev-parse "$target^{commit}")"
    git -C "$COMFY" checkout HEAD -- . 2>/dev/null || true
  fi
  [ -f "$COMFY/main.py" ] || die "checkout of $target from $SOURCE failed"
  # a mirror may lack a large blob (e.g. a tokenizer file the SD1.5 test models never read)
  missing="$(git -C "$COMFY" ls-files --deleted | tr '\n' ' ')"
  [ -z "$missing" ] || say "warning: $SOURCE lacks these files, left out: $missing"
fi
[ "$COMFY" = "$HOST_DIR/ComfyUI" ] || link_default "$COMFY" "$HOST_DIR/ComfyUI"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$COMFY/comfyui_version.py" 2>/dev/null || true)"

# ------------------------------------------------------------------ 2. venv
VENV="${VENV:-$HOST_DIR/venv}"
VPY="$VENV/bin/python"
if [ -x "$VPY" ]; then
  say "venv: $VENV (existing)"
else
  command -v "$BASE_PY" >/dev/null || die "$BASE_PY not found (Python 3.10+ is needed)"
  "$BASE_PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$BASE_PY is older than 3.10"
  say "creating $VENV with $("$BASE_PY" --version 2>&1)"
  "$BASE_PY" -m venv "$VENV" || die "cannot create a venv at $VENV (Debian: apt-get install python3-venv)"
fi
[ "$VENV" = "$HOST_DIR/venv" ] || link_default "$VENV" "$HOST_DIR/venv"

pip_quiet() {  # pip without the per-index "Location ... is ignored" noise some pip configs print
  local log rc=0; log="$(mktemp)"
  "$VPY" -m pip "$@" --disable-pip-version-check >"$log" 2>&1 || rc=$?
  grep -v "^WARNING: Location 'file://" "$log" || true
  rm -f "$log"; return $rc
}

# ------------------------------------------------------------------ 3. torch, then ComfyUI's requirements
CONSTRAINTS="$VENV/.prompt-media-torch.txt"
printf '%s\n' $TORCH_SPEC > "$CONSTRAINTS.new"
if ! cmp -s "$CONSTRAINTS.new" "$CONSTRAINTS"; then
  say "pip install $TORCH_SPEC (large: a few minutes the first time)"
  # shellcheck disable=SC2086
  pip_quiet install -q $TORCH_SPEC || die "pip install $TORCH_SPEC failed"
  mv "$CONSTRAINTS.new" "$CONSTRAINTS"
else
  rm -f "$CONSTRAINTS.new"
fi

REQS="$VENV/.prompt-media-requirements.txt"
{ grep -v -E '^\s*(torch|torchvision|torchaudio)\s*([<>=!~;#].*)?$' "$COMFY/requirements.txt"
  echo "requests"; } > "$REQS.new"
cat "$CONSTRAINTS" "$REQS.new" > "$REQS.new.stamp"
if ! cmp -s "$REQS.new.stamp" "$REQS.stamp" 2>/dev/null; then
  say "pip install -r $COMFY/requirements.txt (torch as above)"
  pip_quiet install -q -r "$REQS.new" -c "$CONSTRAINTS" || die "pip install of ComfyUI's requirements failed"
  mv "$REQS.new" "$REQS"; mv "$REQS.new.stamp" "$REQS.stamp"
else
  rm -f "$REQS.new" "$REQS.new.stamp"
fi
"$VPY" -c 'import torch, torchvision, aiohttp, yaml, safetensors' \
  || die "$VPY cannot import torch/torchvision/aiohttp/yaml/safetensors after the install"

# ------------------------------------------------------------------ 4. the tiny test models
say "test models (tests/fixtures/make_test_models.py --verify)"
MODELS="$(COMFYUI_PATH="$COMFY" "$VPY" "$ROOT/tests/fixtures/make_test_models.py" --verify | tail -1)" \
  || die "making the test models failed: run COMFYUI_PATH=$COMFY $VPY tests/fixtures/make_test_models.py --verify"

say "done in $(( $(date +%s) - t0 ))s: ComfyUI ${VERSION:-?} in $COMFY"
say "  python $VPY (torch $("$VPY" -c 'import torch; print(torch.__version__)'))"
say "  test models $MODELS"
say "bash scripts/test.sh now runs the host and browser tiers against it"
