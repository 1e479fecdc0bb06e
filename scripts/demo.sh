#!/usr/bin/env bash
# The embedded default, end to end, with no AWS account: build a realistic tenant on
# "gateway A", back it up to a local tar.zst, restore it under a new name on "gateway B",
# and show that the two trees match.
set -euo pipefail
cd "$(dirname "$0")/.."
# Its files go in .demo/ (git-ignored), or in .demo/ under $OPENCLAW_DEMO_PARENT (the tests').
demo="${OPENCLAW_DEMO_PARENT:-$PWD}/.demo"
rm -rf "$demo"
mkdir -p "$demo/gateway-a" "$demo/gateway-b" "$demo/backups"
openclaw() { bin/openclaw.js "$@"; } # as the installed command runs

echo "== 1. A sample tenant 'acme' on gateway A ($demo/gateway-a)"
# One line, not a stack trace, when this Node cannot write the sample's SQLite databases.
TSX_DISABLE_CACHE=1 node --import tsx -e "import('./scripts/sample-tenant.ts').then(m => m.createSampleTenant('$demo/gateway-a/acme')).catch((error) => { console.error('demo: ' + error.message); process.exit(1); })"
openclaw --tenants-dir "$demo/gateway-a" tenants list

echo
echo "== 2. Back it up to a local file"
openclaw --tenants-dir "$demo/gateway-a" tenants backup acme --to "$demo/backups/acme.tar.zst"

echo
echo "== 3. Any zstd + tar can read the archive"
if command -v zstd >/dev/null; then
  zstd -dc "$demo/backups/acme.tar.zst" | tar -tv | sed -n '1,5p;$p'
else
  echo "(install zstd to see: zstd -dc $demo/backups/acme.tar.zst | tar -tv)"
fi

echo
echo "== 4. Restore it as 'acme-copy' on gateway B ($demo/gateway-b)"
openclaw --tenants-dir "$demo/gateway-b" tenants restore --from "$demo/backups/acme.tar.zst" --as acme-copy

echo
echo "== 5. Compare: identical but for pty/ (ephemeral, never backed up)"
diff -r --no-dereference -x pty "$demo/gateway-a/acme" "$demo/gateway-b/acme-copy" && echo "trees match"
openclaw --tenants-dir "$demo/gateway-b" tenants list --names

echo
echo "== 6. A second restore into the same slot is refused without --force"
if openclaw --tenants-dir "$demo/gateway-b" tenants restore --from "$demo/backups/acme.tar.zst" --as acme-copy; then
  echo "unexpected: the occupied slot was overwritten" >&2; exit 1
else
  echo "(refused with exit code $?, as it should be)"
fi
