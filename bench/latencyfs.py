#!/usr/bin/python3
"""latencyfs: a FUSE passthrough that answers every request after a fixed delay, a stand-in
for a network file system such as EFS in `npm run bench -- --rows latency`
(docs/benchmarks.md, "The latency mount").

    latencyfs.py mount SOURCE MOUNTPOINT [--delay-ms 1] [--bandwidth-mib 0] [--cache-s 1]
                                         [--stats FILE] [--exit-with-parent]
                                         [--access-point UID:GID]

It speaks the FUSE protocol on /dev/fuse itself (mounted by fusermount3, from Debian's
`fuse3`): libfuse 2 (fusepy) cannot ask the kernel for parallel lookups in a directory,
and libfuse before 3.17 (Debian 12 has 3.14; pyfuse3) drops that flag from its reply, so
with either every lookup in a directory waits for the one before it, which a real NFS
client does not.

What is delayed (L = --delay-ms), per request the kernel sends; modelled on the Linux NFS
client talking to EFS, where every RPC is a network round trip:
  - LOOKUP, GETATTR, SETATTR (chmod, chown, truncate, utimes: one request), OPEN, CREATE,
    MKDIR, MKNOD, SYMLINK, LINK, UNLINK, RMDIR, RENAME, READLINK, ACCESS, STATFS,
    FSYNCDIR: L each; a failed request (a lookup of an absent name) too.
  - READDIR(PLUS): L for each started block of 1,000 entries (an NFS READDIR reply of
    32 KiB or more holds about that many). Listings carry attributes (READDIRPLUS, like
    NFS's READDIR), so a stat of a listed entry within the cache timeout costs nothing.
  - READ: L per request, plus size / bandwidth. The kernel asks for at most 128 KiB at a
    time and reads ahead, so a sequential reader keeps a request or two in flight.
  - WRITE: nothing; the bytes are counted against the handle, as the NFS client buffers
    them. The FLUSH of the close() that follows pays L plus the buffered bytes / bandwidth
    (the NFS client writes dirty pages back on close); a FLUSH with nothing written is
    free (the NFSv4 CLOSE goes out asynchronously). FSYNC pays L plus what is buffered.
  - RELEASE, OPENDIR, RELEASEDIR, FORGET: free.
The operation is carried out when the request arrives and its reply is sent after the
delay, so concurrent requests overlap their delays, as on a network file system (the
benchmark checks that on every mount: bench/latency-mount.ts). What the kernel itself
serialises stays serialised, as on NFS: creating, renaming or removing names in one
directory holds that directory's lock. Known gap: the kernel looks a new name up (one L)
before it creates it, where an NFSv4 OPEN does both in one round trip. The daemon is one
Python thread: at 0 ms it answered ~14,000 requests a second on a loaded 2-core machine
(docs/benchmarks.md).

Kernel caches: entries and attributes for --cache-s (1 s), no negative entries, file data
dropped on every open (close-to-open consistency). Permissions are checked by the kernel
from cached attributes (default_permissions, like the NFS access cache); extended
attributes and POSIX locks are left to the kernel (ENOSYS / local locks).

--access-point UID:GID (run the daemon as root) stands in for an EFS access point with user
enforcement, as the functions see it: every entry reports that owner and group, whoever owns
it in SOURCE; whatever any caller creates (file, directory, node, symlink) is made that
user's in SOURCE; every caller may do what that user may, which here is simply everything
(the mount is allow_other and without default_permissions: the daemon, root, does the
operation). So a process of uid 993 (Lambda's own user) works in a 0750 directory of uid
1000 and sees its new files as 1000's, never its own, as on EFS. Not modelled: a caller
that the access point's user could not let in (a 0700 entry of another uid).

Signals: SIGUSR1 writes the request counters to --stats (JSON, replaced atomically) and
starts a new peak-in-flight window; SIGTERM, SIGINT and SIGHUP unmount and end the
daemon. The mount uses fusermount3's auto_unmount, so it goes away when the daemon dies,
even by SIGKILL; with --exit-with-parent the daemon gets SIGTERM when its parent dies.
"""

import argparse
import ctypes
import errno
import heapq
import json
import os
import selectors
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

