#!/usr/bin/python3
"""libtorrent's view of torrents and magnet links, as JSON, for tests/interop.rs.

Run with the system Python (Debian package python3-libtorrent):

    lt_tool.py info FILE.torrent
    lt_tool.py create SOURCE OUT.torrent [--v1-only] [--piece-length N] [--tracker URL]...
    lt_tool.py magnet-parse URI
    lt_tool.py make-magnet FILE.torrent

Every subcommand prints one JSON object on stdout.
"""

import argparse
import json
import os
import sys

try:
    import libtorrent as lt
except ImportError as error:
    sys.stderr.write(
        "lt_tool.py: cannot import libtorrent (%s); install the Debian package "
        "python3-libtorrent\n" % error
    )
    sys.exit(3)


def hex_or_none(sha):
    """Hex of a sha1_hash/sha256_hash, or None when it is all zeros (not present)."""
    if sha is None or sha.is_all_zeros():
        return None
    return str(sha)


def info_json(ti):
    fs = ti.files()
    files = []
    for i in range(fs.num_files()):
        files.append(
            {
                "path": fs.file_path(i),
                "size": fs.file_size(i),
                "pad": bool(fs.file_flags(i) & lt.file_storage.flag_pad_file),
            }
        )
    hashes = ti.info_hashes()
    return {
        "libtorrent_version": lt.__version__,
        "info_hash_v1": hex_or_none(hashes.v1),
        "info_hash_v2": hex_or_none(hashes.v2),
        "name": ti.name(),
        "total_size": ti.total_size(),
        "piece_length": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "num_files": fs.num_files(),
        "files": files,
        "private": ti.priv(),
        "trackers": [t.url for t in ti.trackers()],
    }


def cmd_info(args):
    return info_json(lt.torrent_info(args.file))


def cmd_create(args):
    source = os.path.abspath(args.source)
    fs = lt.file_storage()
    lt.add_files(fs, source)
    if fs.num_files() == 0:
        raise SystemExit("lt_tool.py create: no files under %s" % source)
    flags = lt.create_torrent.v1_only if args.v1_only else 0
    ct = lt.create_torrent(fs, args.piece_length, flags)
    for tier, url in enumerate(args.tracker):
        ct.add_tracker(url, tier)
    ct.set_creator("libtorrent %s (shoal interop test)" % lt.__version__)
    lt.set_piece_hashes(ct, os.path.dirname(source))
    data = lt.bencode(ct.generate())
    with open(args.out, "wb") as out:
        out.write(data)
    ti = lt.torrent_info(args.out)
    result = info_json(ti)
    if args.v1_only and (result["info_hash_v2"] is not None or ti.info_hashes().has_v2()):
        raise SystemExit("lt_tool.py create --v1-only: libtorrent made a v2 torrent anyway")
    return result


def cmd_magnet_parse(args):
    atp = lt.parse_magnet_uri(args.uri)
    return {
        "info_hash_v1": hex_or_none(atp.info_hashes.v1),
        "info_hash_v2": hex_or_none(atp.info_hashes.v2),
        "name": atp.name,
        "trackers": list(atp.trackers),
        "peers": ["%s:%d" % (ip, port) for ip, port in atp.peers],
    }


def cmd_make_magnet(args):
    ti = lt.torrent_info(args.file)
    return {"magnet": lt.make_magnet_uri(ti)}


def main():
    parser = argparse.ArgumentParser(prog="lt_tool.py")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info")
    p.add_argument("file")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("create")
    p.add_argument("source")
    p.add_argument("out")
    p.add_argument("--v1-only", action="store_true")
    p.add_argument("--piece-length", type=int, default=0)
    p.add_argument("--tracker", action="append", default=[])
    p.set_defaults(run=cmd_create)

    p = sub.add_parser("magnet-parse")
    p.add_argument("uri")
    p.set_defaults(run=cmd_magnet_parse)

    p = sub.add_parser("make-magnet")
    p.add_argument("file")
    p.set_defaults(run=cmd_make_magnet)

    args = parser.parse_args()
    json.dump(args.run(args), sys.stdout, ensure_ascii=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
