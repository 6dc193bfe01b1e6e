#!/usr/bin/env bash
# What the test suite needs besides Rust: a real SMTP server (Python's
# aiosmtpd) for the system-email tests; Debian's Chromium and playwright-core
# (pinned in tests/browser/package-lock.json) for the browser tests.
# Idempotent; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'aiosmtpd==1.4.6'
fi
python3 -c 'import aiosmtpd; print("aiosmtpd", aiosmtpd.__version__)'

if [ ! -x /usr/bin/chromium ]; then
    as_root=()
    [ "$(id -u)" -ne 0 ] && as_root=(sudo)
    "${as_root[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q chromium chromium-driver >/dev/null
fi
/usr/bin/chromium --version
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
