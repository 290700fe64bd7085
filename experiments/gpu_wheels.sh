#!/usr/bin/env bash
# The wheels the GPU machine's image lacks or holds in other versions (docs/gpus.md#the-gpu-check),
# downloaded for its Python 3.12 into .whl/ (ignored through .git/info/exclude), with the
# versions this project's .venv runs. torch stays the image's (2.11; the pin is 2.13: far too
# large to carry). The total must stay far under the 64 MiB a device call may carry.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(
    transformers==5.23.0 trl==1.16.0 peft==0.22.0 accelerate==1.16.0  # the project's pins
    datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19                 # TRL's datasets + its needs
    math-verify==0.9.0 latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2
    regex==2026.12.2                                                  # transformers: >=2025.10.22
)
LIMIT_MIB=32
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
size_kib=$(du -sk .whl | cut -f1)
ls -1 .whl
echo "wheels: $(ls .whl | wc -l) files, $((size_kib / 1024)) MiB (limit ${LIMIT_MIB} MiB)"
if (( size_kib > LIMIT_MIB * 1024 )); then
    echo "error: .whl/ holds ${size_kib} KiB, over ${LIMIT_MIB} MiB" >&2
    exit 2
fi
