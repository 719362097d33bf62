#!/usr/bin/env bash
# What `make test`'s tiers need besides Python packages and the services: Debian's chromium for the
# console's browser tier, OpenSSH's sshd for the SFTP tier, promtool (Debian's prometheus) for the
# alert rules. Installed with apt when missing and run as root; otherwise we stop here, before any
# test runs, naming the package and the tier.
set -u
. "$(dirname "$0")/apt-install.sh"

# The browser tests drive Debian's chromium: no browser download is reachable, so never `playwright install`.
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  apt_install "the console's browser tier (tests/console)" "" chromium || exit 1
fi
# sshd is started by a test fixture on a free port, never as a service (Debian's policy-rc.d keeps the
# package from starting one).
if ! command -v sshd >/dev/null 2>&1 && [ ! -x /usr/sbin/sshd ]; then
  apt_install "the SFTP tier (tests/integration/test_sftp_sshd.py)" "" openssh-server openssh-client || exit 1
fi
# promtool checks and unit-tests deploy/observability's alert rules (tests/unit/test_observability_files.py).
if ! command -v promtool >/dev/null 2>&1; then
  apt_install "the alert-rule checks (tests/unit/test_observability_files.py)" "" prometheus || exit 1
fi
exit 0