ROOT_ID = 1
READDIR_BLOCK = 1000
MAX_WRITE = 128 * 1024
READ_BUFFER = MAX_WRITE + 64 * 1024
KERNEL_MINOR = 31  # the structures below are those of protocol 7.31

# Opcodes (include/uapi/linux/fuse.h).
LOOKUP, FORGET, GETATTR, SETATTR, READLINK, SYMLINK = 1, 2, 3, 4, 5, 6
MKNOD, MKDIR, UNLINK, RMDIR, RENAME, LINK, OPEN, READ, WRITE = 8, 9, 10, 11, 12, 13, 14, 15, 16
STATFS, RELEASE, FSYNC, FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR = 17, 18, 20, 25, 26, 27, 28, 29
FSYNCDIR, ACCESS, CREATE, INTERRUPT, DESTROY, BATCH_FORGET = 30, 34, 35, 36, 38, 42
READDIRPLUS, RENAME2 = 44, 45
OPCODE_NAMES = {
    LOOKUP: "lookup", GETATTR: "getattr", SETATTR: "setattr", READLINK: "readlink", SYMLINK: "symlink",
    MKNOD: "mknod", MKDIR: "mkdir", UNLINK: "unlink", RMDIR: "rmdir", RENAME: "rename", LINK: "link",
    OPEN: "open", READ: "read", WRITE: "write", STATFS: "statfs", RELEASE: "release", FSYNC: "fsync",
    FLUSH: "flush", OPENDIR: "opendir", READDIR: "readdir", RELEASEDIR: "releasedir", FSYNCDIR: "fsyncdir",
    ACCESS: "access", CREATE: "create", READDIRPLUS: "readdir", RENAME2: "rename",
}

# INIT flags asked for.
FUSE_ASYNC_READ = 1 << 0
FUSE_BIG_WRITES = 1 << 5
FUSE_DO_READDIRPLUS = 1 << 13
FUSE_ASYNC_DIO = 1 << 15
FUSE_PARALLEL_DIROPS = 1 << 18
WANTED_FLAGS = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS | FUSE_ASYNC_DIO | FUSE_PARALLEL_DIROPS

# SETATTR valid bits.
FATTR_MODE, FATTR_UID, FATTR_GID, FATTR_SIZE = 1, 2, 4, 8
FATTR_ATIME, FATTR_MTIME, FATTR_FH, FATTR_ATIME_NOW, FATTR_MTIME_NOW = 16, 32, 64, 128, 256
FUSE_GETATTR_FH = 1
RENAME_EXCHANGE = 2

IN_HEADER = struct.Struct("<IIQQIIIHH")  # len, opcode, unique, nodeid, uid, gid, pid, extlen, pad
OUT_HEADER = struct.Struct("<IiQ")  # len, error, unique
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")  # fuse_attr: 88 bytes
ENTRY_HEAD = struct.Struct("<QQQQII")  # nodeid, generation, entry_valid, attr_valid, nsecs
ATTR_OUT_HEAD = struct.Struct("<QII")  # attr_valid, attr_valid_nsec, dummy
OPEN_OUT = struct.Struct("<QIi")  # fh, open_flags, backing_id
DIRENT_HEAD = struct.Struct("<QQII")  # ino, off, namelen, type
INIT_IN = struct.Struct("<IIII")
INIT_OUT = struct.Struct("<IIIIHHIIHHI28x")  # 64 bytes
SETATTR_IN = struct.Struct("<IIQQQQQQIIIIIIII")
READ_IN = struct.Struct("<QQIIQII")
WRITE_IN = struct.Struct("<QQIIQII")
KSTATFS = struct.Struct("<QQQQQIIII24x")


