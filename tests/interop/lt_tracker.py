#!/usr/bin/python3
"""Two libtorrent sessions that find each other only through an HTTP tracker, for
tests/tracker_interop.rs.

Run with the system Python (Debian package python3-libtorrent):

    lt_tracker.py --tracker URL --source PATH --dest DIR --torrent OUT.torrent
                  [--piece-length N] [--time-limit SECS]

It makes a v1 torrent of PATH (a file or a directory) announcing to URL, seeds it from PATH's
directory in one session and downloads it into DIR in a second session. Both sessions listen on
127.0.0.1 only, with DHT, local service discovery, peer exchange (no ut_pex plugin, and
`disable_pex` on the torrents), UPnP and NAT-PMP off, and no peer is ever added by hand: the
downloader can only learn the seeder's address from the tracker.

When the download is complete and byte-identical, it prints one JSON line, for example
{"ok": true, "seconds": 1.2, "peers_from_tracker": 1, ...}, then waits for a line (or EOF) on
stdin so the caller can look at the tracker while both peers are in the swarm; then it stops
both torrents (announcing `stopped`) and prints a second JSON line {"stopped": true, ...}.

On any failure it prints one JSON line with "ok": false and an "error", and exits non-zero. The
whole run is bounded by --time-limit (SIGALRM), whatever happens.
"""

import argparse
import hashlib
import json
import os
import signal
import sys
import time

try:
    import libtorrent as lt
except ImportError as error:
    sys.stderr.write(
        "lt_tracker.py: cannot import libtorrent (%s); install the Debian package "
        "python3-libtorrent\n" % error
    )
    sys.exit(3)

STARTED = time.monotonic()
# The last interesting alerts of both sessions, reported on failure.
LOG = []
LOG_MAX = 80


def emit(obj):
    sys.stdout.write(json.dumps(obj, ensure_ascii=True, sort_keys=True) + "\n")
    sys.stdout.flush()


def log(who, alert):
    LOG.append("%.2fs %s %s: %s" % (time.monotonic() - STARTED, who, alert.what(), alert.message()))
    del LOG[:-LOG_MAX]


def fail(message, **extra):
    result = {"ok": False, "error": message, "log": LOG}
    result.update(extra)
    emit(result)
    sys.stdout.flush()
    os._exit(1)


def on_alarm(_signum, _frame):
    fail("time limit reached after %.1fs" % (time.monotonic() - STARTED))


def settings():
    return {
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        # Plain TCP keeps the transfer simple on loopback.
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        # Both peers share 127.0.0.1; the tracker is on 127.0.0.1 too.
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "apply_ip_filter_to_trackers": False,
        "ssrf_mitigation": False,
        "stop_tracker_timeout": 5,
        "tracker_completion_timeout": 10,
        "tracker_receive_timeout": 10,
        "alert_mask": lt.alert.category_t.all_categories,
        "user_agent": "libtorrent/%s (shoal tracker interop test)" % lt.__version__,
    }


def new_session():
    # flags=0: no default plugins, so no ut_pex (and no ut_metadata or smart_ban).
    return lt.session(settings(), 0)


def torrent_flags():
    flags = lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
    flags |= lt.torrent_flags.disable_pex
    # Not auto-managed: the queue must not hold either torrent back.
    return flags


