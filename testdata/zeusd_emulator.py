#!/usr/bin/env python3
"""An independent zeusd emulator for wattrec's acceptance test.

It speaks the zeusd 0.5 HTTP API described in ../shared/zeusd-protocol.md
(GET /discover, /time, /auth/whoami, /gpu|cpu/stream_power, /gpu|cpu/get_power,
/gpu|cpu/get_cumulative_energy) over TCP or a Unix socket, with the standard
library only. It shares no code with the project's Go simulator.

What it adds for testing:

  --skew-ms        the daemon clock is the true clock plus this offset
  --poll-jitter-ms polls are on a fixed grid of the poll rate, each moved by a
                   seeded random amount up to this (default 0.25); a poll the
                   busy interpreter makes late still reads the devices at its
                   grid time, so only its sending is late
  --drop-every     abruptly close each stream after MIN..MAX events
  --malformed-every  every Nth event, rotate through malformed events (bad JSON,
                   wrong types, null or missing fields, data that is not JSON,
                   comment-only, event:-only and id:-only blocks) and valid
                   events in unusual framing (CRLF, "data:" without a space,
                   an id: field, JSON split over two data: lines, an event
                   split across two writes); only the valid ones are truth
  --truth FILE     JSONL ground truth of every value fully written to a client
  --energy FILE    JSONL exact cumulative energy of every device at every poll
  --outage-ms MS   how long SIGUSR2 takes the daemon down (default 1500)
  --ready FILE     the bound address, written once listening

Truth lines (one per device value, flushed one by one):

  {"kind":"gpu"|"cpu"|"dram","device":i,"daemon_time_ms":d,"true_time_ms":t,
   "power_mw":p,"stream":"gpu"|"cpu","seed":false,"sent_ms":s}

"true_time_ms" is the true wall-clock time (Unix ms, fractional) at which the
value was produced; the event's timestamp_ms is floor(true_time_ms) + skew.
"seed": true marks values served by GET /gpu|cpu/get_power. A value is logged
only after every byte of its event was handed to the kernel; a drop is a
flush followed by shutdown(SHUT_WR), so the kernel still delivers it. Half
the drops first write a truncated event (never valid JSON, never truth).
get_power answers with the latest poll, as zeusd's watch channel does, so a
seed can equal a value the stream also carries.

Other lines have no "kind": {"subscribe":"gpu",...}, {"drop":"gpu",...},
{"paused":true}, {"drained":true}, {"outage":"begin"|"end","true_ms":t,...}.

Energy. Every device's power is a step function of true time that changes
only at polls, so its exact energy is known at every instant:

  GPU       the value polled at t_k holds until the next poll (zeusd streams
            it only when it changes);
  CPU/DRAM  the power over (t_k, t_k+1] is decided at t_k and is constant; the
            value streamed at t_k+1 is that period's average, i.e. the delta
            of the RAPL-like counter over the period divided by its length.

get_cumulative_energy answers with the exact integral up to the moment it
is handled (the counter at the latest poll plus the current power times the
time since), in zeusd's units (GPU mJ, CPU/DRAM µJ, truncated to integers).
--energy logs, after every poll, one line with the exact counters (µJ, not
truncated) of every device of that kind at the poll's true time:

  {"kind":"gpu"|"cpu","true_time_ms":t,"energy_uj":{"gpu:0":e,...}}

(CPU lines carry "cpu:N" and "dram:N" for every package.) Between two lines
of a kind the energy grows linearly, so the exact energy over any [t0, t1)
is a linear interpolation of the counters within the polls around t0 and t1.

Signals: SIGTERM/SIGINT stop cleanly (exit 0). SIGUSR1 pauses the pollers
(no new events, no more drops); once every open stream's kernel send queue
has been empty for 100 ms the emulator logs {"drained":true}, so a test can
stop the client knowing it has received everything that was sent.
SIGUSR2 starts an outage of --outage-ms: every open stream is closed (cleanly,
at once), and every request, streams and get_power included, is answered 503
until it ends; the pollers and the energy counters keep running. Truth gets
{"outage":"begin"} and {"outage":"end"} lines with their true times, and a
{"drop":"gpu"|"cpu","reason":"outage","last_tick_ms":t,...} line per closed
stream, t being the true time of the last poll that stream carried in full.
"""

import argparse
import base64
import fcntl
import hashlib
import hmac
import json
import math
import os
import queue
import random
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIOCOUTQ = 0x5411  # linux: bytes in the send queue not yet acked (TCP) / read (unix)


