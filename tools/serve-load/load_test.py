#!/usr/bin/env python3
"""A bounded load test of a running `chatterstream serve` over loopback (the standard library only).

    tools/serve-load/load_test.py --url http://127.0.0.1:8080 --clients 16 --requests 64 [--pid PID] [--api-key KEY]

`--clients` threads send `--requests` POST /v1/audio/speech requests in all (response_format pcm),
cycling over `--variants` (text, seed) pairs. Every answer must be complete (a 200 whose chunked body
ended properly) and unmixed (requests with the same text and seed answer the same bytes, different
ones differ). Prints one JSON object: time to first byte p50/p95/max, total time p50/p95, requests/s,
the server's RSS before and after (with --pid, from /proc), and the checks' results; exits 1 when a
check fails. The figures in BENCHMARKS.md come from this script.
"""
import argparse
import hashlib
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse


def rss_mib(pid):
    if not pid:
        return None
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--pid", type=int)
    parser.add_argument("--api-key")
    parser.add_argument("--text", default="The quick brown fox jumps over the lazy dog, variant {i}.")
    parser.add_argument("--max-tokens", type=int, default=0, help="max_tokens per request (0: the server's default)")
    args = parser.parse_args()
    target = urllib.parse.urlparse(args.url)
    rss_before = rss_mib(args.pid)
    lock = threading.Lock()
    results = []
    next_index = [0]

    def worker():
        while True:
            with lock:
                if next_index[0] >= args.requests:
                    return
                index = next_index[0]
                next_index[0] += 1
            variant = index % args.variants
            body = {"model": "tts-1", "input": args.text.format(i=variant), "voice": "alloy",
                    "response_format": "pcm", "seed": 1000 + variant}
            if args.max_tokens:
                body["max_tokens"] = args.max_tokens
            headers = {"Content-Type": "application/json"}
            if args.api_key:
                headers["Authorization"] = f"Bearer {args.api_key}"
            connection = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=600)
            started = time.monotonic()
            first_byte = None
            status, digest, size, error = None, None, 0, None
            try:
                connection.request("POST", "/v1/audio/speech", body=json.dumps(body), headers=headers)
                response = connection.getresponse()
                status = response.status
                hasher = hashlib.sha256()
                while True:
                    piece = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
                    if not piece:
                        break
                    if first_byte is None:
                        first_byte = time.monotonic() - started
                    hasher.update(piece)
                    size += len(piece)
                digest = hasher.hexdigest()
            except Exception as exc:  # an incomplete chunked body raises IncompleteRead
                error = repr(exc)
            finally:
                connection.close()
            with lock:
                results.append({"index": index, "variant": variant, "status": status, "ttfb": first_byte,
                                "total": time.monotonic() - started, "bytes": size, "sha256": digest, "error": error})

    wall = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - wall
    rss_after = rss_mib(args.pid)

    complete = [r for r in results if r["status"] == 200 and r["error"] is None and r["bytes"] > 0]
    by_variant = {}
    for r in complete:
        by_variant.setdefault(r["variant"], set()).add(r["sha256"])
    unmixed = all(len(hashes) == 1 for hashes in by_variant.values()) and \
        len({next(iter(h)) for h in by_variant.values()}) == len(by_variant)
    ttfb = [r["ttfb"] for r in complete]
    total = [r["total"] for r in complete]
    report = {
        "clients": args.clients, "requests": args.requests, "variants": args.variants,
        "complete": len(complete), "failed": [r for r in results if r not in complete],
        "unmixed": unmixed,
        "ttfb_s": {"p50": percentile(ttfb, 50), "p95": percentile(ttfb, 95), "max": max(ttfb) if ttfb else None},
        "total_s": {"p50": percentile(total, 50), "p95": percentile(total, 95)},
        "requests_per_s": len(complete) / wall if wall > 0 else None,
        "wall_s": wall,
        "audio_bytes_mean": statistics.mean(r["bytes"] for r in complete) if complete else 0,
        "rss_mib": {"before": rss_before, "after": rss_after},
    }
    print(json.dumps(report, indent=2))
    sys.exit(0 if len(complete) == args.requests and unmixed else 1)


if __name__ == "__main__":
    main()