def make_torrent(source, out, tracker, piece_length):
    fs = lt.file_storage()
    lt.add_files(fs, source)
    if fs.num_files() == 0:
        fail("no files under %s" % source)
    ct = lt.create_torrent(fs, piece_length, lt.create_torrent.v1_only)
    ct.add_tracker(tracker, 0)
    ct.set_creator("libtorrent %s (shoal tracker interop test)" % lt.__version__)
    lt.set_piece_hashes(ct, os.path.dirname(source))
    with open(out, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    return lt.torrent_info(out)


def file_digests(root, ti):
    fs = ti.files()
    digests = {}
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        path = fs.file_path(i)
        h = hashlib.sha256()
        try:
            with open(os.path.join(root, path), "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except OSError as error:
            digests[path] = "unreadable: %s" % error
            continue
        digests[path] = h.hexdigest()
    return digests


class Peer:
    """One session with one torrent, and what its alerts said."""

    def __init__(self, name, ti, save_path):
        self.name = name
        self.session = new_session()
        params = lt.add_torrent_params()
        params.ti = ti
        params.save_path = save_path
        params.flags = torrent_flags()
        self.handle = self.session.add_torrent(params)
        self.tracker_replies = []  # num_peers of each successful announce
        self.tracker_errors = []
        self.finished = False
        self.sources = set()
        self.peers_seen = set()

    def pump(self):
        for alert in self.session.pop_alerts():
            if isinstance(alert, lt.tracker_reply_alert):
                self.tracker_replies.append(alert.num_peers)
                log(self.name, alert)
            elif isinstance(alert, (lt.tracker_error_alert, lt.tracker_warning_alert)):
                self.tracker_errors.append(alert.message())
                log(self.name, alert)
            elif isinstance(alert, lt.torrent_finished_alert):
                self.finished = True
                log(self.name, alert)
            elif isinstance(
                alert,
                (
                    lt.tracker_announce_alert,
                    lt.peer_connect_alert,
                    lt.peer_disconnected_alert,
                    lt.peer_error_alert,
                    lt.torrent_error_alert,
                    lt.file_error_alert,
                    lt.listen_failed_alert,
                    lt.listen_succeeded_alert,
                    lt.state_changed_alert,
                    lt.hash_failed_alert,
                ),
            ):
                log(self.name, alert)
        for p in self.handle.get_peer_info():
            self.peers_seen.add("%s:%d" % p.ip)
            for flag, label in (
                (lt.peer_info.tracker, "tracker"),
                (lt.peer_info.dht, "dht"),
                (lt.peer_info.pex, "pex"),
                (lt.peer_info.lsd, "lsd"),
                (lt.peer_info.resume_data, "resume_data"),
                # peer_source_flags_t::incoming, which the bindings do not name.
                (getattr(lt.peer_info, "incoming", 0x20), "incoming"),
            ):
                if p.source & flag:
                    self.sources.add(label)

    def status(self):
        s = self.handle.status()
        return {
            "state": str(s.state),
            "progress": s.progress,
            "is_seeding": s.is_seeding,
            "num_peers": s.num_peers,
            "total_done": s.total_done,
            "listen_port": self.session.listen_port(),
        }


def wait_until(peers, condition, what):
    while not condition():
        peers[0].session.wait_for_alert(50)
        for p in peers:
            p.pump()
        if condition():
            break
        for p in peers:
            if p.tracker_errors:
                fail(
                    "%s: tracker error while waiting for %s: %s"
                    % (p.name, what, p.tracker_errors[-1]),
                    status={q.name: q.status() for q in peers},
                )


def main():
    parser = argparse.ArgumentParser(prog="lt_tracker.py")
    parser.add_argument("--tracker", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--dest", required=True)
    parser.add_argument("--torrent", required=True)
    parser.add_argument("--piece-length", type=int, default=0)
    parser.add_argument("--time-limit", type=int, default=60)
    args = parser.parse_args()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.time_limit)

    source = os.path.abspath(args.source)
    ti = make_torrent(source, args.torrent, args.tracker, args.piece_length)
    trackers = [t.url for t in ti.trackers()]
    if trackers != [args.tracker]:
        fail("the torrent's trackers are %r, not [%r]" % (trackers, args.tracker))

    # The seeder announces first (and so is in the swarm before the downloader asks).
    seeder = Peer("seeder", ti, os.path.dirname(source))
    wait_until(
        [seeder],
        lambda: seeder.handle.status().is_seeding and seeder.tracker_replies,
        "the seeder to check its data and announce",
    )
    if seeder.tracker_replies[0] != 0:
        fail("the tracker gave the lone seeder %d peers" % seeder.tracker_replies[0])

    transfer_started = time.monotonic()
    downloader = Peer("downloader", ti, os.path.abspath(args.dest))
    both = [seeder, downloader]
    wait_until(
        both,
        lambda: downloader.finished and downloader.handle.status().is_seeding,
        "the download to finish",
    )
    seconds = time.monotonic() - transfer_started

    expected = file_digests(os.path.dirname(source), ti)
    got = file_digests(os.path.abspath(args.dest), ti)
    status = {p.name: p.status() for p in both}
    result = {
        "ok": expected == got,
        "seconds": round(seconds, 3),
        "total_seconds": round(time.monotonic() - STARTED, 3),
        "peers_from_tracker": downloader.tracker_replies[0] if downloader.tracker_replies else 0,
        "downloader_announces": downloader.tracker_replies,
        "seeder_announces": seeder.tracker_replies,
        "downloader_peer_sources": sorted(downloader.sources),
        "downloader_peers": sorted(downloader.peers_seen),
        "seeder_peer_sources": sorted(seeder.sources),
        "info_hash": str(ti.info_hashes().v1),
        "total_size": ti.total_size(),
        "num_pieces": ti.num_pieces(),
        "status": status,
        "libtorrent_version": lt.__version__,
    }
    if not result["ok"]:
        result["error"] = "downloaded files differ from the source"
        result["expected"] = expected
        result["got"] = got
        result["log"] = LOG
        emit(result)
        os._exit(1)
    emit(result)

    # Both peers stay in the swarm until the caller has looked at the tracker.
    sys.stdin.readline()

    # Removing a torrent announces `stopped`; a session waits for that (up to
    # stop_tracker_timeout) when it is destroyed.
    for p in both:
        p.session.remove_torrent(p.handle)
    removed = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(removed) < len(both):
        for p in both:
            for alert in p.session.pop_alerts():
                if isinstance(alert, lt.torrent_removed_alert):
                    removed.add(p.name)
                if isinstance(
                    alert,
                    (lt.torrent_removed_alert, lt.tracker_error_alert, lt.tracker_announce_alert),
                ):
                    log(p.name, alert)
        time.sleep(0.02)
    for p in both:
        p.handle = None
        p.session = None
    emit({"stopped": True, "removed": sorted(removed), "log": LOG[-12:]})
    signal.alarm(0)


if __name__ == "__main__":
    main()
