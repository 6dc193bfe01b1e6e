#!/usr/bin/env bash
# What the test suite needs besides Rust: a real SMTP server (Python's
# aiosmtpd) for the system-email tests; openapi-spec-validator,
# openapi-python-client and schemathesis for the OpenAPI document's checks;
# Debian's Chromium and playwright-core
# (pinned in tests/browser/package-lock.json) for the browser tests; Debian's
# prometheus package for promtool, which checks deploy/alerts.yaml; Debian's
# Dovecot (IMAP and LMTP) for the mailbox provider's real-server tests
# (tests/mailservers/mailservers.py starts its own instances).
# Idempotent; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'aiosmtpd==1.4.6'
fi
python3 -c 'import aiosmtpd; print("aiosmtpd", aiosmtpd.__version__)'

# The OpenAPI document's clients: the reference validator and a client
# generator (tests/openapi_clients.rs), and schemathesis, which fuzzes the API
# from the document (scripts/schemathesis.sh). Pinned: schemathesis 3.x and
# 4.x take different flags. Google's own Python client (with its bundled
# gmail.v1 discovery document) drives the sandbox in
# crates/sandbox/tests/python_client.rs. The Standard Webhooks reference
# library verifies Mailwright's webhook signatures (tests/webhook_receiver.py).
python_tools=('openapi-spec-validator==0.9.0' 'openapi-python-client==0.29.1' 'schemathesis==4.32.5'
    'google-api-python-client==2.202.0' 'standardwebhooks==1.1.0')
if ! python3 - "${python_tools[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
for pin in sys.argv[1:]:
    name, wanted = pin.split("==")
    try:
        if version(name) != wanted:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${python_tools[@]}"
fi
python3 -m openapi_spec_validator --version
python3 -m openapi_python_client --version
python3 -m schemathesis.cli --version

if [ ! -x /usr/bin/chromium ] || ! command -v promtool >/dev/null 2>&1; then
    as_root=()
    [ "$(id -u)" -ne 0 ] && as_root=(sudo)
    "${as_root[@]}" apt-get update -q
    # A policy-rc.d that refuses: the package's Prometheus server is not
    # started (only promtool is wanted).
    own_policy=false
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${as_root[@]}" chmod +x /usr/sbin/policy-rc.d
        own_policy=true
    fi
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends \
        chromium chromium-driver prometheus >/dev/null
    if [ "$own_policy" = true ]; then "${as_root[@]}" rm -f /usr/sbin/policy-rc.d; fi
fi
/usr/bin/chromium --version
promtool --version 2>&1 | head -n 1

# Dovecot for tests/mailservers/mailservers.py, which runs private instances
# (their own config, ports and directories); the package's system-wide
# Dovecot must not run: a policy-rc.d that refuses keeps the package from
# starting it, and one that got started anyway (another policy-rc.d that
# allowed it) is stopped.
if [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/lib/dovecot/imap ] || [ ! -x /usr/lib/dovecot/lmtp ]; then
    as_root=()
    [ "$(id -u)" -ne 0 ] && as_root=(sudo)
    "${as_root[@]}" apt-get update -q
    own_policy=false
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${as_root[@]}" chmod +x /usr/sbin/policy-rc.d
        own_policy=true
    fi
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends \
        dovecot-imapd dovecot-lmtpd >/dev/null
    if [ "$own_policy" = true ]; then "${as_root[@]}" rm -f /usr/sbin/policy-rc.d; fi
    # The system instance's master pid file (base_dir /run/dovecot); the
    # harness's instances keep theirs in their own directories.
    if [ -e /run/dovecot/master.pid ] && "${as_root[@]}" kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
        "${as_root[@]}" doveadm stop || true
    fi
fi
/usr/sbin/dovecot --version

npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
