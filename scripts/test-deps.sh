#!/usr/bin/env bash
# Installs the Debian tools the test suite uses, when they are missing:
#   rocksdb-tools  -> ldb, an independent reader of the RocksDB files we write.
# Idempotent and quiet; `apt-get update` runs once, only when something is to be installed.
set -euo pipefail

missing=()
command -v ldb >/dev/null 2>&1 || missing+=(rocksdb-tools)

if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test setup: please install the Debian packages: ${missing[*]} (needs root and apt-get)" >&2
  exit 1
fi
echo "test setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
