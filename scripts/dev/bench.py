"""The load benchmark behind scripts/dev/bench.sh (see there for usage).

Starts the release build of Drawbridge and the bench upstream (the "hello"
baseline, an instant OAuth provider and an instant MCP server), drives them
with wrk on loopback, and prints one table: every row next to the "hello"
baseline measured in the same run. Then fills the store with a million
clients and a million live tokens and measures again, and finally has the
janitor purge a million expired clients while registrations run.
"""

import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELEASE = os.path.join(ROOT, "target", "release")
DURATION = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "50"))
SCALE = int(os.environ.get("BENCH_SCALE", "1000000"))
D_PORT, U_PORT = 18601, 18602
ADMIN = "bench-admin-token-0123456789abcdef"
INTROSPECTION = "bench-introspection-secret-0123456789"
REDIRECT = "http://127.0.0.1:9/callback"

work = tempfile.mkdtemp(prefix="drawbridge-bench-")
lua_dir = os.path.join(work, "lua")
os.makedirs(lua_dir)
procs = []


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def env():
    e = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MCP_PORT": str(D_PORT),
        "CREDENTIALS_DIR": os.path.join(work, "creds"),
        "AUTH_ENCRYPTION_KEY_FILE": os.path.join(work, "key"),
        "CREDENTIAL_STORAGE_MODE": "FILE_ENCRYPTED",
        "RATE_LIMIT_ENABLED": "false",
        "MAX_PROXY_CLIENTS": "10000000",
        "UPSTREAM_PROVIDER": "google",
        "GOOGLE_CLIENT_ID": "bench.apps.googleusercontent.com",
        "GOOGLE_CLIENT_SECRET": "bench-upstream-secret",
        "DRAWBRIDGE_UPSTREAM__AUTH_URI": f"http://127.0.0.1:{U_PORT}/authorize",
        "DRAWBRIDGE_UPSTREAM__TOKEN_URI": f"http://127.0.0.1:{U_PORT}/token",
        "DRAWBRIDGE_UPSTREAM__USERINFO_URI": f"http://127.0.0.1:{U_PORT}/userinfo",
        "GATEWAY_UPSTREAM_URL": f"http://127.0.0.1:{U_PORT}/mcp",
        "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET": INTROSPECTION,
        "DRAWBRIDGE_ADMIN_TOKEN": ADMIN,
    }
    # Experiments: BENCH_ENV="KEY=value,KEY=value" overrides the above.
    for pair in filter(None, os.environ.get("BENCH_ENV", "").split(",")):
        k, _, v = pair.partition("=")
        e[k] = v
    return e


def start_upstream():
    p = subprocess.Popen(
        [os.path.join(RELEASE, "examples", "bench-upstream"), str(U_PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(p)
    wait_http(U_PORT, "/")
    return p


def start_drawbridge():
    """Starts the server; answers the process and seconds until ready."""
    out = open(os.path.join(work, "drawbridge.log"), "ab")
    started = time.perf_counter()
    p = subprocess.Popen(
        [os.path.join(RELEASE, "drawbridge"), "serve"],
        cwd=work,
        env=env(),
        stdout=out,
        stderr=out,
    )
    procs.append(p)
    wait_http(D_PORT, "/health/ready", p)
    return p, time.perf_counter() - started


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    procs.remove(p)


def wait_http(port, path, proc=None):
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"the server exited; see {work}/drawbridge.log")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.01)
    sys.exit(f"port {port} never answered {path}")


class Http:
    """One keep-alive connection with a cookie jar."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies = {}

    def call(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                self.cookies[name] = rest.split(";")[0]
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def form(**kw):
    return urllib.parse.urlencode(kw), {"Content-Type": "application/x-www-form-urlencoded"}


def register(d):
    body = json.dumps({
        "client_name": "bench client",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_post",
    })
    s, _, data = d.call("POST", "/oauth/register", body, {"Content-Type": "application/json"})
    assert s == 201, data
    v = json.loads(data)
    return v["client_id"], v["client_secret"]


def pkce():
    import base64, hashlib, secrets
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def path_of(url):
    u = urllib.parse.urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


def sign_in(client, timings=None):
    """A browser's sign-in; answers (code, verifier). With `timings`, notes
    how long Drawbridge's callback took (it calls the upstream)."""
    cid, _ = client
    browser, upstream = Http(D_PORT), Http(U_PORT)
    verifier, challenge = pkce()
    q = urllib.parse.urlencode({
        "response_type": "code", "client_id": cid, "redirect_uri": REDIRECT,
        "state": "bench", "code_challenge": challenge, "code_challenge_method": "S256",
    })
    s, _, page = browser.call("GET", "/oauth/authorize?" + q)
    assert s == 200, page
    page = page.decode()
    field = lambda n: re.search(f'name="{n}" value="([^"]*)"', page).group(1)
    body, h = form(state=field("state"), csrf=field("csrf"), decision="approve")
    s, headers, _ = browser.call("POST", "/oauth/consent", body, h)
    assert s in (302, 303), s
    s, headers, _ = upstream.call("GET", path_of(headers["location"]))
    assert s == 302
    t = time.perf_counter()
    s, headers, data = browser.call("GET", path_of(headers["location"]))
    if timings is not None:
        timings.append(time.perf_counter() - t)
    assert s in (302, 303), data
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(headers["location"]).query)["code"][0]
    return code, verifier


