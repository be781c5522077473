"""The gateway row with a 50-entry tool table next to none, in one run
(scripts/dev/bench-tools.sh).

The same release build, data and upstream as scripts/dev/bench.sh. The
server runs in turn without a table and with 50 rules in
gateway.tool_scopes (48 exact names, two globs), twice each, and the
gateway rows are measured each time: the benchmark's `tools/list` body,
and a `tools/call` of a tool that two rules match. With a table each call
is also read as JSON-RPC, audited (one log line) and counted.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

RULES = int(os.environ.get("BENCH_RULES", "50"))
TABLE = ";".join(
    [f"tool_{i:02}=email" for i in range(max(0, RULES - 2))] + ["read_*=email", "*=openid"][:RULES]
)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))


def rows(access, bodies):
    base = f"http://127.0.0.1:{bench.D_PORT}"
    out = {}
    for name, body in bodies.items():
        args = ["/mcp", body, "application/json", access]
        out[f"gateway, {name}"] = bench.wrk(base + "/mcp", "post.lua", args)
        if os.environ.get("BENCH_ONE_CONNECTION", "1") == "1":
            out[f"gateway, {name}, 1 connection"] = bench.wrk(
                base + "/mcp", "post.lua", args, connections=1, threads=1)
    return out


def main():
    for name, text in bench.LUA.items():
        bench.write(name, text)
    bench.start_upstream()
    plain_env = os.environ.get("BENCH_ENV", "")
    table_env = ",".join(filter(None, [plain_env, f"DRAWBRIDGE_GATEWAY__TOOL_SCOPES={TABLE}"]))
    server, _ = bench.start_drawbridge()
    client, tokens = bench.prepare(bench.Http(bench.D_PORT), 1)
    bench.stop(server)
    access = tokens[0]["access_token"]
    bodies = {
        "tools/list": bench.write("list.body", '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'),
        "tools/call": bench.write(
            "call.body",
            '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/tmp/a"}}}',
        ),
    }
    results = {"none": [], "50 rules": []}
    for _ in range(ROUNDS):
        for label, extra in (("none", plain_env), ("50 rules", table_env)):
            os.environ["BENCH_ENV"] = extra
            server, _ = bench.start_drawbridge()
            results[label].append(rows(access, bodies))
            bench.stop(server)

    def best(label, row, key):
        values = [r[row][key] for r in results[label]]
        return max(values) if key == "rps" else min(values)

    print(f"\nGateway with a {RULES}-entry gateway.tool_scopes next to none (wrk -t2 -c{bench.CONNECTIONS} "
          f"unless noted, {bench.DURATION} s each, best of {ROUNDS} alternating runs, release build)")
    print(f"{'row':36} {'none req/s':>11} {'table req/s':>12} {'table/none':>10} "
          f"{'none p50 ms':>12} {'table p50 ms':>13} {'errors':>7}")
    for row in results["none"][0]:
        n, t = best("none", row, "rps"), best("50 rules", row, "rps")
        np, tp = best("none", row, "p50"), best("50 rules", row, "p50")
        errors = sum(r[row]["errors"] for rs in results.values() for r in rs)
        print(f"{row:36} {n:11.0f} {t:12.0f} {t / n:10.2f} {np:12.3f} {tp:13.3f} {errors:7d}")


if __name__ == "__main__":
    bench.run(main)
