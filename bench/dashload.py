#!/usr/bin/env python3
"""bench/dashload.py: N open dashboards, as web/static/app.js polls, for bench/web.sh.

  dashload.py login URL PASSWORD N SESSIONS   log in N times (one session per
                                              dashboard, as N browsers would), write
                                              the cookies to SESSIONS
  dashload.py poll URL SESSIONS N OUT         open N dashboards until SIGTERM, then
                                              write what they saw to OUT
  dashload.py summary FILE                    medians, spread and ratios of the puts
                                              bench/web.sh recorded in FILE

What one dashboard does (web/static/app.js): at page load GET /, /app.css, /app.js, /favicon.svg
and /api/v1/session; then three pollers, each waiting its interval after its previous
answer before asking again (POLL_MS: status every 2 s, throughput every 5 s, events
every 3 s with ?since= the last sequence seen), each on a keep-alive connection as a
browser keeps them. The intervals are read from app.js itself, so the bench follows
the page. Logging in (PBKDF2) is done once, before any measurement.
"""
import http.client
import json
import re
import signal
import statistics
import sys
import threading
import time
import urllib.parse


def conn_for(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def poll_intervals(app_js):
    m = re.search(r"const POLL_MS = \{([^}]*)\}", app_js)
    if not m:
        raise SystemExit("dashload.py: no POLL_MS in app.js")
    ms = dict(re.findall(r"(\w+):\s*(\d+)", m.group(1)))
    return {k: int(v) / 1000.0 for k, v in ms.items()}


def login(url, password, n, out):
    sessions = []
    for _ in range(n):
        c = conn_for(url)
        body = json.dumps({"password": password})
        c.request("POST", "/api/v1/login", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        data = json.loads(r.read() or b"{}")
        cookie = r.getheader("Set-Cookie") or ""
        m = re.match(r"(bks_session=[0-9a-f]+)", cookie)
        if r.status != 200 or not m:
            raise SystemExit("dashload.py: login failed: %d %s" % (r.status, data))
        sessions.append({"cookie": m.group(1), "csrf": data.get("csrf", "")})
        c.close()
    with open(out, "w") as f:
        json.dump(sessions, f)


class Stats:
    def __init__(self):
        self.mu = threading.Lock()
        self.lat = {}  # path -> [seconds]
        self.bad = 0
        self.errors = []

    def add(self, path, secs, status):
        with self.mu:
            self.lat.setdefault(path, []).append(secs)
            if status // 100 != 2:
                self.bad += 1
                if len(self.errors) < 5:
                    self.errors.append("%s: HTTP %d" % (path, status))


class Dashboard:
    def __init__(self, url, cookie, stats, stop):
        self.url, self.cookie, self.stats, self.stop = url, cookie, stats, stop
        self.next_event = 0

    def get(self, c, path):
        t0 = time.monotonic()
        c.request("GET", path, headers={"Cookie": self.cookie, "Cache-Control": "no-store"})
        r = c.getresponse()
        body = r.read()
        key = path.split("?")[0]
        self.stats.add(key, time.monotonic() - t0, r.status)
        return r.status, body

    def page_load(self):
        c = conn_for(self.url)
        app_js = ""
        for p in ("/", "/app.css", "/app.js", "/favicon.svg", "/api/v1/session"):
            st, body = self.get(c, p)
            if p == "/app.js":
                app_js = body.decode("utf-8", "replace")
        c.close()
        return poll_intervals(app_js)

    def poller(self, name, every):
        c = conn_for(self.url)
        while not self.stop.is_set():
            try:
                if name == "status":
                    self.get(c, "/api/v1/status")
                elif name == "throughput":
                    self.get(c, "/api/v1/throughput")
                elif name == "events":
                    st, body = self.get(c, "/api/v1/events?since=%d" % self.next_event)
                    if st == 200:
                        self.next_event = json.loads(body).get("next", self.next_event)
            except (OSError, http.client.HTTPException) as e:
                with self.stats.mu:
                    self.stats.bad += 1
                    if len(self.stats.errors) < 5:
                        self.stats.errors.append("%s: %s" % (name, e))
                c.close()
                c = conn_for(self.url)
            self.stop.wait(every)
        c.close()


def poll(url, sessions_file, n, out):
    with open(sessions_file) as f:
        sessions = json.load(f)[:n]
    stats = Stats()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads = []
    t0 = time.monotonic()
    for s in sessions:
        d = Dashboard(url, s["cookie"], stats, stop)
        for name, every in d.page_load().items():
            t = threading.Thread(target=d.poller, args=(name, every), daemon=True)
            t.start()
            threads.append(t)
    print("ready", flush=True)
    while not stop.is_set():
        stop.wait(0.2)
    for t in threads:
        t.join(timeout=35)
    secs = time.monotonic() - t0
    alls = sorted(x for v in stats.lat.values() for x in v)
    res = {
        "dashboards": len(sessions),
        "seconds": secs,
        "requests": len(alls),
        "by_path": {k: len(v) for k, v in sorted(stats.lat.items())},
        "max_ms_by_path": {k: 1000 * max(v) for k, v in sorted(stats.lat.items())},
        "non_2xx": stats.bad,
        "errors": stats.errors,
        "p50_ms": 1000 * alls[len(alls) // 2] if alls else 0,
        "p99_ms": 1000 * alls[min(len(alls) - 1, int(len(alls) * 0.99))] if alls else 0,
        "max_ms": 1000 * alls[-1] if alls else 0,
    }
    with open(out, "w") as f:
        json.dump(res, f)


def summary(path):
    """FILE: one line a put, 'kind seconds daemon_cpu_seconds' (kind solo or load)."""
    rows = [l.split() for l in open(path) if l.strip()]
    solo = [float(r[1]) for r in rows if r[0] == "solo"]
    load = [float(r[1]) for r in rows if r[0] == "load"]
    csolo = [float(r[2]) for r in rows if r[0] == "solo"]
    cload = [float(r[2]) for r in rows if r[0] == "load"]
    # Each loaded put against the solo puts on either side of it (S L S L ... S).
    pairs = [l / ((solo[i] + solo[i + 1]) / 2 if i + 1 < len(solo) else solo[i])
             for i, l in enumerate(load)]
    ms, ml = statistics.median(solo), statistics.median(load)
    print("pairs: %d (and %d solo puts)" % (len(pairs), len(solo)))
    print("ingest_alone_seconds: %.3f (median; %s)" % (ms, " ".join("%.2f" % x for x in solo)))
    print("ingest_loaded_seconds: %.3f (median; %s)" % (ml, " ".join("%.2f" % x for x in load)))
    print("pair_ratios: %s (median %.3f, min %.3f, max %.3f)" %
          (" ".join("%.3f" % x for x in pairs), statistics.median(pairs), min(pairs),
           max(pairs)))
    print("daemon_cpu_alone_seconds: %.3f (median)" % statistics.median(csolo))
    print("daemon_cpu_loaded_seconds: %.3f (median)" % statistics.median(cload))
    print("daemon_cpu_ratio: %.3f" % (statistics.median(cload) / statistics.median(csolo)))
    print("ingest_slowdown: %.3f" % (ml / ms))


def main(argv):
    if len(argv) >= 6 and argv[1] == "login":
        login(argv[2], argv[3], int(argv[4]), argv[5])
    elif len(argv) >= 6 and argv[1] == "poll":
        poll(argv[2], argv[3], int(argv[4]), argv[5])
    elif len(argv) >= 3 and argv[1] == "summary":
        summary(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
