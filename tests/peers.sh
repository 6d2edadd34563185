#!/usr/bin/env bash
# Installs what the integration tests' peers need on a Debian 12 machine (run as root):
# Chromium + chromedriver (dashboard), nginx (TLS / proxy peer), PostgreSQL (shared records db),
# libfaketime (a wall-clock step), systemd's tools (the unit check) and a Python venv with
# Django REST Framework + gunicorn (tests/django, a real DRF upstream) and aiohttp +
# pyserial-asyncio (tests/bench/seed.py, the benchmark's rebuilt seed script).
# Idempotent, and quick when everything is already there.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/target/peers/venv"

have_initdb() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v openssl >/dev/null || missing+=(openssl)
have_initdb || missing+=(postgresql)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
# The clock-step test preloads libfaketime; the package test runs systemd-analyze and curl.
compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || missing+=(faketime)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v curl >/dev/null || missing+=(curl)

if ((${#missing[@]})); then
    echo "peers: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}"
else
    echo "peers: apt packages present (chromium, chromedriver, nginx, postgresql, faketime, systemd)"
fi

if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import django, rest_framework, gunicorn, aiohttp, serial_asyncio' 2>/dev/null; then
    echo "peers: venv ready at $venv"
else
    echo "peers: creating venv at $venv (django, djangorestframework, gunicorn; aiohttp and"
    echo "peers: pyserial-asyncio for the benchmark's rebuilt seed script)"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q django djangorestframework gunicorn aiohttp pyserial-asyncio
fi
