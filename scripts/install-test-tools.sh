#!/usr/bin/env bash
# What the test suite needs besides Rust: a real SMTP server (Python's
# aiosmtpd) for the system-email tests. Idempotent; .ci/run calls it.
set -euo pipefail
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'aiosmtpd==1.4.6'
fi
python3 -c 'import aiosmtpd; print("aiosmtpd", aiosmtpd.__version__)'
