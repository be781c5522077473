"""The PostgreSQL backend benchmark behind scripts/dev/bench-postgres.sh.

Same rows, same load, same run: one instance on sled (the embedded
default), one instance on PostgreSQL, and two instances on one PostgreSQL
(wrk drives each instance with half the connections at once; their
requests per second are added). For PostgreSQL it also counts the
statements the database ran per request (pg_stat_statements, BEGIN and
COMMIT included): each is one round trip from Drawbridge to the database.
"""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the sled benchmark's helpers)

DATABASE = os.environ["DRAWBRIDGE_TEST_DATABASE_URL"]
PORTS = (18611, 18612)


def psql(sql, db=DATABASE):
    return subprocess.run(["psql", "-qAtX", db, "-c", sql], capture_output=True, text=True, check=True).stdout.strip()


def fresh_database(name):
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(f"CREATE DATABASE {name}")
    psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return DATABASE.rsplit("/", 1)[0] + "/" + name


def start(port, i, backend, database=None):
    e = bench.env()
    e["MCP_PORT"] = str(port)
    e["CREDENTIALS_DIR"] = os.path.join(bench.work, f"creds-{backend}-{i}")
    e["AUTH_ENCRYPTION_KEY_FILE"] = os.path.join(bench.work, "key")
    if backend == "postgres":
        e["DRAWBRIDGE_STORAGE__BACKEND"] = "postgres"
        e["DATABASE_URL"] = database
    out = open(os.path.join(bench.work, f"drawbridge-{port}.log"), "ab")
    p = subprocess.Popen([os.path.join(bench.RELEASE, "drawbridge"), "serve"], cwd=bench.work,
                         env=e, stdout=out, stderr=out)
    bench.procs.append(p)
    bench.wait_http(port, "/health/ready", p)
    return p


def statements():
    return int(psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                    "WHERE query NOT ILIKE '%pg_stat_statements%'") or 0)


def reset():
    psql("SELECT pg_stat_statements_reset()")


def prepare(port, pairs, name):
    """A client with `pairs` sign-ins on the instance at `port`; its refresh
    tokens go to the file `name`."""
    bench.D_PORT = port
    d = bench.Http(port)
    client = bench.register(d)
    tokens = [bench.exchange(d, client, *bench.sign_in(client)) for _ in range(pairs)]
    bench.write(name, "\n".join(t["refresh_token"] for t in tokens) + "\n")
    return client, tokens


def rows(ports, counted):
    """The four rows against every instance of `ports` at once."""
    conns = max(1, bench.CONNECTIONS // len(ports))
    prepared = [prepare(p, 200, f"refresh-{p}.txt") for p in ports]
    mcp = bench.write("mcp.body", '{"jsonrpc":"2.0","id":1,"method":"tools/list"}')
    plans = {
        "register": lambda p, c, t: (f"http://127.0.0.1:{p}/oauth/register", "register.lua", []),
        "refresh": lambda p, c, t: (f"http://127.0.0.1:{p}/oauth/token", "refresh.lua",
                                    ["2", os.path.join(bench.lua_dir, f"refresh-{p}.txt"), c[0], c[1]]),
        "introspect": lambda p, c, t: (f"http://127.0.0.1:{p}/oauth/introspect", "post.lua",
                                       ["/oauth/introspect", bench.write(f"introspect-{p}.body", "token=" + t[0]["access_token"]),
                                        "application/x-www-form-urlencoded", bench.INTROSPECTION]),
        "gateway": lambda p, c, t: (f"http://127.0.0.1:{p}/mcp", "post.lua",
                                    ["/mcp", mcp, "application/json", t[0]["access_token"]]),
    }
    out = {}
    for row, plan in plans.items():
        if counted:
            reset()
        results = [None] * len(ports)

        def drive(k):
            url, script, args = plan(ports[k], *prepared[k])
            results[k] = bench.wrk(url, script, args, connections=conns)

        threads = [threading.Thread(target=drive, args=(k,)) for k in range(len(ports))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = sum(r["requests"] for r in results)
        out[row] = {
            "rps": sum(r["rps"] for r in results),
            "p50": max(r["p50"] for r in results),
            "p99": max(r["p99"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "per_request": statements() / total if counted else None,
        }
        bench.log(f"{row}: {out[row]['rps']:.0f} req/s")
    return out


def main():
    for name, text in bench.LUA.items():
        bench.write(name, text)
    bench.start_upstream()
    results = {}
    p = start(PORTS[0], 0, "sled")
    results["sled, 1 instance"] = rows([PORTS[0]], False)
    bench.stop(p)
    db = fresh_database("drawbridge_bench_one")
    p = start(PORTS[0], 0, "postgres", db)
    results["postgres, 1 instance"] = rows([PORTS[0]], True)
    bench.stop(p)
    db = fresh_database("drawbridge_bench_two")
    ps = [start(port, i, "postgres", db) for i, port in enumerate(PORTS)]
    results["postgres, 2 instances"] = rows(list(PORTS), True)
    for p in ps:
        bench.stop(p)

    print()
    print(f"PostgreSQL backend — release build, wrk -c{bench.CONNECTIONS} -d{bench.DURATION}s on loopback "
          f"(two instances: -c{bench.CONNECTIONS // 2} on each at once), {os.cpu_count()} cores shared by wrk, "
          "Drawbridge, the instant upstream and PostgreSQL 15 (fsync on)")
    print()
    print("| row | backend | req/s | vs sled | p50 ms | p99 ms | errors | DB statements per request |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    sled = results["sled, 1 instance"]
    targets = {"introspect": "≤ 1 round trip", "gateway": "≤ 1 round trip", "refresh": "≤ 2 round trips", "register": ""}
    for row in ("register", "refresh", "introspect", "gateway"):
        for backend, r in results.items():
            x = r[row]
            per = f"{x['per_request']:.2f}" if x["per_request"] is not None else "-"
            if x["per_request"] is not None and targets[row]:
                per += f" (target {targets[row]})"
            print(f"| {row} | {backend} | {x['rps']:,.0f} | {x['rps'] / sled[row]['rps']:.2f} | "
                  f"{x['p50']:.2f} | {x['p99']:.2f} | {x['errors']} | {per} |")


if __name__ == "__main__":
    bench.run(main)