def exchange(d, client, code, verifier):
    cid, secret = client
    body, h = form(grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                   code_verifier=verifier, client_id=cid, client_secret=secret)
    s, _, data = d.call("POST", "/oauth/token", body, h)
    assert s == 200, data
    return json.loads(data)


# --- wrk ---------------------------------------------------------------

LUA = {
    "register.lua": """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"client_name":"wrk","redirect_uris":["http://127.0.0.1:9/callback"]}'
""",
    "post.lua": """
-- args: path, body file, content type, bearer (or -)
function init(args)
  local f = io.open(args[2]); local body = f:read("*a"); f:close()
  wrk.method = "POST"; wrk.path = args[1]; wrk.body = body
  wrk.headers["Content-Type"] = args[3]
  wrk.headers["Accept"] = "application/json, text/event-stream"
  if args[4] ~= "-" then wrk.headers["Authorization"] = "Bearer " .. args[4] end
end
""",
    "refresh.lua": """
-- Chained refresh: each answer's refresh token is the next request's.
-- args: threads, token file, client id, client secret
local n = 0
function setup(thread) thread:set("id", n); n = n + 1 end
function init(args)
  queue = {}
  local threads, i = tonumber(args[1]), 0
  for line in io.lines(args[2]) do
    if i % threads == id then table.insert(queue, line) end
    i = i + 1
  end
  tail = "&client_id=" .. args[3] .. "&client_secret=" .. args[4]
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
function request()
  local t = table.remove(queue) or "none"
  return wrk.format(nil, "/oauth/token", nil, "grant_type=refresh_token&refresh_token=" .. t .. tail)
end
function response(status, headers, body)
  local t = body:match('"refresh_token":"([^"]+)"')
  if t then table.insert(queue, 1, t) end
end
""",
}


