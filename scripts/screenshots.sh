#!/usr/bin/env bash
# Regenerate docs/screenshots/*.png: the browser scenario against
# `mailwright demo`, saving a picture of each page it visits.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-tools.sh >/dev/null
cargo build --release --quiet -p mailwright --bin mailwright
node tests/browser/run.mjs target/release/mailwright --screenshots docs/screenshots
