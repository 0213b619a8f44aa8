#!/usr/bin/env bash
# Run every benchmark in bench/ (CPU figures; GPU rows need a CUDA machine). Each prints its
# figures as one JSON object on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" EVALHUB_RANDOM_WEIGHTS=1 HF_HUB_OFFLINE=1
bash scripts/ensure_services.sh
for script in leaderboard generators metrics votes export; do
  echo "== bench/$script.py"
  python "bench/$script.py"
done
