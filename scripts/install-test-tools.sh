#!/usr/bin/env bash
# Installs the Debian packages the test suite uses, when they are missing. Needs root (CI and the dev
# machines run as root); otherwise it says what to install and carries on (the dependent tests skip).
set -uo pipefail
need=()
command -v strace >/dev/null 2>&1 || need+=(strace)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-tools: not root; please install: ${need[*]}" >&2
  exit 0
fi
echo "install-test-tools: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null || echo "install-test-tools: apt-get failed for ${need[*]}" >&2
exit 0
