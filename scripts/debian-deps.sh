#!/usr/bin/env bash
# Installs the Debian tools the test suite and the demo use, when they are missing:
#   rocksdb-tools  -> ldb, an independent reader of the RocksDB files we write.
#   ceph-mon ceph-osd radosgw ceph-common -> a throwaway single-node Ceph cluster with the RADOS
#                     Gateway on loopback: the real S3 server of the integration tests
#                     (testkit/local-rgw.ts).
#   time           -> GNU time, for the peak RSS figures of `npm run bench`.
#   prometheus     -> promtool (check metrics, check rules, test rules) and a real Prometheus that
#                     scrapes the api in the tests.
#   chromium       -> the headless browser the admin UI test drives (through playwright-core).
#   age            -> the reference age tool: an archive encrypted to an offline recipient must
#                     open with it (`age -d -i key.txt FILE | tar -tz`).
#   awscli         -> an independent S3 client: Object Lock retention is read back with
#                     `aws s3api get-object-retention`, not with our own client.
#   systemd        -> systemd-analyze, which verifies the units of deploy/systemd (it does not
#                     need systemd to run as PID 1).
#   redis-sentinel -> three real sentinels watching a throwaway master and replica on loopback
#                     (testkit/redis-sentinel.ts): the api and the worker through a failover.
# Idempotent and quiet; `apt-get update` runs once, only when something is to be installed.
set -euo pipefail

missing=()
command -v ldb >/dev/null 2>&1 || missing+=(rocksdb-tools)
command -v ceph-mon >/dev/null 2>&1 || missing+=(ceph-mon)
command -v ceph-osd >/dev/null 2>&1 || missing+=(ceph-osd)
command -v radosgw >/dev/null 2>&1 || missing+=(radosgw)
{ command -v radosgw-admin && command -v monmaptool && command -v ceph; } >/dev/null 2>&1 || missing+=(ceph-common)
[[ -x /usr/bin/time ]] || missing+=(time)
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[[ -x /usr/bin/age ]] || missing+=(age)
# Debian's own aws: a pyenv shim of that name may stand in front of it on PATH.
[[ -x /usr/bin/aws ]] || missing+=(awscli)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)

if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "debian-deps: please install the Debian packages: ${missing[*]} (needs root and apt-get)" >&2
  exit 1
fi
echo "debian-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