def now_ms():
    return time.time() * 1000.0


class Truth:
    """Thread-safe JSONL writer; every line is flushed."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.f = open(path, "a", buffering=1) if path else None

    def write(self, objs):
        if self.f is None:
            return
        with self.lock:
            for o in objs:
                self.f.write(json.dumps(o, separators=(",", ":")) + "\n")
            self.f.flush()

    def close(self):
        if self.f is not None:
            with self.lock:
                self.f.close()
                self.f = None


class Tick:
    """One poll of all devices of a kind at one instant."""

    __slots__ = ("true_ms", "daemon_ms", "values", "changed")

    def __init__(self, true_ms, daemon_ms, values, changed):
        self.true_ms = true_ms
        self.daemon_ms = daemon_ms
        self.values = values  # gpu: {id: mw}; cpu: {id: (cpu_mw, dram_mw|None)}
        self.changed = changed  # set of ids whose value differs from the previous tick


class Subscriber:
    def __init__(self, ids):
        self.ids = ids
        self.q = queue.Queue()
        self.sock = None
        self.first = True  # CPU: send every package on the first tick


class Daemon:
    """Device state, pollers and subscribers."""

    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.skew = args.skew_ms
        self.gpus = list(range(args.gpus))
        self.cpus = list(range(args.cpus))
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.lock = threading.Lock()
        self.subs = {"gpu": [], "cpu": []}
        self.latest = {}  # kind -> Tick
        self.truth = Truth(args.truth)
        self.secret = None
        if args.jwt_secret_file:
            with open(args.jwt_secret_file, "rb") as f:
                self.secret = f.read().strip()
        self.groups = [g for g in args.api_groups.split(",") if g]
        # GPU state: a random walk that changes on most polls.
        self.gpu_mw = {i: 60000 + 30000 * i for i in self.gpus}
        self.gpu_energy_mj = {i: 1000000.0 * (i + 1) for i in self.gpus}
        # CPU state: RAPL-style energy counters (µJ); the power of the period
        # after the latest poll is decided at that poll (see the docstring).
        self.cpu_energy_uj = {i: 5e9 * (i + 1) for i in self.cpus}
        self.dram_energy_uj = {i: 1e9 * (i + 1) for i in self.cpus}
        self.cpu_phase = {i: self.rng.random() * 6.28 for i in self.cpus}
        self.cpu_next = {}  # id -> (cpu_mw, dram_mw) from the latest poll to the next
        self.energy = Truth(args.energy)
        self.outage = threading.Event()

    def daemon_ms(self, true_ms):
        return int(math.floor(true_ms)) + self.skew

    # ---- pollers -----------------------------------------------------------

    def poll_gpu(self, true_ms, dt_s):
        values, changed = {}, set()
        for i in self.gpus:
            self.gpu_energy_mj[i] += self.gpu_mw[i] * dt_s
            if self.rng.random() < 0.85:
                step = self.rng.randint(1, 6000) * self.rng.choice((-1, 1))
                self.gpu_mw[i] = min(350000, max(20000, self.gpu_mw[i] + step))
            values[i] = self.gpu_mw[i]
        prev = self.latest.get("gpu")
        for i in self.gpus:
            if prev is None or prev.values[i] != values[i]:
                changed.add(i)
        return Tick(true_ms, self.daemon_ms(true_ms), values, changed)

    def cpu_power(self, i, t_s):
        """Package and DRAM power (integer mW) for a period around t_s."""
        base = 40000 + 25000 * i
        cpu = base + 15000 * math.sin(t_s * 1.7 + self.cpu_phase[i]) + self.rng.randint(-3000, 3000)
        return int(round(cpu)), 8000 + self.rng.randint(0, 4000)

    def poll_cpu(self, true_ms, dt_s):
        values, changed = {}, set()
        half = 0.5 / self.args.cpu_hz
        for i in self.cpus:
            # The period (t - dt, t] had the constant power decided at its
            # start: the counters grow by exactly power x dt, and the value
            # sent is their delta over dt.
            cpu_mw, dram_mw = self.cpu_next[i]
            self.cpu_energy_uj[i] += cpu_mw * dt_s * 1000.0
            self.dram_energy_uj[i] += dram_mw * dt_s * 1000.0
            values[i] = (cpu_mw, dram_mw if i == 0 else None)
            self.cpu_next[i] = self.cpu_power(i, true_ms / 1000.0 + half)
        prev = self.latest.get("cpu")
        for i in self.cpus:
            if prev is None or prev.values[i] != values[i]:
                changed.add(i)
        return Tick(true_ms, self.daemon_ms(true_ms), values, changed)

    def energy_line(self, kind, tick):
        """The exact counters at a poll, in µJ (call with the lock held)."""
        if kind == "gpu":
            e = {"gpu:%d" % i: self.gpu_energy_mj[i] * 1000.0 for i in self.gpus}
        else:
            e = {}
            for i in self.cpus:
                e["cpu:%d" % i] = self.cpu_energy_uj[i]
                e["dram:%d" % i] = self.dram_energy_uj[i]
        return {"kind": kind, "true_time_ms": tick.true_ms, "energy_uj": e}

    def energy_now(self, kind, i):
        """The exact cumulative energy of a device now: GPU in mJ, CPU as
        (package µJ, DRAM µJ). Call with the lock held."""
        now = time.time()
        self.advance(kind, now)
        dt = now - self.latest[kind].true_ms / 1000.0
        if kind == "gpu":
            return self.gpu_energy_mj[i] + self.gpu_mw[i] * dt
        cpu_mw, dram_mw = self.cpu_next[i]
        return (self.cpu_energy_uj[i] + cpu_mw * dt * 1000.0,
                self.dram_energy_uj[i] + dram_mw * dt * 1000.0)

    def advance(self, kind, now_s):
        """Make every poll of kind due by now_s (call with the lock held).

        Polls happen at their grid times whatever this process is doing: a
        poll that a busy interpreter makes late still reads the devices at
        its grid time, so the data is exact and only its sending is late.
        The poller thread sends the polls made here; a counter or get_power
        read makes them too, so that it sees the state at its own time."""
        if self.paused.is_set():
            return
        poll = self.poll_gpu if kind == "gpu" else self.poll_cpu
        while self.next_t[kind] <= now_s:
            t = self.next_t[kind]
            dt = t - self.latest[kind].true_ms / 1000.0
            tick = poll(t * 1000.0, dt)
            self.latest[kind] = tick
            self.pending[kind].append((tick, self.energy_line(kind, tick)))
            self.schedule(kind)

    def schedule(self, kind):
        """Set the grid time of kind's next poll: one period after the
        previous one on the grid, plus --poll-jitter-ms of seeded jitter."""
        hz = self.args.gpu_hz if kind == "gpu" else self.args.cpu_hz
        self.polls[kind] += 1
        jitter = self.jitter[kind].uniform(-1.0, 1.0) * self.args.poll_jitter_ms / 1000.0
        t = self.grid_t0 + self.polls[kind] / hz + jitter
        # Each poll has its own millisecond: two polls with one timestamp
        # are not two events.
        prev = self.latest[kind].true_ms / 1000.0
        if math.floor(t * 1000.0) <= math.floor(prev * 1000.0):
            t = (math.floor(prev * 1000.0) + 1.0) / 1000.0
        self.next_t[kind] = t

    def poller(self, kind):
        """Wake at each poll's grid time, make the polls due and send them."""
        while not self.stop.is_set():
            with self.lock:
                nxt = self.next_t[kind]
            delay = nxt - time.time()
            if delay > 0:
                self.stop.wait(delay)
                if self.stop.is_set():
                    return
            if self.paused.is_set():
                self.stop.wait(0.01)
                continue
            with self.lock:
                self.advance(kind, time.time())
                made, self.pending[kind] = self.pending[kind], []
                subs = list(self.subs[kind])
            for tick, _ in made:
                for s in subs:
                    s.q.put(tick)
            self.energy.write([line for _, line in made])

    def start(self):
        # One tick before listening, so get_power always has a value.
        t = time.time()
        for i in self.cpus:
            self.cpu_next[i] = self.cpu_power(i, t - 0.5 / self.args.cpu_hz)
        self.latest["gpu"] = self.poll_gpu(t * 1000.0, 0.0)
        self.latest["cpu"] = self.poll_cpu(t * 1000.0, 1.0 / self.args.cpu_hz)
        self.energy.write([self.energy_line("gpu", self.latest["gpu"]), self.energy_line("cpu", self.latest["cpu"])])
        self.grid_t0 = t
        self.polls = {"gpu": 0, "cpu": 0}
        self.next_t = {}
        self.pending = {"gpu": [], "cpu": []}
        self.jitter = {k: random.Random("%s-%s" % (self.args.seed, k)) for k in ("gpu", "cpu")}
        for kind in ("gpu", "cpu"):
            self.schedule(kind)
        self.threads = [threading.Thread(target=self.poller, args=(k,), daemon=True) for k in ("gpu", "cpu")]
        for th in self.threads:
            th.start()

    def subscribe(self, kind, ids):
        s = Subscriber(ids)
        with self.lock:
            self.subs[kind].append(s)
        return s

    def unsubscribe(self, kind, s):
        with self.lock:
            if s in self.subs[kind]:
                self.subs[kind].remove(s)

    def wait_drained(self):
        """After a pause: log {"drained":true} once every stream's send queue
        has stayed empty for 100 ms."""
        quiet_since = None
        while not self.stop.is_set():
            with self.lock:
                subs = self.subs["gpu"] + self.subs["cpu"]
            empty = True
            for s in subs:
                if not s.q.empty():
                    empty = False
                    break
                sock = s.sock
                if sock is None:
                    continue
                try:
                    buf = fcntl.ioctl(sock.fileno(), SIOCOUTQ, b"\0\0\0\0")
                    if struct.unpack("i", buf)[0] != 0:
                        empty = False
                        break
                except OSError:
                    pass  # closed meanwhile: nothing left to deliver
            t = time.monotonic()
            if not empty:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = t
            elif t - quiet_since >= 0.1:
                self.truth.write([{"drained": True, "sent_ms": round(now_ms(), 3)}])
                return
            self.stop.wait(0.01)

    # ---- auth -------------------------------------------------------------

    def check_token(self, header):
        """Returns (claims, None) or (None, (status, message))."""
        if not header or not header.startswith("Bearer "):
            return None, (401, "Missing bearer token")
        token = header[len("Bearer "):].strip()
        parts = token.split(".")
        if len(parts) != 3:
            return None, (401, "Invalid token")
        try:
            hdr = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except (ValueError, UnicodeDecodeError):
            return None, (401, "Invalid token")
        if not isinstance(hdr, dict) or hdr.get("alg") != "HS256" or not isinstance(claims, dict):
            return None, (401, "Invalid token")
        want = hmac.new(self.secret, (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(want, sig):
            return None, (401, "Invalid token signature")
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, (int, float)) or time.time() >= exp):
            return None, (401, "Token expired")
        scopes = claims.get("scopes")
        if not isinstance(scopes, list) or not isinstance(claims.get("sub"), str):
            return None, (401, "Invalid token claims")
        return claims, None


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class BadRequest(Exception):
    pass


