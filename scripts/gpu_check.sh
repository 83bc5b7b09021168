#!/usr/bin/env bash
# The GPU check of the grading path, in one run on a GPU machine (docs/grading.md, "Checking the GPU path"):
# the sandbox on CUDA, the hidden checks and the hostile suite on the GPU, then grading_bench's figures with a pool
# of 1 and with a pool of 16 graded 8 at a time. Uses SQLite, so it needs no database server or broker.
# Where the machine lacks the tool's requirements or bubblewrap, run scripts/gpu_bundle.sh first and carry .whl/.
# Logs and figures go to $OUT (default: a new temporary folder); summary.json holds the benchmark figures.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
PY=${PYTHON:-python3}
# A CUDA sandbox needs more host memory than a CPU one (the tests use 4096 MB on a GPU machine too); the machine
# step prints what a warm CUDA torch process really holds, to size GRADING_MEMORY_MB.
export PYTHONUNBUFFERED=1 GRADING_DEVICE=${GRADING_DEVICE:-cuda} GRADING_MEMORY_MB=${GRADING_MEMORY_MB:-4096}
export DATABASE_URL=${DATABASE_URL:-"sqlite:////tmp/gpu-check.sqlite3?timeout=60&transaction_mode=IMMEDIATE"}
echo "logs in $OUT"

if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu-check-site \
    .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/gpu-check-site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -z "${GRADING_BWRAP_PATH:-}" ] && ! command -v bwrap >/dev/null; then
  deb=$(compgen -G ".whl/bubblewrap_*.deb" | head -1)
  [ -n "$deb" ] || { echo "bubblewrap is missing: install it, or run scripts/gpu_bundle.sh here and carry .whl/"; exit 1; }
  dpkg -x "$deb" /tmp/gpu-check-bwrap || exit 1
  export GRADING_BWRAP_PATH=/tmp/gpu-check-bwrap/usr/bin/bwrap
fi

# step NAME SECONDS COMMAND...: run with a time limit, keep its output in $OUT/NAME.log
step() {
  local name=$1 limit=$2 t0=$SECONDS
  shift 2
  echo "=== $name: $*"
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $((SECONDS - t0)) s"
  return "$rc"
}

describe_machine() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  echo "cpus: $(nproc); cgroup filesystem: $(stat -fc %T /sys/fs/cgroup)"
  "${GRADING_BWRAP_PATH:-bwrap}" --version
  $PY - <<'PYTHON'
import os, resource, runpy, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
runpy.run_path("grading/runner.py")["_warm"](torch, os.environ["GRADING_DEVICE"])
print("a warm torch process holds", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MB (max RSS)")
PYTHON
}
export -f describe_machine
export PY

step machine 120 bash -c describe_machine
step migrate 120 $PY manage.py migrate --noinput -v 0 || exit 1
step bench-pool1 240 $PY manage.py grading_bench --json --runs 10 --burst 4
step pytest 300 $PY -m pytest -p no:cacheprovider -q -k "not grading_bench" --junitxml="$OUT/pytest.xml" \
  tests/grading/test_sandbox_command.py tests/grading/test_checks.py tests/grading/test_commands.py \
  tests/grading/test_pool.py tests/grading/test_hostile.py
GRADING_POOL_SIZE=16 step bench-pool16 240 $PY manage.py grading_bench --json --runs 10 --burst 32 --concurrency 8

for name in bench-pool1 bench-pool16; do
  [ -s "$OUT/$name.log" ] && grep '^{"challenge"' "$OUT/$name.log" | tail -n 1 | sed "s/^{/{\"run\":\"$name\",/"
done >"$OUT/summary.json"
cat "$OUT/summary.json"