class Failure(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def split_names(data, count):
    names = data.split(b"\0")
    if len(names) < count + 1:
        raise Failure(errno.EINVAL)
    return names[:count]


class Node:
    __slots__ = ("links", "lookups")

    def __init__(self):
        self.links = set()  # (parent id, name): more than one for hard links
        self.lookups = 0  # references the kernel holds; forgotten at 0


class Counters:
    """Requests by kind, delay handed out, requests waiting for their reply (now and peak)."""

    def __init__(self):
        self.requests = {}
        self.delayed_s = 0.0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.sequence = 0

    def snapshot(self, path):
        self.sequence += 1
        record = {"sequence": self.sequence, "requests": dict(self.requests), "delayedMs": round(self.delayed_s * 1000, 3), "peakInFlight": self.peak_in_flight}
        self.peak_in_flight = self.in_flight
        temporary = "%s.%d.tmp" % (path, os.getpid())
        with open(temporary, "w") as out:
            json.dump(record, out)
        os.replace(temporary, path)


class LatencyFS:
    def __init__(self, fd, source, delay_s, bandwidth_bps, cache_s, counters, access_point=None):
        self.fd = fd
        self.access_point = access_point  # (uid, gid) that owns everything, or None
        self.root = os.fsencode(source)
        self.root_ino = os.lstat(self.root).st_ino
        self.delay_s = delay_s
        self.bandwidth_bps = bandwidth_bps
        self.cache_s = cache_s
        self.counters = counters
        self.nodes = {ROOT_ID: Node()}
        self.children = {}  # (parent id, name) -> id
        self.files = {}  # fh -> [id, bytes written since the last flush]
        self.open_by_id = {}  # id -> set of fh (getattr of an unlinked, open file)
        self.directories = {}  # handle -> [id, listing or None]
        self.next_handle = 1
        self.timers = []  # heap of (due, sequence, reply parts)
        self.timer_sequence = 0
        self.euid, self.egid = os.geteuid(), os.getegid()
        self.handlers = {
            LOOKUP: self.lookup, GETATTR: self.getattr, SETATTR: self.setattr, READLINK: self.readlink,
            SYMLINK: self.symlink, MKNOD: self.mknod, MKDIR: self.mkdir, UNLINK: self.unlink, RMDIR: self.rmdir,
            RENAME: self.rename, RENAME2: self.rename2, LINK: self.link, OPEN: self.open, READ: self.read,
            WRITE: self.write, STATFS: self.statfs, RELEASE: self.release, FSYNC: self.fsync, FLUSH: self.flush,
            OPENDIR: self.opendir, READDIR: self.readdir, READDIRPLUS: self.readdirplus, RELEASEDIR: self.releasedir,
            FSYNCDIR: self.fsyncdir, ACCESS: self.access, CREATE: self.create,
        }

    # -- the loop ------------------------------------------------------------------------

    def serve(self, stop_requested, wake_fd):
        """Reads requests until the mount goes away or `stop_requested()` is true (a signal
        handler sets it; the signal also writes to `wake_fd`, which ends the wait)."""
        buffer = bytearray(READ_BUFFER)
        view = memoryview(buffer)
        selector = selectors.DefaultSelector()
        selector.register(self.fd, selectors.EVENT_READ)
        selector.register(wake_fd, selectors.EVENT_READ)
        os.set_blocking(self.fd, False)
        while not stop_requested():
            self.send_due()
            timeout = max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else None
            for key, _ in selector.select(timeout):
                if key.fd == wake_fd:
                    os.read(wake_fd, 512)
            while True:
                try:
                    size = os.readv(self.fd, [buffer])
                except BlockingIOError:
                    break
                except InterruptedError:
                    continue
                except OSError as error:
                    if error.errno == errno.ENOENT:  # the request was interrupted
                        continue
                    if error.errno == errno.ENODEV:  # unmounted
                        return
                    raise
                if size == 0:
                    return
                if self.dispatch(view[:size]) is False:
                    return
                self.send_due()

    def send_due(self):
        now = time.monotonic()
        timers = self.timers
        while timers and timers[0][0] <= now:
            _, _, parts = heapq.heappop(timers)
            self.counters.in_flight -= 1
            self.send(parts)

    def send(self, parts):
        try:
            os.writev(self.fd, parts)
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.ENODEV):  # interrupted, or unmounted
                raise

    def reply(self, unique, op, delay_s, payload=b""):
        parts = [OUT_HEADER.pack(OUT_HEADER.size + len(payload), 0, unique), payload]
        self.schedule(op, delay_s, parts)

    def schedule(self, op, delay_s, parts):
        counters = self.counters
        counters.requests[op] = counters.requests.get(op, 0) + 1
        if delay_s <= 0:
            self.send(parts)
            return
        counters.delayed_s += delay_s
        counters.in_flight += 1
        if counters.in_flight > counters.peak_in_flight:
            counters.peak_in_flight = counters.in_flight
        self.timer_sequence += 1
        heapq.heappush(self.timers, (time.monotonic() + delay_s, self.timer_sequence, parts))

    def dispatch(self, request):
        length, opcode, unique, nodeid, uid, gid, pid, _, _ = IN_HEADER.unpack_from(request)
        body = bytes(request[IN_HEADER.size:length])
        if opcode == FORGET:
            self.forget(nodeid, struct.unpack_from("<Q", body)[0])
            return True
        if opcode == BATCH_FORGET:
            count = struct.unpack_from("<I", body)[0]
            for i in range(count):
                self.forget(*struct.unpack_from("<QQ", body, 8 + 16 * i))
            return True
        if opcode == INTERRUPT:
            return True  # the request completes after its delay anyway
        if opcode == INIT:
            self.init(unique, body)
            return True
        if opcode == DESTROY:
            self.send([OUT_HEADER.pack(OUT_HEADER.size, 0, unique)])
            return False
        handler = self.handlers.get(opcode)
        op = OPCODE_NAMES.get(opcode, str(opcode))
        try:
            if handler is None:
                raise Failure(errno.ENOSYS)
            handler(unique, nodeid, body, (uid, gid))
        except (Failure, OSError) as error:
            code = error.code if isinstance(error, Failure) else (error.errno or errno.EIO)
            # A failed request costs its round trip too (ENOSYS: no server involved).
            self.schedule(op + " (error)", 0 if code == errno.ENOSYS else self.delay_s, [OUT_HEADER.pack(OUT_HEADER.size, -code, unique)])
        return True

    # -- helpers -------------------------------------------------------------------------

    def transfer_s(self, size):
        return size / self.bandwidth_bps if self.bandwidth_bps > 0 else 0.0

    def id_of(self, st):
        return ROOT_ID if st.st_ino == self.root_ino else st.st_ino

    def path_of(self, node_id):
        parts = []
        for _ in range(4096):
            if node_id == ROOT_ID:
                parts.append(self.root)
                return b"/".join(reversed(parts))
            node = self.nodes.get(node_id)
            if node is None or not node.links:
                raise Failure(errno.ENOENT)
            node_id, name = next(iter(node.links))
            parts.append(name)
        raise Failure(errno.ELOOP)

    def child_path(self, parent, name):
        if name in (b"", b".", b"..") or b"/" in name:
            raise Failure(errno.EINVAL)
        return self.path_of(parent) + b"/" + name

    def add_link(self, node_id, parent, name, looked_up=True):
        previous = self.children.get((parent, name))
        if previous is not None and previous != node_id:
            self.drop_link(parent, name)
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = Node()
        node.links.add((parent, name))
        self.children[(parent, name)] = node_id
        if looked_up:
            node.lookups += 1

    def drop_link(self, parent, name):
        node_id = self.children.pop((parent, name), None)
        node = self.nodes.get(node_id)
        if node is not None:
            node.links.discard((parent, name))

    def forget(self, node_id, count):
        node = self.nodes.get(node_id)
        if node is None or node_id == ROOT_ID:
            return
        node.lookups -= count
        if node.lookups <= 0:
            for link in node.links:
                if self.children.get(link) == node_id:
                    del self.children[link]
            del self.nodes[node_id]

    def attr(self, st):
        return ATTR.pack(
            self.id_of(st), st.st_size, st.st_blocks,
            st.st_atime_ns // 1_000_000_000, st.st_mtime_ns // 1_000_000_000, st.st_ctime_ns // 1_000_000_000,
            st.st_atime_ns % 1_000_000_000, st.st_mtime_ns % 1_000_000_000, st.st_ctime_ns % 1_000_000_000,
            st.st_mode, st.st_nlink, *(self.access_point or (st.st_uid, st.st_gid)), st.st_rdev & 0xFFFFFFFF, st.st_blksize, 0,
        )

    def entry(self, st):
        seconds, fraction = int(self.cache_s), int((self.cache_s % 1) * 1e9)
        return ENTRY_HEAD.pack(self.id_of(st), 0, seconds, seconds, fraction, fraction) + self.attr(st)

    def attr_out(self, st):
        seconds, fraction = int(self.cache_s), int((self.cache_s % 1) * 1e9)
        return ATTR_OUT_HEAD.pack(seconds, fraction, 0) + self.attr(st)

    def stat_id(self, node_id):
        handles = self.open_by_id.get(node_id)
        if handles:
            return os.fstat(next(iter(handles)))
        return os.lstat(self.path_of(node_id))

    def owned_by_caller(self, path, caller):
        if self.access_point is not None:
            caller = self.access_point
        if caller != (self.euid, self.egid):
            os.chown(path, caller[0], caller[1], follow_symlinks=False)

    def new_entry(self, unique, op, parent, name, path):
        st = os.lstat(path)
        self.add_link(self.id_of(st), parent, name)
        self.reply(unique, op, self.delay_s, self.entry(st))

    def opened(self, fd, node_id):
        self.files[fd] = [node_id, 0]
        self.open_by_id.setdefault(node_id, set()).add(fd)
        return OPEN_OUT.pack(fd, 0, 0)

    def take_buffered(self, fh):
        state = self.files.get(fh)
        if state is None:
            return 0
        buffered, state[1] = state[1], 0
        return buffered

    # -- requests ------------------------------------------------------------------------

    def init(self, unique, body):
        major, minor, max_readahead, flags = INIT_IN.unpack_from(body)
        if major != 7:
            self.send([OUT_HEADER.pack(OUT_HEADER.size, -errno.EPROTO, unique)])
            return
        granted = flags & WANTED_FLAGS
        payload = INIT_OUT.pack(7, min(minor, KERNEL_MINOR), max_readahead, granted, 64, 48, MAX_WRITE, 1, 0, 0, 0)
        self.send([OUT_HEADER.pack(OUT_HEADER.size + len(payload), 0, unique), payload])
        sys.stdout.write("ready (parallel lookups: %s)\n" % ("yes" if granted & FUSE_PARALLEL_DIROPS else "no"))
        sys.stdout.flush()

    def lookup(self, unique, parent, body, caller):
        (name,) = split_names(body, 1)
        path = self.child_path(parent, name)
        self.new_entry(unique, "lookup", parent, name, path)

    def getattr(self, unique, node_id, body, caller):
        flags, _, fh = struct.unpack_from("<IIQ", body)
        st = os.fstat(fh) if flags & FUSE_GETATTR_FH and fh in self.files else self.stat_id(node_id)
        self.reply(unique, "getattr", self.delay_s, self.attr_out(st))

    def setattr(self, unique, node_id, body, caller):
        (valid, _, fh, size, _, atime, mtime, _, atimensec, mtimensec, _, mode, _, uid, gid, _) = SETATTR_IN.unpack_from(body)
        by_handle = bool(valid & FATTR_FH) and fh in self.files
        target = fh if by_handle else self.path_of(node_id)
        if valid & FATTR_SIZE:
            os.truncate(target, size)
        if valid & FATTR_MODE:
            os.chmod(target, stat.S_IMODE(mode))
        if valid & (FATTR_UID | FATTR_GID):
            new_uid = uid if valid & FATTR_UID else -1
            new_gid = gid if valid & FATTR_GID else -1
            if by_handle:
                os.fchown(target, new_uid, new_gid)
            else:
                os.chown(target, new_uid, new_gid, follow_symlinks=False)
        if valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW):
            current = os.fstat(target) if by_handle else os.lstat(target)
            now = time.time_ns()
            new_atime = now if valid & FATTR_ATIME_NOW else atime * 1_000_000_000 + atimensec if valid & FATTR_ATIME else current.st_atime_ns
            new_mtime = now if valid & FATTR_MTIME_NOW else mtime * 1_000_000_000 + mtimensec if valid & FATTR_MTIME else current.st_mtime_ns
            if by_handle:
                os.utime(target, ns=(new_atime, new_mtime))
            else:
                os.utime(target, ns=(new_atime, new_mtime), follow_symlinks=False)
        st = os.fstat(target) if by_handle else os.lstat(target)
        self.reply(unique, "setattr", self.delay_s, self.attr_out(st))

    def readlink(self, unique, node_id, body, caller):
        self.reply(unique, "readlink", self.delay_s, os.readlink(self.path_of(node_id)))

    def symlink(self, unique, parent, body, caller):
        name, target = split_names(body, 2)
        path = self.child_path(parent, name)
        os.symlink(target, path)
        self.owned_by_caller(path, caller)
        self.new_entry(unique, "symlink", parent, name, path)

    def mknod(self, unique, parent, body, caller):
        mode, rdev, _, _ = struct.unpack_from("<IIII", body)
        (name,) = split_names(body[16:], 1)
        path = self.child_path(parent, name)
        os.mknod(path, mode, rdev)
        self.owned_by_caller(path, caller)
        self.new_entry(unique, "mknod", parent, name, path)

    def mkdir(self, unique, parent, body, caller):
        mode, _ = struct.unpack_from("<II", body)
        (name,) = split_names(body[8:], 1)
        path = self.child_path(parent, name)
        os.mkdir(path, mode)
        self.owned_by_caller(path, caller)
        self.new_entry(unique, "mkdir", parent, name, path)

    def unlink(self, unique, parent, body, caller):
        (name,) = split_names(body, 1)
        os.unlink(self.child_path(parent, name))
        self.drop_link(parent, name)
        self.reply(unique, "unlink", self.delay_s)

    def rmdir(self, unique, parent, body, caller):
        (name,) = split_names(body, 1)
        os.rmdir(self.child_path(parent, name))
        self.drop_link(parent, name)
        self.reply(unique, "rmdir", self.delay_s)

    def rename(self, unique, parent, body, caller):
        (new_parent,) = struct.unpack_from("<Q", body)
        self.renamed(unique, parent, new_parent, 0, body[8:])

    def rename2(self, unique, parent, body, caller):
        new_parent, flags, _ = struct.unpack_from("<QII", body)
        self.renamed(unique, parent, new_parent, flags, body[16:])

    def renamed(self, unique, parent, new_parent, flags, names):
        old_name, new_name = split_names(names, 2)
        old_path, new_path = self.child_path(parent, old_name), self.child_path(new_parent, new_name)
        if flags == 0:
            os.rename(old_path, new_path)
        else:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.renameat2(-100, old_path, -100, new_path, ctypes.c_uint(flags)) != 0:
                raise Failure(ctypes.get_errno())
        moved = self.children.get((parent, old_name))
        replaced = self.children.get((new_parent, new_name))
        self.drop_link(parent, old_name)
        self.drop_link(new_parent, new_name)
        if flags & RENAME_EXCHANGE and replaced is not None:
            self.add_link(replaced, parent, old_name, looked_up=False)
        if moved is not None:
            self.add_link(moved, new_parent, new_name, looked_up=False)
        self.reply(unique, "rename", self.delay_s)

    def link(self, unique, parent, body, caller):
        (existing,) = struct.unpack_from("<Q", body)
        (name,) = split_names(body[8:], 1)
        path = self.child_path(parent, name)
        os.link(self.path_of(existing), path, follow_symlinks=False)
        self.new_entry(unique, "link", parent, name, path)

    def open(self, unique, node_id, body, caller):
        flags, _ = struct.unpack_from("<II", body)
        fd = os.open(self.path_of(node_id), flags & ~(os.O_CREAT | os.O_EXCL | os.O_NOCTTY))
        self.reply(unique, "open", self.delay_s, self.opened(fd, node_id))

    def create(self, unique, parent, body, caller):
        flags, mode, _, _ = struct.unpack_from("<IIII", body)
        (name,) = split_names(body[16:], 1)
        path = self.child_path(parent, name)
        fd = os.open(path, flags | os.O_CREAT, stat.S_IMODE(mode))
        try:
            self.owned_by_caller(path, caller)
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        node_id = self.id_of(st)
        self.add_link(node_id, parent, name)
        self.reply(unique, "create", self.delay_s, self.entry(st) + self.opened(fd, node_id))

    def read(self, unique, node_id, body, caller):
        fh, offset, size, _, _, _, _ = READ_IN.unpack_from(body)
        data = os.pread(fh, size, offset)
        self.reply(unique, "read", self.delay_s + self.transfer_s(len(data)), data)

    def write(self, unique, node_id, body, caller):
        fh, offset, size, _, _, _, _ = WRITE_IN.unpack_from(body)
        written = os.pwrite(fh, body[WRITE_IN.size:WRITE_IN.size + size], offset)
        state = self.files.get(fh)
        if state is not None:
            state[1] += written
        self.reply(unique, "write", 0, struct.pack("<II", written, 0))

    def flush(self, unique, node_id, body, caller):
        (fh,) = struct.unpack_from("<Q", body)
        buffered = self.take_buffered(fh)
        if buffered > 0:
            self.reply(unique, "flush (write-back)", self.delay_s + self.transfer_s(buffered))
        else:
            self.reply(unique, "flush", 0)

    def fsync(self, unique, node_id, body, caller):
        fh, flags, _ = struct.unpack_from("<QII", body)
        buffered = self.take_buffered(fh)
        if flags & 1:
            os.fdatasync(fh)
        else:
            os.fsync(fh)
        self.reply(unique, "fsync", self.delay_s + self.transfer_s(buffered))

    def release(self, unique, node_id, body, caller):
        (fh,) = struct.unpack_from("<Q", body)
        state = self.files.pop(fh, None)
        if state is not None:
            handles = self.open_by_id.get(state[0])
            if handles is not None:
                handles.discard(fh)
                if not handles:
                    del self.open_by_id[state[0]]
            os.close(fh)
        self.reply(unique, "release", 0)

    def statfs(self, unique, node_id, body, caller):
        sv = os.statvfs(self.root)
        payload = KSTATFS.pack(sv.f_blocks, sv.f_bfree, sv.f_bavail, sv.f_files, sv.f_ffree, sv.f_bsize, sv.f_namemax, sv.f_frsize, 0)
        self.reply(unique, "statfs", self.delay_s, payload)

    def access(self, unique, node_id, body, caller):
        (mask,) = struct.unpack_from("<I", body)
        if not os.access(self.path_of(node_id), mask, follow_symlinks=False):
            raise Failure(errno.EACCES)
        self.reply(unique, "access", self.delay_s)

    def opendir(self, unique, node_id, body, caller):
        handle = self.next_handle
        self.next_handle += 1
        self.directories[handle] = [node_id, None]
        self.reply(unique, "opendir", 0, OPEN_OUT.pack(handle, 0, 0))

    def releasedir(self, unique, node_id, body, caller):
        (handle,) = struct.unpack_from("<Q", body)
        self.directories.pop(handle, None)
        self.reply(unique, "releasedir", 0)

    def fsyncdir(self, unique, node_id, body, caller):
        (handle,) = struct.unpack_from("<Q", body)
        directory = self.directories.get(handle)
        fd = os.open(self.path_of(directory[0] if directory else node_id), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.reply(unique, "fsyncdir", self.delay_s)

    def listing(self, handle, node_id, offset):
        directory = self.directories.get(handle)
        if directory is None:
            raise Failure(errno.EBADF)
        if offset == 0 or directory[1] is None:
            entries = []
            with os.scandir(self.path_of(node_id)) as scan:
                for item in scan:
                    try:
                        entries.append((os.fsencode(item.name), item.stat(follow_symlinks=False)))
                    except FileNotFoundError:
                        continue
            directory[1] = entries
        return directory[1]

    def listing_delay(self, start, end):
        blocks = sum(1 for first in range(0, max(end, 1), READDIR_BLOCK) if first >= start)
        return self.delay_s * blocks

    def readdirplus(self, unique, node_id, body, caller):
        fh, offset, size, _, _, _, _ = READ_IN.unpack_from(body)
        entries = self.listing(fh, node_id, offset)
        parts, used, index = [], 0, offset
        # The listing is made for the first request, and a large directory takes several: by a
        # later one a name may hold another file (a lock released and made again), and its entry
        # tied the name to the file gone, leaving the new one nameless (its open, link, unlink:
        # ENOENT). A later request's entries carry the files their names hold now.
        parent = self.path_of(node_id) if offset > 0 else None
        while index < len(entries):
            name, st = entries[index]
            if parent is not None:
                try:
                    st = os.lstat(parent + b"/" + name)
                except FileNotFoundError:
                    index += 1
                    continue
            record = self.entry(st) + DIRENT_HEAD.pack(self.id_of(st), index + 1, len(name), stat.S_IFMT(st.st_mode) >> 12) + name
            record += b"\0" * (-len(record) % 8)
            if used + len(record) > size:
                break
            parts.append(record)
            used += len(record)
            self.add_link(self.id_of(st), node_id, name)
            index += 1
        self.reply(unique, "readdir", self.listing_delay(offset, index), b"".join(parts))

    def readdir(self, unique, node_id, body, caller):
        fh, offset, size, _, _, _, _ = READ_IN.unpack_from(body)
        entries = self.listing(fh, node_id, offset)
        parts, used, index = [], 0, offset
        while index < len(entries):
            name, st = entries[index]
            record = DIRENT_HEAD.pack(self.id_of(st), index + 1, len(name), stat.S_IFMT(st.st_mode) >> 12) + name
            record += b"\0" * (-len(record) % 8)
            if used + len(record) > size:
                break
            parts.append(record)
            used += len(record)
            index += 1
        self.reply(unique, "readdir", self.listing_delay(offset, index), b"".join(parts))


def fusermount(mountpoint, options):
    """Mounts with fusermount3 (as libfuse does) and returns (the /dev/fuse fd, the socket
    that keeps auto_unmount armed: fusermount3 unmounts when it closes)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = dict(os.environ, _FUSE_COMMFD=str(theirs.fileno()))
    try:
        subprocess.Popen(["fusermount3", "-o", options, "--", mountpoint], env=env, pass_fds=[theirs.fileno()])
    except FileNotFoundError:
        sys.exit("latencyfs: fusermount3 is missing (apt-get install -y fuse3)")
    theirs.close()
    _, fds, _, _ = socket.recv_fds(ours, 1, 1)
    if not fds:
        sys.exit("latencyfs: fusermount3 could not mount %s" % mountpoint)
    return fds[0], ours


def unmount(mountpoint):
    subprocess.run(["fusermount3", "-u", "-z", "--", mountpoint], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def mount(args):
    source = os.path.realpath(args.source)
    mountpoint = os.path.realpath(args.mountpoint)
    if not os.path.isdir(source):
        sys.exit("latencyfs: %s is not a directory" % source)
    if not os.path.exists("/dev/fuse"):
        sys.exit("latencyfs: /dev/fuse is missing (no FUSE in this kernel or container)")
    if args.exit_with_parent:
        parent = os.getppid()
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            sys.exit("latencyfs: parent already gone")
    os.umask(0)  # the kernel applied the caller's umask already
    counters = Counters()
    if args.stats:
        counters.snapshot(args.stats)
    stop = threading.Event()
    wake_read, wake_write = os.pipe()

    def on_signal(signum, frame):
        if signum == signal.SIGUSR1:
            if args.stats:
                counters.snapshot(args.stats)
            return
        stop.set()

    for signum in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    access_point = None
    if args.access_point is not None:
        try:
            access_point = tuple(int(part) for part in args.access_point.split(":"))
        except ValueError:
            access_point = ()
        if len(access_point) != 2 or min(access_point) < 0:
            sys.exit("latencyfs: --access-point takes UID:GID (two numbers)")
        if os.geteuid() != 0:
            sys.exit("latencyfs: --access-point needs the daemon to run as root")
    permissions = "allow_other" if access_point else "default_permissions"
    options = "fsname=latencyfs:%s,subtype=latencyfs,%s,auto_unmount" % (source.replace(",", "_"), permissions)
    fd, keep_alive = fusermount(mountpoint, options)
    fs = LatencyFS(fd, source, args.delay_ms / 1000.0, args.bandwidth_mib * 1024 * 1024, args.cache_s, counters, access_point)
    try:
        fs.serve(stop.is_set, wake_read)
    finally:
        unmount(mountpoint)
        os.close(fd)
        keep_alive.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    m = commands.add_parser("mount", help="mount SOURCE at MOUNTPOINT and serve it (foreground)")
    m.add_argument("source")
    m.add_argument("mountpoint")
    m.add_argument("--delay-ms", type=float, default=1.0, help="delay per request (default 1 ms)")
    m.add_argument("--bandwidth-mib", type=float, default=0.0, help="MiB/s for bytes read and written back, on top of the delay (default 0: not modelled)")
    m.add_argument("--cache-s", type=float, default=1.0, help="how long the kernel may cache entries and attributes (default 1 s)")
    m.add_argument("--stats", help="file that SIGUSR1 fills with the request counters (JSON)")
    m.add_argument("--exit-with-parent", action="store_true", help="unmount and exit when the parent process dies")
    m.add_argument("--access-point", metavar="UID:GID", help="act as an EFS access point with that user: every entry reports it, every new entry is made its, every caller may do what it may (the daemon must run as root)")
    args = parser.parse_args()
    mount(args)


if __name__ == "__main__":
    main()
