"""API throughput: the full safemlrm pipeline against a bare `AsyncOpenAI` loop, on a mock server.

The mock server runs in its own process with a fixed latency (100 ms) and answers with texts that
differ per prompt (``--bench-replies``), so no judge call is saved by the cache. Measured in one run,
interleaved, so the ratios hold even when absolute speed drifts:

- bare: ``AsyncOpenAI`` with 64 workers making as many requests as the pipeline made;
- aiohttp: a raw ``aiohttp`` loop, the same requests (the floor of client cost);
- pipeline: ``safemlrm`` with one generation and three rubric-judge calls (reasoning, answer, whole)
  per probe, 64 requests in flight in all (16 for the model under test, 48 for the judge: the calls
  come 1:3);
- sequential: one request at a time, as the SafeMLRM study's code ran.

Reported: requests per second, ratios to the bare loop (goal >= 0.9) and to the physical limit
(concurrency / latency = 640 req/s), client CPU milliseconds per request (process CPU / requests),
and the most requests the server saw in flight at once.

    .venv/bin/python benchmarks/api_throughput.py            # about 2 minutes
    .venv/bin/python benchmarks/api_throughput.py --probes 500 --repeats 1 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import MockServerProcess, harmful_rows, measure, write_jsonl, write_result

CONCURRENCY = 64
GEN_CONCURRENCY = 16  # generation : judge calls are 1 : 3, so 16 + 48 slots keep both saturated
JUDGE_CONCURRENCY = CONCURRENCY - GEN_CONCURRENCY


def prompts(n: int) -> list[str]:
    return [row["prompt"] for row in harmful_rows(n)]


async def bare_openai(base_url: str, n: int, concurrency: int = CONCURRENCY) -> None:
    from openai import AsyncOpenAI

    # The SDK's own HTTP client, as a user would write it (this SDK is built on httpx2; handing it a
    # plain httpx.AsyncClient measured about 5x the client CPU per request here).
    client = AsyncOpenAI(base_url=base_url, api_key="not-needed", max_retries=0)
    texts = prompts(n)
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await client.chat.completions.create(
                model="mock-model",
                messages=[{"role": "user", "content": texts[i]}],
                max_tokens=256,
                temperature=0.0,
            )

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.close()


async def raw_aiohttp(base_url: str, n: int, concurrency: int = CONCURRENCY) -> None:
    import aiohttp
    import orjson

    texts = prompts(n)
    counter = iter(range(n))
    url = f"{base_url}/chat/completions"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 8)) as session:

        async def worker() -> None:
            for i in counter:
                body = {"model": "mock-model", "messages": [{"role": "user", "content": texts[i]}], "max_tokens": 256}
                async with session.post(url, data=orjson.dumps(body)) as response:
                    orjson.loads(await response.read())

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def sequential_openai(base_url: str, n: int) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="not-needed", max_retries=0)
    for text in prompts(n):
        client.chat.completions.create(
            model="mock-model", messages=[{"role": "user", "content": text}], max_tokens=256, temperature=0.0
        )
    client.close()


def pipeline_config(data: Path, base_url: str) -> Any:
    from safemlrm.core.config import RunConfig

    return RunConfig.model_validate(
        {
            "name": "throughput",
            "datasets": [{"kind": "jsonl", "params": {"path": str(data)}}],
            "targets": [
                {
                    "name": "model",
                    "kind": "openai",
                    "parser": "think_tags",
                    "reasoning": True,
                    "params": {
                        "base_url": base_url,
                        "model": "mock-model",
                        "max_concurrency": GEN_CONCURRENCY,
                        "max_new_tokens": 256,
                    },
                }
            ],
            "judges": [
                {
                    "kind": "rubric",
                    "params": {
                        "model": {
                            "name": "judge",
                            "kind": "openai",
                            "params": {
                                "base_url": base_url,
                                "model": "mock-judge",
                                "max_concurrency": JUDGE_CONCURRENCY,
                                "max_new_tokens": 256,
                            },
                        },
                        "max_concurrency": JUDGE_CONCURRENCY,
                    },
                }
            ],
            "parts": ["reasoning", "answer", "whole"],
            "judge_cache": None,
            "concurrency": CONCURRENCY,
            "html_report": False,
        }
    )


def run_pipeline(config: Any, run_dir: Path) -> Any:
    from safemlrm.pipeline.runner import Pipeline

    pipeline = Pipeline(config, run_dir, base_dir=run_dir.parent, progress=False, reports=False)
    return asyncio.run(pipeline.run()).counters


def phase(server: MockServerProcess, name: str, fn: Any, *args: Any) -> dict[str, Any]:
    server.reset()
    with measure() as meter:
        out = fn(*args)
    stats = server.stats()
    requests = int(stats["requests"])
    result = {
        "name": name,
        "requests": requests,
        "wall_s": round(meter.wall_s, 3),
        "req_per_s": round(requests / meter.wall_s, 1),
        "client_cpu_ms_per_request": round(1000 * meter.cpu_s / max(1, requests), 3),
        "server_max_in_flight": stats["max_in_flight"],
        "server_outcomes": stats["outcomes"],
    }
    if name == "pipeline":
        result["counters"] = out.as_dict()
    print(
        f"  {name:<10} {requests:>6} requests in {meter.wall_s:6.2f} s = {result['req_per_s']:7.1f} req/s, "
        f"client CPU {result['client_cpu_ms_per_request']:.3f} ms/request, "
        f"max in flight {stats['max_in_flight']}",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", type=int, default=2000, help="probes of the pipeline run (4 calls each)")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds of bare / pipeline")
    parser.add_argument("--sequential", type=int, default=30, help="requests of the one-at-a-time phase")
    parser.add_argument("--profile", action="store_true", help="cProfile the pipeline phase (slows it)")
    args = parser.parse_args(argv)

    limit = CONCURRENCY / (args.latency_ms / 1000.0)
    rounds: list[dict[str, Any]] = []
    profile_text = ""
    with tempfile.TemporaryDirectory(prefix="safemlrm-bench-") as scratch, MockServerProcess(
        "--latency-ms", str(args.latency_ms), "--bench-replies"
    ) as server:
        data = write_jsonl(Path(scratch) / "probes.jsonl", harmful_rows(args.probes))
        config = pipeline_config(data, server.base_url)
        n_requests = args.probes * 4
        print(f"mock server at {server.base_url}, latency {args.latency_ms:g} ms; {n_requests} requests a phase")
        asyncio.run(raw_aiohttp(server.base_url, 200))  # warm up the server
        for r in range(args.repeats):
            print(f"round {r + 1}/{args.repeats}", flush=True)
            results = [phase(server, "bare", lambda: asyncio.run(bare_openai(server.base_url, n_requests)))]
            results.append(phase(server, "aiohttp", lambda: asyncio.run(raw_aiohttp(server.base_url, n_requests))))
            run_dir = Path(scratch) / f"run{r}"
            if args.profile and r == args.repeats - 1:
                profiler = cProfile.Profile()
                profiler.enable()
                results.append(phase(server, "pipeline", run_pipeline, config, run_dir))
                profiler.disable()
                buffer = io.StringIO()
                pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(30)
                profile_text = buffer.getvalue()
            else:
                results.append(phase(server, "pipeline", run_pipeline, config, run_dir))
            rounds.append({item["name"]: item for item in results})
        sequential = phase(server, "sequential", sequential_openai, server.base_url, args.sequential)

    def med(name: str, key: str) -> float:
        return float(statistics.median(r[name][key] for r in rounds))

    bare, pipe, raw = med("bare", "req_per_s"), med("pipeline", "req_per_s"), med("aiohttp", "req_per_s")
    summary = {
        "pipeline_req_per_s": pipe,
        "bare_openai_req_per_s": bare,
        "raw_aiohttp_req_per_s": raw,
        "sequential_req_per_s": sequential["req_per_s"],
        "physical_limit_req_per_s": limit,
        "pipeline_over_bare_openai": round(pipe / bare, 3),
        "pipeline_over_physical_limit": round(pipe / limit, 3),
        "pipeline_over_sequential": round(pipe / sequential["req_per_s"], 1),
        "bare_openai_over_physical_limit": round(bare / limit, 3),
        "client_cpu_ms_per_request": {
            "pipeline": med("pipeline", "client_cpu_ms_per_request"),
            "bare_openai": med("bare", "client_cpu_ms_per_request"),
            "raw_aiohttp": med("aiohttp", "client_cpu_ms_per_request"),
        },
        "goal_pipeline_over_bare_openai": 0.9,
        "goal_met": pipe / bare >= 0.9,
    }
    print("summary:")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    if profile_text:
        print(profile_text)
    write_result(
        "api_throughput",
        {
            "command": "python benchmarks/api_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "setup": {
                "probes": args.probes,
                "requests_per_phase": args.probes * 4,
                "latency_ms": args.latency_ms,
                "concurrency": CONCURRENCY,
                "pipeline_split": {"generation": GEN_CONCURRENCY, "judge": JUDGE_CONCURRENCY},
                "medians_over_rounds": args.repeats,
            },
            "summary": summary,
            "rounds": rounds,
            "sequential": sequential,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
