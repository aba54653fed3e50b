#!/usr/bin/env bash
# One-shot job (service temporal-setup, image temporalio/admin-tools): once the server answers,
# creates the namespace if it does not exist and registers the platform's search attributes
# (all Keyword) that are missing. Safe to re-run.
#
# SEARCH_ATTRIBUTES must equal SEARCH_ATTRIBUTE_NAMES in src/workflows/contract.ts
# (test/compose.test.ts checks it). With PostgreSQL visibility they are per namespace and use
# the schema's preallocated Keyword columns (10 of them).
set -euo pipefail

ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${NAMESPACE_RETENTION:-72h}"
SEARCH_ATTRIBUTES=(IdpKind IdpService IdpEnvironment IdpTier IdpVersion IdpTeam IdpStatus IdpTarget)

# retry <attempts> <command...>: the server, and a namespace just created, take a moment to be usable.
retry() {
  local attempts="$1"; shift
  for attempt in $(seq 1 "$attempts"); do
    if "$@"; then return 0; fi
    echo "not yet (${attempt}/${attempts}): $*" >&2
    sleep 2
  done
  return 1
}

echo "waiting for Temporal at ${ADDRESS}"
retry 90 temporal operator cluster health --address "$ADDRESS" >/dev/null

if temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; then
  echo "namespace ${NAMESPACE} exists"
else
  echo "creating namespace ${NAMESPACE} (retention ${RETENTION})"
  temporal operator namespace create --address "$ADDRESS" --namespace "$NAMESPACE" --retention "$RETENTION"
  retry 30 temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null
fi

# Listed into a variable, not piped: `grep -q` exits at the first match and, under pipefail, the
# CLI's broken-pipe exit would read as "not registered".
registered_names() {
  temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE"
}
existing="$(retry 30 registered_names)"

for name in "${SEARCH_ATTRIBUTES[@]}"; do
  if grep -qw -- "$name" <<<"$existing"; then
    echo "search attribute ${name} exists"
    continue
  fi
  echo "registering search attribute ${name} (Keyword)"
  # A create that fails is retried; one that raced another setup run shows up in the list.
  retry 15 bash -c '
    temporal operator search-attribute create --address "$1" --namespace "$2" --name "$3" --type Keyword && exit 0
    listed="$(temporal operator search-attribute list --address "$1" --namespace "$2")" &&
      grep -qw -- "$3" <<<"$listed"
  ' _ "$ADDRESS" "$NAMESPACE" "$name"
done
echo "namespace ${NAMESPACE} is ready"
