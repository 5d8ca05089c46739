#!/usr/bin/env bash
# Checks that every FROM of the Dockerfile pins the digest its tag resolves to today (the manifest list's digest, as
# `docker pull` resolves it). Needs registry access and crane (go-containerregistry) or docker buildx. Exit 1 on any
# difference, printing the digest to pin. Run it before a release build and when reviewing a Renovate update.
set -euo pipefail
cd "$(dirname "$0")/../.."

resolve() {
  if command -v crane >/dev/null 2>&1; then
    crane digest "$1"
  else
    docker buildx imagetools inspect "$1" --format '{{json .Manifest}}' | sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p'
  fi
}

status=0
while read -r reference; do
  image=${reference%@*}
  pinned=${reference#*@}
  current=$(resolve "$image")
  if [ "$current" = "$pinned" ]; then
    echo "ok       $image@$pinned"
  else
    echo "MISMATCH $image: pinned $pinned, the registry has $current" >&2
    status=1
  fi
done < <(sed -n 's/^FROM \([^ ]*@sha256:[0-9a-f]*\).*/\1/p' Dockerfile)
exit "$status"
