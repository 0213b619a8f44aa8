#!/usr/bin/env bash
# Debian packages the suite needs: Chromium for the browser tests (driven by Playwright, no
# browser download), docker-compose to validate docker-compose.yml (no engine needed) and
# nginx to run deploy/nginx.conf in front of the test server (tests/config/test_nginx_proxy.py;
# Debian 12's nginx-light is only a transitional package that pulls in nginx itself).
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# /usr/sbin is not on every user's PATH.
{ command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || missing+=(nginx)
[ ${#missing[@]} -eq 0 ] && exit 0
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
echo "installing ${missing[*]}"
as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
