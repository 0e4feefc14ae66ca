#!/usr/bin/env bash
# The main job: set up, build, then check, derive and simulate the examples.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec scripts/main_job.sh
