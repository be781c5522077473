"""HTTPS next to plain HTTP, in one run (scripts/dev/bench-https.sh).

The same release build, data and upstream as scripts/dev/bench.sh: the
register and gateway rows on kept-alive connections, then on a new
connection per request (for HTTPS, a full TLS handshake each time), first
over plain HTTP, then with ENABLE_HTTPS and the test certificate.
"""

import os
import ssl
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

TLS = os.path.join(bench.ROOT, "tests", "fixtures", "tls")
CLOSE_LUA = {
    "register-close.lua": bench.LUA["register.lua"] + 'wrk.headers["Connection"] = "close"\n',
    "post-close.lua": bench.LUA["post.lua"].replace(
        "end\n", '  wrk.headers["Connection"] = "close"\nend\n', 1
    ),
}


def wait_https(proc):
    ctx = ssl.create_default_context(cafile=os.path.join(TLS, "ca.pem"))
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited; see {bench.work}/drawbridge.log")
        try:
            url = f"https://localhost:{bench.D_PORT}/health/ready"
            if urllib.request.urlopen(url, context=ctx, timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("the HTTPS server never became ready")


def rows(scheme, access, mcp):
    base = f"{scheme}://localhost:{bench.D_PORT}"
    gateway = ["/mcp", mcp, "application/json", access]
    return {
        "register": bench.wrk(base + "/oauth/register", "register.lua"),
        "register, new connection each": bench.wrk(base + "/oauth/register", "register-close.lua"),
        "gateway": bench.wrk(base + "/mcp", "post.lua", gateway),
        "gateway, new connection each": bench.wrk(base + "/mcp", "post-close.lua", gateway),
        "gateway, 1 connection": bench.wrk(base + "/mcp", "post.lua", gateway, connections=1, threads=1),
    }


def main():
    for name, text in {**bench.LUA, **CLOSE_LUA}.items():
        bench.write(name, text)
    bench.start_upstream()
    server, _ = bench.start_drawbridge()
    d = bench.Http(bench.D_PORT)
    client, tokens = bench.prepare(d, 1)
    access = tokens[0]["access_token"]
    mcp = bench.write("mcp.body", '{"jsonrpc":"2.0","id":1,"method":"tools/list"}')
    plain = rows("http", access, mcp)
    bench.stop(server)
    os.environ["BENCH_ENV"] = ",".join([
        os.environ.get("BENCH_ENV", ""),
        "ENABLE_HTTPS=true",
        f"SSL_CERT_FILE={TLS}/localhost.pem",
        f"SSL_KEY_FILE={TLS}/localhost.key",
    ]).strip(",")
    out = open(os.path.join(bench.work, "drawbridge.log"), "ab")
    proc = bench.subprocess.Popen(
        [os.path.join(bench.RELEASE, "drawbridge"), "serve"],
        cwd=bench.work, env=bench.env(), stdout=out, stderr=out,
    )
    bench.procs.append(proc)
    wait_https(proc)
    tls = rows("https", access, mcp)
    bench.stop(proc)

    print(f"\nHTTPS next to plain HTTP (wrk -t2 -c{bench.CONNECTIONS} unless noted, "
          f"{bench.DURATION} s each, release build, same run; TLS 1.3, ECDSA P-256 test certificate)")
    print(f"{'row':32} {'http req/s':>11} {'https req/s':>12} {'https/http':>10} "
          f"{'http p50 ms':>12} {'https p50 ms':>13} {'errors':>7}")
    for name in plain:
        p, t = plain[name], tls[name]
        print(f"{name:32} {p['rps']:11.0f} {t['rps']:12.0f} {t['rps'] / p['rps']:10.2f} "
              f"{p['p50']:12.3f} {t['p50']:13.3f} {p['errors'] + t['errors']:7d}")


if __name__ == "__main__":
    bench.run(main)
