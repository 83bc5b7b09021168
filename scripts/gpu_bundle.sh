#!/usr/bin/env bash
# Packs, into .whl/ (ignored by git), what scripts/gpu_check.sh needs on a GPU machine that reaches no package
# registry: wheels of the tool's requirements that such a machine's PyTorch image lacks, for its Python, and
# Debian's bubblewrap package. Run it here (it needs PyPI and Debian's mirrors), then carry .whl/ along.
# Usage: scripts/gpu_bundle.sh [PYTHON_VERSION]   (default 3.12, the GPU image's Python)
set -euo pipefail
cd "$(dirname "$0")/.."
PYV=${1:-3.12}
rm -rf .whl
mkdir -p .whl
reqs=$(mktemp)
trap 'rm -f "$reqs"' EXIT
grep -vE '^(#|-r|gunicorn)' requirements.txt >"$reqs"
grep -E '^(pytest-django|pytest-timeout)==' requirements-dev.txt >>"$reqs"
python3 -m pip download -q --only-binary=:all: --python-version "$PYV" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d .whl -r "$reqs"
# What a PyTorch image already has stays the image's own (torch and pytest import some of it): a second copy
# first on PYTHONPATH could only clash with it.
for have in pytest pluggy iniconfig packaging pygments attrs certifi charset_normalizer idna requests urllib3 \
  six python_dateutil typing_extensions pyyaml prometheus_client click; do
  rm -f .whl/"$have"-*.whl
done
(cd .whl && apt-get download -q bubblewrap)
du -sh .whl
