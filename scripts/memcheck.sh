#!/usr/bin/env bash
# Run fastbp's engine tests under valgrind memcheck, against a debug build.
#
#   bash scripts/memcheck.sh                 # the default engine tests
#   bash scripts/memcheck.sh tests/test_kernels.py -k gemm   # any pytest arguments
#   KEEP=1 bash scripts/memcheck.sh          # keep the temporary directory
#
# What it does:
#  1. copies the working tree (tracked and untracked files that git does not
#     ignore, so no .so, .c or build/) into a fresh `mktemp -d` directory;
#     nothing is built in the tree this script was called from;
#  2. builds and installs fastbp there with FASTBP_DEBUG=1 (setup.py: Cython
#     bounds, wraparound and initialization checks on, -O0 -g) through
#     `pip install --no-build-isolation --no-deps --target`, using the
#     Cython, NumPy and SciPy already installed;
#  3. runs pytest on the copied tests with PYTHONPATH pointing at that debug
#     install (checked: fastbp._engine must load from it), under
#       PYTHONMALLOC=malloc valgrind --tool=memcheck
#     so that every Python object is a malloc block valgrind can see;
#  4. reads valgrind's log (valgrind's own exit status is left to pytest's): an error (invalid read or write, use of
#     uninitialised values in a jump, invalid free, overlap ...) whose stack
#     has a frame in fastbp's extensions (_engine, _blas, csrc's kernels) fails
#     the run; errors wholly inside CPython, NumPy, OpenBLAS or libgomp are
#     counted and listed but do not fail it (scripts/valgrind-python.supp
#     silences the known ones).  Leaks are not checked: CPython keeps much
#     of its memory until exit by design.
#
# Default tests: those that drive the engine (kernels, engine, properties with
# FASTBP_PROPERTY_EXAMPLES=15 examples per property), about 10-20 minutes on
# two cores; valgrind runs the code some 20-50 times slower and on one core.
# Needs valgrind (apt-get install valgrind), a C compiler, and the packages of
# fastbp's `test` extra.  Exit status: 0 clean, 1 errors in fastbp code, 2 the
# build or the tests failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The interpreter itself, not a wrapper (pyenv's shims are shell scripts,
# and valgrind would check the shell and not follow it into Python).
python="$("${PYTHON:-python}" -c 'import sys; print(sys.executable)')"
command -v valgrind >/dev/null || { echo "memcheck: valgrind is not installed" >&2; exit 2; }

tmp="$(mktemp -d -t fastbp-memcheck.XXXXXX)"
if [[ -z "${KEEP:-}" ]]; then
    trap 'rm -rf "$tmp"' EXIT
fi
echo "memcheck: working in $tmp"
start=$(date +%s)

# 1. the copy
mkdir -p "$tmp/src"
(cd "$here" && git ls-files -z --cached --others --exclude-standard) |
    tar -C "$here" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$tmp/src" -xf -

# 2. the debug build
echo "memcheck: building fastbp with FASTBP_DEBUG=1"
if ! FASTBP_DEBUG=1 "$python" -m pip install --quiet --no-build-isolation --no-deps \
        --no-cache-dir --target "$tmp/site" "$tmp/src" > "$tmp/build.log" 2>&1; then
    cat "$tmp/build.log" >&2 || true
    echo "memcheck: the debug build failed" >&2
    exit 2
fi
export PYTHONPATH="$tmp/site${PYTHONPATH:+:$PYTHONPATH}"
loaded="$(cd "$tmp" && "$python" -c 'import fastbp._engine as e; print(e.__file__)')"
case "$loaded" in
    "$tmp/site/"*) echo "memcheck: testing $loaded" ;;
    *) echo "memcheck: fastbp._engine loads from $loaded, not the debug build" >&2; exit 2 ;;
esac

# 3. the tests under valgrind
# Paths are taken in the copy; the tests run from an empty directory so that
# the copied sources (which hold no compiled modules) cannot shadow the build.
[[ $# -gt 0 ]] || set -- tests/test_kernels.py tests/test_engine.py tests/test_properties.py
tests=()
for arg in "$@"; do
    if [[ "$arg" != -* && -e "$tmp/src/${arg%%::*}" ]]; then
        tests+=("$tmp/src/$arg")
    else
        tests+=("$arg")
    fi
done
mkdir -p "$tmp/run"
export FASTBP_PROPERTY_EXAMPLES="${FASTBP_PROPERTY_EXAMPLES:-15}"
export PYTHONMALLOC=malloc
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
echo "memcheck: valgrind python -m pytest $*"
# No --error-exitcode: the exit status stays pytest's, and the log decides.
status=0
(cd "$tmp/run" && valgrind --tool=memcheck --leak-check=no --num-callers=40 \
    --track-origins=yes --suppressions="$tmp/src/scripts/valgrind-python.supp" \
    --log-file="$tmp/valgrind.log" \
    "$python" -m pytest -q -p no:cacheprovider --rootdir "$tmp/src" \
    -c "$tmp/src/pyproject.toml" "${tests[@]}") || status=$?

# 4. the verdict
verdict=0
"$python" - "$tmp/valgrind.log" <<'EOF' || verdict=$?
import re, sys

log = open(sys.argv[1], errors="replace").read().splitlines()
# An error record starts after a blank "==pid== " line with a description,
# then "   at" / "   by" frames, and ends at the next blank line.
records, current = [], []
for line in log:
    body = re.sub(r"^==\d+== ?", "", line)
    if body.strip() == "":
        if current:
            records.append(current)
        current = []
    else:
        current.append(body)
if current:
    records.append(current)
errors = [r for r in records if any(re.match(r"\s+(at|by) 0x", l) for l in r)]
ours = re.compile(r"_engine|_blas|fastbp_|/fastbp/|csrc/")
in_fastbp = [r for r in errors if any(ours.search(l) for l in r)]
summary = [l for l in log if "ERROR SUMMARY" in l]
print("memcheck:", summary[-1].split("== ", 1)[-1] if summary else "no summary in the log")
print(f"memcheck: {len(errors)} error records, {len(in_fastbp)} with a frame in fastbp")
for r in in_fastbp[:20]:
    print("\n".join("    " + l for l in r[:25]))
    print()
others = [r for r in errors if r not in in_fastbp]
for r in others[:5]:
    print("  outside fastbp (not failing): " + r[0].strip())
sys.exit(1 if in_fastbp else 0)
EOF
echo "memcheck: pytest exit status $status, $(( $(date +%s) - start )) s in all"
if [[ $verdict -ne 0 ]]; then
    exit 1
fi
if [[ $status -ne 0 ]]; then
    tail -30 "$tmp/valgrind.log" >&2 || true
    echo "memcheck: the tests failed under valgrind" >&2
    exit 2
fi
echo "memcheck: clean: no memory errors in fastbp code"