def parse_ids(raw, available, what):
    """Parse "0,2" for gpu_ids/cpu_ids against the available indices."""
    if raw is None:
        return list(available)
    if raw.strip() == "":
        raise BadRequest(f"Empty {what} indices")
    ids = []
    for part in raw.split(","):
        part = part.strip()
        if not part.isdigit():
            raise BadRequest(f"Invalid {what} index: {part!r}")
        ids.append(int(part))
    unknown = sorted(set(i for i in ids if i not in available))
    if unknown:
        raise BadRequest(f"Unknown {what} indices: {unknown}. Available: {list(available)}")
    return sorted(set(ids))


def parse_bool(raw, name):
    if raw is None:
        return False
    if raw in ("true", "false"):
        return raw == "true"
    raise BadRequest(f"Invalid boolean for {name}: {raw!r}")


ROUTES = {
    # path: (api group or None, allowed query params)
    "/discover": (None, ()),
    "/time": (None, ()),
    "/auth/whoami": ("auth", ()),
    "/gpu/stream_power": ("gpu-read", ("gpu_ids",)),
    "/cpu/stream_power": ("cpu-read", ("cpu_ids",)),
    "/gpu/get_power": ("gpu-read", ("gpu_ids",)),
    "/cpu/get_power": ("cpu-read", ("cpu_ids",)),
    "/gpu/get_cumulative_energy": ("gpu-read", ("gpu_ids",)),
    "/cpu/get_cumulative_energy": ("cpu-read", ("cpu_ids", "cpu", "dram")),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "zeusd-emulator/0.5"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet; a Unix socket has no client address
        pass

    def version_string(self):
        return self.server_version

    @property
    def d(self):
        return self.server.daemon

    def send_json(self, status, obj, headers=()):
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        # Headers and body in one write, so the reply is one segment.
        self._headers_buffer.append(b"\r\n" + body)
        self.flush_headers()

    def do_GET(self):
        if self.d.outage.is_set():
            self.send_json(503, {"error": "Service unavailable (emulated outage)"})
            return
        url = urllib.parse.urlsplit(self.path)
        route = ROUTES.get(url.path)
        if route is None:
            self.send_json(404, {"error": f"No route for {url.path}"})
            return
        group, allowed = route
        try:
            q = urllib.parse.parse_qs(url.query, keep_blank_values=True, strict_parsing=False)
        except ValueError:
            self.send_json(400, {"error": "Malformed query string"})
            return

        # Auth (middleware runs before query extraction, as in actix).
        claims = None
        if group is not None:
            if group == "auth":
                if self.d.secret is None:
                    self.send_json(404, {"error": "Authentication is not enabled on this server."})
                    return
            elif group not in self.d.groups:
                self.send_json(404, {"error": f"API group '{group}' is not enabled on this server."})
                return
            if self.d.secret is not None:
                claims, err = self.d.check_token(self.headers.get("Authorization"))
                if err is not None:
                    self.send_json(err[0], {"error": err[1]},
                                   headers=[("WWW-Authenticate", 'Bearer realm="zeusd"')])
                    return
                if group != "auth" and group not in claims["scopes"]:
                    self.send_json(403, {"error": f"Token lacks scope '{group}'"})
                    return

        # Query parameters.
        for k, v in q.items():
            if k not in allowed:
                self.send_json(400, {"error": f"Unknown query parameter: {k}"})
                return
            if len(v) != 1:
                self.send_json(400, {"error": f"Query parameter given more than once: {k}"})
                return
        p = {k: v[0] for k, v in q.items()}
        try:
            if url.path == "/discover":
                self.discover()
            elif url.path == "/time":
                self.send_json(200, {"timestamp_ms": self.d.daemon_ms(now_ms())})  # read late: after parsing
            elif url.path == "/auth/whoami":
                out = {"sub": claims["sub"], "scopes": claims["scopes"]}
                if claims.get("exp") is not None:
                    out["exp"] = claims["exp"]
                self.send_json(200, out)
            elif url.path == "/gpu/stream_power":
                self.stream("gpu", parse_ids(p.get("gpu_ids"), self.d.gpus, "GPU"))
            elif url.path == "/cpu/stream_power":
                self.stream("cpu", parse_ids(p.get("cpu_ids"), self.d.cpus, "CPU"))
            elif url.path == "/gpu/get_power":
                self.get_power("gpu", parse_ids(p.get("gpu_ids"), self.d.gpus, "GPU"))
            elif url.path == "/cpu/get_power":
                self.get_power("cpu", parse_ids(p.get("cpu_ids"), self.d.cpus, "CPU"))
            elif url.path == "/gpu/get_cumulative_energy":
                ids = parse_ids(p.get("gpu_ids"), self.d.gpus, "GPU")
                with self.d.lock:
                    out = {str(i): {"energy_mj": int(self.d.energy_now("gpu", i))} for i in ids}
                self.send_json(200, out)
            elif url.path == "/cpu/get_cumulative_energy":
                ids = parse_ids(p.get("cpu_ids"), self.d.cpus, "CPU")
                want_cpu = parse_bool(p.get("cpu"), "cpu")
                want_dram = parse_bool(p.get("dram"), "dram")
                with self.d.lock:
                    now = {i: self.d.energy_now("cpu", i) for i in ids}
                out = {str(i): {
                    "cpu_energy_uj": int(now[i][0]) if want_cpu else None,
                    "dram_energy_uj": int(now[i][1]) if want_dram and i == 0 else None,
                } for i in ids}
                self.send_json(200, out)
        except BadRequest as e:
            self.send_json(400, {"error": str(e)})
        except OSError:  # the client went away
            self.close_connection = True

    def discover(self):
        d = self.d
        self.send_json(200, {
            "gpus": [{"id": i, "name": "NVIDIA A40", "pci_address": f"0000:{i + 1:02x}:00.0",
                      "cumulative_energy_available": True} for i in d.gpus],
            "cpus": [{"id": i, "dram_available": i == 0} for i in d.cpus],
            "enabled_api_groups": d.groups,
            "auth_required": d.secret is not None,
        })

    def get_power(self, kind, ids):
        with self.d.lock:
            self.d.advance(kind, time.time())
            tick = self.d.latest[kind]
        if kind == "gpu":
            power = {str(i): tick.values[i] for i in ids}
        else:
            power = {str(i): {"cpu_mw": tick.values[i][0], "dram_mw": tick.values[i][1]} for i in ids}
        self.send_json(200, {"timestamp_ms": tick.daemon_ms, "power_mw": power})
        self.d.truth.write(truth_lines(kind, tick, ids, seed=True))

    # ---- streaming --------------------------------------------------------

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def stream(self, kind, ids):
        d, args = self.d, self.d.args
        # Subscribe before the headers go out, as zeusd does: every poll
        # after the client sees the 200 reaches it.
        sub = d.subscribe(kind, ids)
        sub.sock = self.connection
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
        except OSError:
            d.unsubscribe(kind, sub)
            raise
        self.close_connection = True
        rng = random.Random(d.rng.random())
        drop_at = rng.randint(*args.drop_every) if args.drop_every else None
        sent = 0       # valid events on this connection
        last_tick = None  # true time of the latest poll this client got in full
        oddity = rng.randrange(len(ODDITIES))
        d.truth.write([{"subscribe": kind, "ids": ids, "sent_ms": round(now_ms(), 3)}])
        try:
            while not d.stop.is_set():
                if d.outage.is_set():
                    self.drop_outage(kind, sent, last_tick)
                    return
                try:
                    tick = sub.q.get(timeout=0.1)
                except queue.Empty:
                    continue
                if d.outage.is_set():
                    self.drop_outage(kind, sent, last_tick)
                    return
                for payload, lines in events_for(kind, args.format, tick, ids, sub.first):
                    if drop_at is not None and sent >= drop_at and not d.paused.is_set():
                        self.drop(kind, sent, payload, rng)
                        return
                    style = "plain"
                    if args.malformed_every and sent % args.malformed_every == args.malformed_every - 1:
                        name = ODDITIES[oddity % len(ODDITIES)]
                        oddity += 1
                        if name in BAD:
                            self.write_chunk(bad_event(name, kind, args.format, tick))
                        else:
                            style = name
                    self.write_event(payload, style)
                    sent += 1
                    d.truth.write(lines)
                sub.first = False
                last_tick = tick.true_ms
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            d.unsubscribe(kind, sub)

    def write_event(self, payload, style):
        data = json.dumps(payload, separators=(",", ":"))
        if style == "plain":
            self.write_chunk(b"data: %s\n\n" % data.encode())
        elif style == "crlf":
            self.write_chunk(b"data: %s\r\n\r\n" % data.encode())
        elif style == "id":
            self.write_chunk(b"id: 3\ndata: %s\n\n" % data.encode())
        elif style == "nospace":
            self.write_chunk(b"data:%s\n\n" % data.encode())
        elif style == "multiline":
            # Split the JSON after its first comma: joined with "\n" it stays valid.
            cut = data.index(",") + 1
            self.write_chunk(b"data: %s\ndata: %s\n\n" % (data[:cut].encode(), data[cut:].encode()))
        elif style == "split":
            raw = b"data: %s\n\n" % data.encode()
            cut = len(raw) // 2
            self.write_chunk(raw[:cut])
            self.wfile.flush()
            time.sleep(0.002)  # make the halves arrive in separate reads
            self.write_chunk(raw[cut:])
        else:
            raise AssertionError(style)
        self.wfile.flush()

    def drop_outage(self, kind, sent, last_tick):
        """Close the stream cleanly at the start of an outage. The drop line
        says which was the last poll the client got in full ("last_tick_ms",
        true time): a GPU value holds until the next poll, a CPU value is the
        average of the period that ended at its poll, so the client knows the
        power up to the next GPU poll and up to that CPU poll."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.d.truth.write([{"drop": kind, "after_events": sent, "partial": False, "reason": "outage",
                             "last_tick_ms": None if last_tick is None else round(last_tick, 3),
                             "sent_ms": round(now_ms(), 3)}])

    def drop(self, kind, sent, payload, rng):
        """Close the stream abruptly. Half the time, first write a truncated
        event (cut before its closing brace, so it is never valid JSON)."""
        partial = False
        if rng.random() < 0.5:
            raw = b"data: " + json.dumps(payload, separators=(",", ":")).encode()
            cut = rng.randint(1, len(raw) - 1)
            try:
                self.write_chunk(raw[:cut])
                partial = True
            except OSError:
                pass
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.d.truth.write([{"drop": kind, "after_events": sent, "partial": partial,
                             "sent_ms": round(now_ms(), 3)}])


# Framing variations that carry a valid event (the client must store it).
VALID_STYLES = ("crlf", "id", "nospace", "multiline", "split")
# Extra lines/events that carry no valid reading (the client must not store anything).
BAD = ("badjson", "wrongtype", "nulltype", "missing", "comment", "eventonly", "idonly", "textlines")
ODDITIES = BAD[:4] + VALID_STYLES[:2] + BAD[4:] + VALID_STYLES[2:]


def bad_event(name, kind, fmt, tick):
    ts = tick.daemon_ms
    if name == "badjson":
        return b'data: {"timestamp_ms":%d,"power_mw":\n\n' % ts
    if name == "comment":
        return b": this is a comment\n\n"
    if name == "eventonly":
        return b"event: foo\n\n"
    if name == "idonly":
        return b"id: 3\n\n"
    if name == "textlines":
        return b"data: not json\ndata: at all {\n\n"
    if fmt == "sample":
        if kind == "gpu":
            body = {
                "wrongtype": '{"timestamp_ms":%d,"gpu_id":0,"power_mw":"x"}' % ts,
                "nulltype": '{"timestamp_ms":%d,"gpu_id":0,"power_mw":null}' % ts,
                "missing": '{"timestamp_ms":%d,"gpu_id":0}' % ts,
            }[name]
        else:
            body = {
                "wrongtype": '{"timestamp_ms":%d,"cpu_id":0,"cpu_mw":"x","dram_mw":"y"}' % ts,
                "nulltype": '{"timestamp_ms":%d,"cpu_id":0,"cpu_mw":null,"dram_mw":null}' % ts,
                "missing": '{"timestamp_ms":%d,"cpu_id":0}' % ts,
            }[name]
    else:
        if kind == "gpu":
            body = {
                "wrongtype": '{"timestamp_ms":%d,"power_mw":{"0":"x","1":"y"}}' % ts,
                "nulltype": '{"timestamp_ms":%d,"power_mw":null}' % ts,
                "missing": '{"power_mw":{"0":75000}}',
            }[name]
        else:
            body = {
                "wrongtype": '{"timestamp_ms":%d,"power_mw":{"0":{"cpu_mw":"x","dram_mw":"y"}}}' % ts,
                "nulltype": '{"timestamp_ms":%d,"power_mw":null}' % ts,
                "missing": '{"power_mw":{"0":{"cpu_mw":1,"dram_mw":null}}}',
            }[name]
    return b"data: %s\n\n" % body.encode()


def truth_lines(kind, tick, ids, seed):
    sent = round(now_ms(), 3)
    out = []
    for i in ids:
        base = {"device": i, "daemon_time_ms": tick.daemon_ms, "true_time_ms": round(tick.true_ms, 3),
                "stream": kind, "seed": seed, "sent_ms": sent}
        if kind == "gpu":
            out.append(dict(base, kind="gpu", power_mw=tick.values[i]))
        else:
            cpu_mw, dram_mw = tick.values[i]
            out.append(dict(base, kind="cpu", power_mw=cpu_mw))
            if dram_mw is not None:
                out.append(dict(base, kind="dram", power_mw=dram_mw))
    return out


def events_for(kind, fmt, tick, ids, first):
    """The (payload, truth lines) pairs one tick yields for one subscriber.
    Truth lines get their sent_ms when written, see Handler.stream."""
    send = [i for i in ids if i in tick.changed or (kind == "cpu" and first)]
    if not send:
        return []
    if fmt == "snapshot":
        if kind == "gpu":
            payload = {"timestamp_ms": tick.daemon_ms, "power_mw": {str(i): tick.values[i] for i in ids}}
        else:
            payload = {"timestamp_ms": tick.daemon_ms, "power_mw": {
                str(i): {"cpu_mw": tick.values[i][0], "dram_mw": tick.values[i][1]} for i in ids}}
        return [(payload, LazyTruth(kind, tick, ids))]
    out = []
    for i in send:
        if kind == "gpu":
            payload = {"timestamp_ms": tick.daemon_ms, "gpu_id": i, "power_mw": tick.values[i]}
        else:
            payload = {"timestamp_ms": tick.daemon_ms, "cpu_id": i,
                       "cpu_mw": tick.values[i][0], "dram_mw": tick.values[i][1]}
        out.append((payload, LazyTruth(kind, tick, [i])))
    return out


class LazyTruth:
    """Truth lines built at write time, so sent_ms is when they were sent."""

    def __init__(self, kind, tick, ids):
        self.kind, self.tick, self.ids = kind, tick, ids

    def __iter__(self):
        return iter(truth_lines(self.kind, self.tick, self.ids, seed=False))


class TCPHandler(Handler):
    # Without TCP_NODELAY, Nagle plus the client's delayed ACK hold small
    # responses back ~40 ms, which would wreck /time round trips.
    disable_nagle_algorithm = True


class TCPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP; port 0 picks a free port")
    g.add_argument("--socket", metavar="PATH", help="listen on a Unix socket")
    ap.add_argument("--gpus", type=int, default=4, help="GPUs (default 4)")
    ap.add_argument("--cpus", type=int, default=2, help="CPU packages; only CPU 0 has DRAM (default 2)")
    ap.add_argument("--gpu-hz", type=float, default=100.0, help="GPU poll rate (default 100)")
    ap.add_argument("--cpu-hz", type=float, default=50.0, help="CPU poll rate (default 50)")
    ap.add_argument("--skew-ms", type=int, default=0, help="daemon clock minus true clock, ms")
    ap.add_argument("--poll-jitter-ms", type=float, default=0.25, metavar="MS",
                    help="polls happen on a fixed grid, each moved by up to this much (default 0.25)")
    ap.add_argument("--format", choices=("sample", "snapshot"), default="sample",
                    help="stream format: sample (zeusd 0.5) or snapshot (older)")
    ap.add_argument("--jwt-secret-file", metavar="FILE", help="require HS256 tokens signed with this secret")
    ap.add_argument("--api-groups", default="gpu-read,cpu-read", help="enabled API groups")
    ap.add_argument("--drop-every", metavar="MIN,MAX",
                    help="close each stream abruptly after a random MIN..MAX events")
    ap.add_argument("--malformed-every", type=int, default=0, metavar="N",
                    help="every Nth event, add a malformed event or use unusual framing")
    ap.add_argument("--truth", metavar="FILE", help="append JSONL ground truth here")
    ap.add_argument("--energy", metavar="FILE", help="append the exact cumulative energy at every poll here (JSONL)")
    ap.add_argument("--outage-ms", type=int, default=1500, metavar="MS",
                    help="how long SIGUSR2 takes the daemon down (default 1500)")
    ap.add_argument("--ready", metavar="FILE", help="write the bound address here once listening")
    ap.add_argument("--seed", type=int, default=1, help="random seed")
    args = ap.parse_args()
    if args.drop_every:
        lo, hi = (int(x) for x in args.drop_every.split(","))
        if not 1 <= lo <= hi:
            ap.error("--drop-every: want 1 <= MIN <= MAX")
        args.drop_every = (lo, hi)
    if args.malformed_every < 0:
        ap.error("--malformed-every: want N >= 0")
    if not 0 <= args.poll_jitter_ms < 500.0 / max(args.gpu_hz, args.cpu_hz):
        ap.error("--poll-jitter-ms: want 0 <= MS < half the shortest poll period")
    if args.outage_ms <= 0:
        ap.error("--outage-ms: want MS > 0")

    sys.setswitchinterval(0.0005)  # short GIL slices keep /time latency low
    d = Daemon(args)
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        srv = TCPServer((host, int(port)), TCPHandler)
        addr = "%s:%d" % srv.server_address[:2]
    else:
        try:
            os.unlink(args.socket)
        except FileNotFoundError:
            pass
        srv = UnixServer(args.socket, Handler)
        addr = args.socket
    srv.daemon = d
    d.start()

    def on_stop(signum, frame):
        d.stop.set()

    def on_pause(signum, frame):
        if not d.paused.is_set():
            d.paused.set()
            d.truth.write([{"paused": True, "sent_ms": round(now_ms(), 3)}])
            threading.Thread(target=d.wait_drained, daemon=True).start()

    def end_outage():
        t = now_ms()  # before the clear: every request served after it is later
        d.outage.clear()
        d.truth.write([{"outage": "end", "true_ms": round(t, 3)}])

    def on_outage(signum, frame):
        if d.outage.is_set():
            return
        t = now_ms()  # before the set: every stream is closed after it
        d.outage.set()
        d.truth.write([{"outage": "begin", "true_ms": round(t, 3), "ms": args.outage_ms}])
        timer = threading.Timer(args.outage_ms / 1000.0, end_outage)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGUSR1, on_pause)
    signal.signal(signal.SIGUSR2, on_outage)

    serving = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1})
    serving.start()
    if args.ready:
        tmp = args.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write(addr + "\n")
        os.rename(tmp, args.ready)
    print(addr, flush=True)

    while not d.stop.wait(0.2):
        pass
    srv.shutdown()
    serving.join()
    srv.server_close()
    for th in d.threads:
        th.join()
    if args.socket:
        try:
            os.unlink(args.socket)
        except FileNotFoundError:
            pass
    d.truth.close()
    d.energy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