def wrk(url, script=None, args=(), connections=CONNECTIONS, duration=DURATION, threads=2):
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", os.path.join(lua_dir, script)]
    cmd.append(url)
    if args:
        cmd += ["--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {}
    for p, v, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        pct[p] = float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50": pct.get("50"), "p99": pct.get("99"), "errors": errors, "requests": total}


def write(name, text):
    path = os.path.join(lua_dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def prepare(d, pairs):
    """One client with `pairs` sign-ins: its refresh tokens, one access token."""
    client = register(d)
    tokens = [exchange(d, client, *sign_in(client)) for _ in range(pairs)]
    write("refresh-tokens.txt", "\n".join(t["refresh_token"] for t in tokens) + "\n")
    return client, tokens


def measure_rows(client, tokens, hello_rps):
    d = Http(D_PORT)
    access = tokens[0]["access_token"]
    rows = {}
    base = f"http://127.0.0.1:{D_PORT}"
    rows["register"] = wrk(base + "/oauth/register", "register.lua")
    cid, secret = client
    rows["refresh"] = wrk(base + "/oauth/token", "refresh.lua",
                          ["2", os.path.join(lua_dir, "refresh-tokens.txt"), cid, secret])
    body = write("introspect.body", "token=" + access)
    rows["introspect"] = wrk(base + "/oauth/introspect", "post.lua",
                             ["/oauth/introspect", body, "application/x-www-form-urlencoded", INTROSPECTION])
    mcp = write("mcp.body", '{"jsonrpc":"2.0","id":1,"method":"tools/list"}')
    rows["gateway"] = wrk(base + "/mcp", "post.lua", ["/mcp", mcp, "application/json", access])
    rows["direct"] = wrk(f"http://127.0.0.1:{U_PORT}/mcp", "post.lua", ["/mcp", mcp, "application/json", "-"])
    # Latency added by one hop, without queueing: one connection each.
    rows["gateway_c1"] = wrk(base + "/mcp", "post.lua", ["/mcp", mcp, "application/json", access],
                             connections=1, threads=1, duration=max(3, DURATION // 2))
    rows["direct_c1"] = wrk(f"http://127.0.0.1:{U_PORT}/mcp", "post.lua", ["/mcp", mcp, "application/json", "-"],
                            connections=1, threads=1, duration=max(3, DURATION // 2))
    # Code exchange: sequential, on one keep-alive connection. Drawbridge
    # calls the upstream at its callback, not at /oauth/token.
    callback, upstream_direct, exchanges = [], [], []
    codes = [sign_in(client, callback) for _ in range(300)]
    for code, verifier in codes:
        t = time.perf_counter()
        exchange(d, client, code, verifier)
        exchanges.append(time.perf_counter() - t)
    u = Http(U_PORT)
    for _ in range(300):
        t = time.perf_counter()
        u.call("POST", "/token", "grant_type=authorization_code&code=x", {"Content-Type": "application/x-www-form-urlencoded"})
        u.call("GET", "/userinfo", headers={"Authorization": "Bearer x"})
        upstream_direct.append(time.perf_counter() - t)
    ms = lambda xs: statistics.median(xs) * 1000
    rows["exchange"] = {"p50": ms(exchanges)}
    rows["callback"] = {"p50": ms(callback), "upstream": ms(upstream_direct)}
    return rows


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(dirpath, f))
    return total


def seed(**kw):
    args = [os.path.join(RELEASE, "examples", "bench-seed")]
    for k, v in kw.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    t = time.perf_counter()
    subprocess.run(args, cwd=work, env=env(), check=True)
    return time.perf_counter() - t


def main():
    for name, text in LUA.items():
        write(name, text)
    start_upstream()
    hello = wrk(f"http://127.0.0.1:{U_PORT}/")
    log(f"hello: {hello['rps']:.0f} req/s")

    server, ready_small = start_drawbridge()
    d = Http(D_PORT)
    client, tokens = prepare(d, 200)
    small = measure_rows(client, tokens, hello["rps"])
    small_rss = rss_kb(server.pid)
    small_disk = du(os.path.join(work, "creds"))
    log("small store measured")
    stop(server)

    log(f"seeding {SCALE} clients and {SCALE} live tokens ...")
    seed_s = seed(clients=SCALE, sign_ins=SCALE // 2)
    server, ready_big = start_drawbridge()
    d = Http(D_PORT)
    client, tokens = prepare(d, 200)
    big = measure_rows(client, tokens, hello["rps"])
    big_rss = rss_kb(server.pid)
    big_disk = du(os.path.join(work, "creds"))
    stop(server)
    log("large store measured")

    log(f"seeding {SCALE} expired clients ...")
    seed(expired_clients=SCALE)
    server, ready_janitor = start_drawbridge()
    base = f"http://127.0.0.1:{D_PORT}"
    # The registry counts its clients in steps after a start; the first
    # registration waits for the count (the cap needs it). Let it finish.
    t = time.perf_counter()
    register(Http(D_PORT))
    first_registration = time.perf_counter() - t
    unloaded = wrk(base + "/oauth/register", "register.lua")
    # The purge runs on the admin API; registrations are measured in 5 s
    # slices for as long as it runs.
    import threading
    purge = {}

    def run_purge():
        admin = Http(D_PORT)
        admin.conn.timeout = 1800
        t = time.perf_counter()
        s, _, body = admin.call("POST", "/admin/v1/janitor/run", headers={"Authorization": "Bearer " + ADMIN})
        purge["took"] = time.perf_counter() - t
        purge["report"] = json.loads(body) if s == 200 else {"status": s}

    worker = threading.Thread(target=run_purge)
    worker.start()
    slices = []
    while worker.is_alive():
        slices.append(wrk(base + "/oauth/register", "register.lua", duration=5))
    worker.join()
    during = {
        "99": max(x["p99"] for x in slices),
        "99_median": statistics.median(x["p99"] for x in slices),
        "rps": statistics.mean(x["rps"] for x in slices),
        "slices": len(slices),
    }
    purge_took, report = purge["took"], purge["report"]
    stop(server)

    print_table(hello, small, big, dict(
        ready_small=ready_small, ready_big=ready_big, ready_janitor=ready_janitor,
        small_rss=small_rss, big_rss=big_rss, small_disk=small_disk, big_disk=big_disk,
        seed_s=seed_s, unloaded=unloaded, during=during, purge_took=purge_took, report=report,
        first_registration=first_registration))


def print_table(hello, small, big, x):
    h = hello["rps"]
    mark = lambda ok: "met" if ok else "MISSED"
    print()
    print(f"Drawbridge load benchmark — release build, wrk -t2 -c{CONNECTIONS} -d{DURATION}s on loopback, "
          f"{os.cpu_count()} cores, FILE_ENCRYPTED, durability immediate (group commit), rate limits off")
    print()
    print("| row | store | req/s | ratio to hello | p50 ms | p99 ms | errors | target |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    print(f"| hello (bare actix-web 200) | - | {h:,.0f} | 1.00 | {hello['p50']:.2f} | {hello['p99']:.2f} | {hello['errors']} | baseline |")
    for label, rows in (("small", small), (f"{SCALE:,} clients + {SCALE:,} tokens", big)):
        r = rows["register"]
        ok = r["rps"] >= 20000 and r["rps"] / h >= 0.3 and r["p99"] < 5
        print(f"| POST /oauth/register | {label} | {r['rps']:,.0f} | {r['rps']/h:.2f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['errors']} | ≥20 000/s, ≥0.3, p99<5: {mark(ok)} |")
        r = rows["refresh"]
        ok = r["rps"] >= 10000 and r["p99"] < 5
        print(f"| POST /oauth/token refresh (chained) | {label} | {r['rps']:,.0f} | {r['rps']/h:.2f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['errors']} | ≥10 000/s, p99<5: {mark(ok)} |")
        r = rows["introspect"]
        print(f"| POST /oauth/introspect | {label} | {r['rps']:,.0f} | {r['rps']/h:.2f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['errors']} | ≥40 000/s: {mark(r['rps'] >= 40000)} |")
        g, dr = rows["gateway"], rows["direct"]
        print(f"| MCP via gateway | {label} | {g['rps']:,.0f} | {g['rps']/h:.2f} | {g['p50']:.2f} | {g['p99']:.2f} | {g['errors']} | ≥0.5 of direct: {g['rps']/dr['rps']:.2f} {mark(g['rps']/dr['rps'] >= 0.5)} |")
        print(f"| MCP direct to upstream | {label} | {dr['rps']:,.0f} | {dr['rps']/h:.2f} | {dr['p50']:.2f} | {dr['p99']:.2f} | {dr['errors']} | (reference) |")
        added = rows["gateway_c1"]["p50"] - rows["direct_c1"]["p50"]
        print(f"| gateway added latency, 1 connection | {label} | | | {added:.3f} | | | p50<0.5 ms: {mark(added < 0.5)} |")
        e = rows["exchange"]["p50"]
        print(f"| POST /oauth/token code exchange, sequential | {label} | | | {e:.3f} | | | added p50<1 ms: {mark(e < 1)} (no upstream call at this step) |")
        c = rows["callback"]
        print(f"| callback (upstream code exchange + userinfo) minus upstream | {label} | | | {c['p50'] - c['upstream']:.3f} | | | total {c['p50']:.3f}, upstream {c['upstream']:.3f} |")
    print()
    print("Scale: large-store figures relative to the small store (target: within 20 %)")
    for key in ("register", "refresh", "introspect", "gateway"):
        ratio = big[key]["rps"] / small[key]["rps"]
        print(f"- {key}: {ratio:.2f} of small-store throughput, p99 {small[key]['p99']:.2f} -> {big[key]['p99']:.2f} ms: {mark(ratio >= 0.8)}")
    print(f"- restart to ready: {x['ready_small']:.2f} s small, {x['ready_big']:.2f} s large, "
          f"{x['ready_janitor']:.2f} s with {SCALE:,} more expired clients (target < 2 s: {mark(max(x['ready_big'], x['ready_janitor']) < 2)}); "
          f"the first registration after that start waited {x['first_registration']:.2f} s for the client count")
    print(f"- resident memory after the rows: {x['small_rss']/1024:.0f} MiB small, {x['big_rss']/1024:.0f} MiB large")
    print(f"- on disk: {x['small_disk']/2**20:.0f} MiB small, {x['big_disk']/2**20:.0f} MiB large (seeding took {x['seed_s']:.0f} s)")
    u, dg = x["unloaded"], x["during"]
    print(f"Janitor: purge of {SCALE:,} expired clients took {x['purge_took']:.1f} s "
          f"({x['report'].get('clients')} clients removed); register p99 {u['p99']:.2f} ms unloaded vs "
          f"{dg['99']:.2f} ms in the worst 5 s slice during the purge (median slice {dg['99_median']:.2f} ms, "
          f"{dg['slices']} slices, {dg['rps']:,.0f} req/s): {mark(dg['99'] < 2 * u['p99'])} (target < 2x)")


def run(entry):
    """Runs `entry`, then stops every process it started and removes the
    scratch directory (unless BENCH_KEEP is set)."""
    try:
        entry()
    finally:
        for p in list(procs):
            p.kill()
        if os.environ.get("BENCH_KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run(main)
