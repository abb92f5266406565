#!/usr/bin/env python3
"""Reproductions of issue #13's denial-of-service findings against a running server.

Standard library only. Talks to one address on this machine (default 127.0.0.1:8080); every
loop is bounded in count and time and ends by itself.

  flood    N concurrent wrong sign-ins (default 300) while one real sign-in is timed every
           second; prints the server's resident memory (from /proc, give --pid) before, at the
           peak and after, the real sign-ins' latencies and the flood's status counts.
  stall    opens sockets that send headers and one byte of a declared body, then nothing;
           prints how long the server took to answer (or to close) each.

  python3 tests/tools/abuse_repro.py flood --pid $(pgrep -n aftercare) \
      --email admin@example.org --password '...'
  python3 tests/tools/abuse_repro.py stall --sockets 200

With the server trusting this machine as a proxy (AFTERCARE_TRUSTED_PROXIES=127.0.0.1),
--flood-from and --real-from put the flood and the real sign-in on different networks.
"""

import argparse
import asyncio
import json
import time


def rss_mb(pid):
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def request(host, port, method, path, body=None, timeout=120.0, client=None):
    """One HTTP/1.1 request on a fresh connection; returns (status, seconds, text).

    `client` is sent as X-Forwarded-For (the server must trust this machine as a proxy,
    AFTERCARE_TRUSTED_PROXIES=127.0.0.1, for it to count)."""
    start = time.monotonic()
    payload = b"" if body is None else json.dumps(body).encode()
    forwarded = f"X-Forwarded-For: {client}\r\n" if client else ""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{forwarded}"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.write(head + payload)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
        writer.close()
    except (OSError, asyncio.TimeoutError) as e:
        return (f"error:{type(e).__name__}", time.monotonic() - start, "")
    text = raw.decode(errors="replace")
    status = text.split(" ", 2)[1] if text.startswith("HTTP/") else "?"
    return (status, time.monotonic() - start, text)


async def flood(args):
    host, port = args.host, args.port
    before = rss_mb(args.pid)
    peak = before or 0.0
    stop = asyncio.Event()

    async def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_mb(args.pid) or 0.0)
            await asyncio.sleep(0.2)

    async def real_sign_ins():
        out = []
        while not stop.is_set() and len(out) < 60:
            status, secs, _ = await request(
                host, port, "POST", "/v1/auth/login",
                {"email": args.email, "password": args.password},
                client=args.real_from,
            )
            out.append((status, secs))
            await asyncio.sleep(1.0)
        return out

    sampler = asyncio.create_task(sample())
    real = asyncio.create_task(real_sign_ins())
    await asyncio.sleep(0.5)
    start = time.monotonic()
    wrong = [
        request(host, port, "POST", "/v1/auth/login",
                {"email": f"nobody{i % args.accounts}@example.org", "password": f"wrong-guess-{i}"},
                client=args.flood_from)
        for i in range(args.requests)
    ]
    results = await asyncio.gather(*wrong)
    flood_secs = time.monotonic() - start
    await asyncio.sleep(1.5)
    stop.set()
    real_results = await real
    await sampler
    await asyncio.sleep(2.0)
    after = rss_mb(args.pid)

    counts = {}
    for status, _, _ in results:
        counts[status] = counts.get(status, 0) + 1
    slowest = max(s for _, s, _ in results)
    print(f"flood: {args.requests} concurrent wrong sign-ins on {args.accounts} accounts, done in {flood_secs:.1f} s; "
          f"statuses {dict(sorted(counts.items()))}; slowest answer {slowest:.2f} s")
    if before is not None:
        print(f"RSS: before {before:.0f} MB, peak {peak:.0f} MB, 2 s after {after:.0f} MB")
    ok = [s for st, s in real_results if st == "200"]
    print("real sign-ins during the flood: " + ", ".join(f"{st} {s:.2f}s" for st, s in real_results))
    if ok:
        print(f"real sign-in latency: max {max(ok):.2f} s, median {sorted(ok)[len(ok) // 2]:.2f} s")


async def stall(args):
    host, port = args.host, args.port

    async def one():
        start = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as e:
            return ("connect-error:" + type(e).__name__, time.monotonic() - start)
        head = (
            f"POST /v1/auth/login HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/json\r\nContent-Length: 64\r\n\r\n{"
        ).encode()
        writer.write(head)
        await writer.drain()
        try:
            raw = await asyncio.wait_for(reader.read(4096), args.give_up)
        except asyncio.TimeoutError:
            writer.close()
            return ("no answer", time.monotonic() - start)
        writer.close()
        text = raw.decode(errors="replace")
        status = text.split(" ", 2)[1] if text.startswith("HTTP/") else "closed"
        return (status, time.monotonic() - start)

    results = await asyncio.gather(*[one() for _ in range(args.sockets)])
    counts = {}
    for status, _ in results:
        counts[status] = counts.get(status, 0) + 1
    times = sorted(s for _, s in results)
    print(f"stall: {args.sockets} sockets sent headers and one body byte; "
          f"statuses {counts}; answered after min {times[0]:.2f} s, "
          f"median {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s "
          f"(gave up at {args.give_up:.0f} s)")
    status, secs, _ = await request(host, port, "GET", "/health/ready")
    print(f"/health/ready right after: {status} in {secs:.2f} s")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["flood", "stall"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--pid", type=int, help="the server's process id, for its resident memory")
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--accounts", type=int, default=7, help="how many (unknown) accounts the flood guesses at")
    p.add_argument("--email", default="admin@example.org")
    p.add_argument("--password", default="")
    p.add_argument("--flood-from", help="the flood's client address (sent as X-Forwarded-For)")
    p.add_argument("--real-from", help="the real sign-in's client address (X-Forwarded-For)")
    p.add_argument("--sockets", type=int, default=200)
    p.add_argument("--give-up", type=float, default=60.0)
    args = p.parse_args()
    asyncio.run(flood(args) if args.mode == "flood" else stall(args))


if __name__ == "__main__":
    main()
