#!/usr/bin/env python3
"""Instructions per DNS query, counted by callgrind: repeatable on a busy
machine where bench/dns.py's CPU seconds are not, so it is the A/B measure
for the query path (bench/README.md, "DNS instructions per query").

    cargo build --profile profiling -p levee-dns --example per_query
    python3 bench/dns_callgrind.py [--binary target/profiling/examples/per_query]
                                   [--queries 20000]

The example answers bench/dns.py's zone without sockets (the fleet record
`www` from a live set of one, the static `mail`), so the kernel's share is
left out. Each name is run twice under `valgrind --tool=callgrind`, with
1,000 queries and with 1,000 + --queries; the difference of the two totals
over --queries is one query's cost, without start-up or the first queries
(which fill the stored replies). Each name is measured as the UDP loop
answers it (stored replies replayed) and the full way (`full`: hickory's
decode, the lookup, the encode), which is what every query cost before.
"""
import argparse, os, re, subprocess, tempfile

NAMES = ["www.example.test", "mail.example.test"]
WARM = 1000


def total(binary, name, n, mode):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        binary, name, str(n), mode], check=True, capture_output=True)
        with open(out) as f:
            for line in f:
                m = re.match(r"(?:totals|summary): (\d+)", line)
                if m:
                    return int(m.group(1))
    raise SystemExit(f"no totals from callgrind for {binary}")


def per_query(binary, name, queries, mode):
    return (total(binary, name, WARM + queries, mode) - total(binary, name, WARM, mode)) / queries


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/profiling/examples/per_query")
    ap.add_argument("--queries", type=int, default=20000)
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    print(f"{'query':<20} {'full way':>10} {'replayed':>10} {'replayed/full':>14}  (instructions per query)")
    for name in NAMES:
        full = per_query(binary, name, a.queries, "full")
        fast = per_query(binary, name, a.queries, "replay")
        print(f"{name + ' A':<20} {full:>10.0f} {fast:>10.0f} {fast / full:>14.3f}")


if __name__ == "__main__":
    main()
