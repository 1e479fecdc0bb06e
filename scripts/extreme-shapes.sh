#!/bin/bash
# Tenants of extreme shapes, through the built CLI (npm run build first): each shape is built
# in WORK/base/<shape>, backed up to WORK/out, restored into WORK/restored, and compared with
# `find -printf '%P %y %s %m %l'` and sha256 of every file. Prints exit code, wall time and
# peak RSS (GNU time) of each command, and the differences (expected ones: what the backup
# leaves out with a note, setuid/setgid/sticky bits; a hard link past the limit of names per
# file of the file system restored into, 65,000 on ext4, is a copy).
# Not part of npm test: the full sizes take tens of minutes and gigabytes.
#
#   scripts/extreme-shapes.sh WORK [SCALE]    SCALE 1 = the sizes of docs/scale.md's table
#                                             ("Tenants of extreme shapes"); 0.01 for a quick run
# Run as root for the device nodes and the immutable file (skipped otherwise). WORK must not
# exist; it is left for inspection (`chattr -R -i` it first if a shape was immutable, then rm -rf).
set -euo pipefail

work=${1:?usage: scripts/extreme-shapes.sh WORK [SCALE]}
scale=${2:-1}
cli="$(cd "$(dirname "$0")/.." && pwd)/bin/openclaw.js"
[ -e "$work" ] && { echo "$work exists: name a new directory" >&2; exit 2; }
mkdir -p "$work/base" "$work/out" "$work/restored" "$work/done"
work=$(cd "$work" && pwd)

n() { python3 -c "import sys; print(max(1, int(float(sys.argv[1]) * float(sys.argv[2]))))" "$1" "$scale"; }

build() {
  python3 - "$work/base/$1" "$1" "$(n 500000)" "$(n 300000)" "$(n 100000)" <<'EOF'
import os, sys
t, shape, wide, links, many = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
os.makedirs(t)
def chain(names, every=None):
    fd = os.open(t, os.O_RDONLY)
    for i, name in enumerate(names):
        if every and i % every == 0:
            f = os.open(f'f{i}', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd); os.write(f, b'%d' % i); os.close(f)
        os.mkdir(name, dir_fd=fd); nfd = os.open(name, os.O_RDONLY, dir_fd=fd); os.close(fd); fd = nfd
    os.close(fd)
if shape == 'deep':        # 2,000 directories in a chain: a restore goes 1,024 deep
    chain(['d'] * 2000, every=100)
elif shape == 'long':      # 255-byte names 20 levels deep: paths past PATH_MAX
    chain([f'{i:02d}'.ljust(255, 'x') for i in range(20)], every=1)
elif shape == 'wide':      # one directory of many empty files
    for i in range(wide): os.close(os.open(f'{t}/f{i:07d}', os.O_WRONLY | os.O_CREAT, 0o644))
elif shape == 'links':     # many hard links to one file, and groups of 10
    os.mkdir(f'{t}/l'); open(f'{t}/orig', 'wb').write(os.urandom(4096))
    for i in range(links - 1): os.link(f'{t}/orig', f'{t}/l/h{i:07d}')
    for g in range(max(1, links // 150)):
        open(f'{t}/g{g}_0', 'wb').write(os.urandom(100))
        for k in range(1, 10): os.link(f'{t}/g{g}_0', f'{t}/g{g}_{k}')
elif shape == 'dirs':      # many empty directories
    for a in range(max(1, many // 1000)):
        for b in range(1000): os.makedirs(f'{t}/p{a:03d}/e{b:04d}')
elif shape == 'symlinks':  # to a file, to a directory, dangling, chained
    os.makedirs(f'{t}/tgt/dir'); open(f'{t}/tgt/file', 'w').write('t'); os.mkdir(f'{t}/s')
    for i in range(many):
        os.symlink(['../tgt/file', '../tgt/dir', f'../tgt/missing{i}', f's{i - 1:07d}' if i else '../tgt'][i % 4], f'{t}/s/s{i:07d}')
EOF
}

run() { # run NAME ARGS...: the CLI under GNU time, one summary line
  local name=$1; shift
  local rc=0
  /usr/bin/time -f '%e s, peak RSS %M KiB' -o "$work/time" "$cli" "$@" > "$work/$name.out" 2> "$work/$name.err" || rc=$?
  printf '  %-8s exit %s, %s\n' "$name" "$rc" "$(cat "$work/time")"
  if [ "$rc" != 0 ]; then cut -c1-300 "$work/$name.err" | sed 's/^/    /'; fi
}

compare() {
  local list='%P %y %s %m %l\n'
  diff <(cd "$work/base/$1" && find . -mindepth 1 -printf "$list" | LC_ALL=C sort) \
       <(cd "$work/restored/$1" && find . -mindepth 1 -printf "$list" | LC_ALL=C sort) | grep -c '^[<>]' | sed 's/^/  entries differing: /' || true
  [ "$1" = sparse ] && return # the restore checked its SHA-256; reading 2 x 50 GiB of zeros again takes minutes
  diff <(cd "$work/base/$1" && find . -type f -print0 2>/dev/null | LC_ALL=C sort -z | xargs -0 -r sha256sum 2>/dev/null) \
       <(cd "$work/restored/$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) | grep -c '^[<>]' | sed 's/^/  checksums differing: /' || true
}

shapes=(deep long wide links dirs symlinks special sparse)
for shape in "${shapes[@]}"; do
  echo "== $shape"
  case $shape in
    special)
      t="$work/base/special"; mkdir -p "$t/setgid" "$t/sticky"
      mkfifo "$t/fifo"; python3 -c "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$t/socket"
      echo x > "$t/m000"; chmod 000 "$t/m000"; echo x > "$t/s4755"; chmod 4755 "$t/s4755"
      chmod 2775 "$t/setgid"; chmod 1777 "$t/sticky"
      if [ "$(id -u)" = 0 ]; then
        mknod "$t/null" c 1 3; echo x > "$t/other-uid"; chown 1234:1234 "$t/other-uid"
        echo x > "$t/immutable"; chattr +i "$t/immutable" 2>/dev/null || echo "  (chattr +i not supported here)"
      fi ;;
    sparse)
      mkdir -p "$work/base/sparse"; truncate -s "$(n 53687091200)" "$work/base/sparse/big.img"
      head -c 1048576 /dev/urandom | dd of="$work/base/sparse/big.img" conv=notrunc status=none ;;
    *) build "$shape" ;;
  esac
  run list --tenants-dir "$work/base" tenants list
  run backup --tenants-dir "$work/base" tenants backup "$shape" --to "$work/out/$shape.tar.zst"
  run restore --tenants-dir "$work/restored" tenants restore --from "$work/out/$shape.tar.zst"
  [ "$shape" = sparse ] && du -h "$work/restored/sparse/big.img" | sed 's/^/  restored on disk: /'
  compare "$shape"
  rm -rf "$work/restored/$shape"
  mv "$work/base/$shape" "$work/done/$shape"
done
