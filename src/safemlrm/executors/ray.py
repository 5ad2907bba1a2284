"""The Ray executor: targets (and judges) run as Ray actors; the run store stays on the driver.

A proxy stands in for the plugin in the pipeline. Each of its N actors builds the real plugin from
its kind and params inside the actor (so a 7B model loads on the actor's GPU, never on the driver),
and the proxy sends each batch to the actor with the fewest batches in flight. Generations come back
to the driver, which writes them to the store as usual: store keys, resume, the judge cache and every
other guarantee of the local executor hold unchanged, because the pipeline cannot tell the difference.

Images: a probe names images by path and content hash. Actors on the driver's node read the paths;
actors on another node get the bytes with the first batch that uses them, written to a local folder
by content hash (a probe's key does not depend on image paths, so keys stay the same).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safemlrm.core.context import PluginContext
from safemlrm.core.trust import JudgeValidation, not_validated
from safemlrm.core.types import NAN, Generation, Judgement, Part, Probe, Sample
from safemlrm.executors.config import RaySpec

log = logging.getLogger(__name__)

RAY_EXTRA = "pip install 'safemlrm[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"executor: ray needs Ray: {RAY_EXTRA}") from exc
    return ray


class _RayRuntime:
    """Starts Ray once for all proxies of a run, and shuts it down only if it started it."""

    users = 0
    started_here = False

    @classmethod
    def acquire(cls, spec: RaySpec) -> Any:
        ray = import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": spec.address, "logging_level": logging.WARNING}
            if spec.runtime_env:
                kwargs["runtime_env"] = spec.runtime_env
            if spec.address is None:
                kwargs["include_dashboard"] = False
            ray.init(**kwargs)
            cls.started_here = True
        elif spec.address is not None:
            log.info("Ray is already initialised in this process; ray.address %s is not used", spec.address)
        cls.users += 1
        return ray

    @classmethod
    def release(cls) -> None:
        cls.users = max(0, cls.users - 1)
        if cls.users == 0 and cls.started_here:
            import_ray().shutdown()
            cls.started_here = False


# ---------------------------------------------------------------- inside an actor


def _images_of(probes: Sequence[Probe]) -> dict[str, str]:
    """sha256 -> path of every image the probes use."""
    return {img.sha256: img.path for probe in probes for img in probe.images}


def _relocate(value: Any, local: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if "sha256" in value and "path" in value and value["sha256"] in local:
            return {**value, "path": local[value["sha256"]]}
        return {k: _relocate(v, local) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocate(v, local) for v in value]
    return value


def relocate_probes(probes: Sequence[Probe], local: dict[str, str]) -> list[Probe]:
    """The probes with image paths pointing at local copies; keys are unchanged (they hash bytes)."""
    if not local:
        return list(probes)
    return [Probe.model_validate(_relocate(p.model_dump(mode="json"), local)) for p in probes]


class PluginHost:
    """The actor: builds one plugin (a target or a judge) inside itself and serves its calls."""

    def __init__(self, registry: str, kind: str, params: dict[str, Any], ctx: PluginContext) -> None:
        self.registry = registry
        self.kind = kind
        self.params = params
        self.ctx = ctx
        self.plugin: Any = None
        self.local_images: dict[str, str] = {}
        self.image_dir = Path(tempfile.gettempdir()) / "safemlrm-ray-images"

    async def start(self) -> dict[str, Any]:
        from safemlrm.core import plugins

        if self.plugin is None:
            self.plugin = plugins.REGISTRIES[self.registry].create(self.kind, self.params, self.ctx)
        node_id = import_ray().get_runtime_context().get_node_id()
        return {
            "identity": self.plugin.identity(),
            "validation": _validation_json(self.plugin),
            "max_batch_size": int(getattr(self.plugin, "max_batch_size", 1)),
            "max_concurrency": int(getattr(self.plugin, "max_concurrency", 1)),
            "node_id": node_id,
        }

    def _store_images(self, images: dict[str, bytes], names: dict[str, str]) -> None:
        self.image_dir.mkdir(parents=True, exist_ok=True)
        for sha, data in images.items():
            path = self.image_dir / f"{sha}{Path(names.get(sha, '')).suffix}"
            if not path.exists():
                tmp = path.with_name(f"{path.name}.tmp")
                tmp.write_bytes(data)
                tmp.replace(path)
            self.local_images[sha] = str(path)

    async def generate(self, probes: list[Probe], images: dict[str, bytes]) -> list[Generation]:
        if images:
            self._store_images(images, _images_of(probes))
        if self.local_images:
            probes = relocate_probes(probes, self.local_images)
        generations: list[Generation] = await self.plugin.generate(probes)
        return generations

    async def judge(self, sample: Sample, text: str, part: Part) -> Judgement:
        judgement: Judgement = await self.plugin.judge(sample, text, part)
        return judgement

    async def aclose(self) -> None:
        if self.plugin is not None:
            await self.plugin.aclose()


# ---------------------------------------------------------------- on the driver


class _ActorPool:
    """N actors hosting one plugin; calls go to the actor with the fewest in flight."""

    def __init__(
        self, registry: str, kind: str, params: dict[str, Any], ctx: PluginContext, spec: RaySpec
    ) -> None:
        self.label = ctx.label
        self.ray = _RayRuntime.acquire(spec)
        try:
            options = spec.actors_for(ctx.label)
            host = self.ray.remote(PluginHost).options(num_cpus=options.num_cpus, num_gpus=options.num_gpus)
            self.actors: list[Any] = [host.remote(registry, kind, params, ctx) for _ in range(options.actors)]
            self._warn_if_short(options.actors * options.num_cpus, options.actors * options.num_gpus)
            try:
                starts = [a.start.remote() for a in self.actors]
                infos: list[dict[str, Any]] = self.ray.get(starts, timeout=spec.start_timeout_s)
            except self.ray.exceptions.GetTimeoutError:
                raise RuntimeError(
                    f"{ctx.label}: {options.actors} Ray actor(s) with num_cpus={options.num_cpus}, "
                    f"num_gpus={options.num_gpus} did not start within {spec.start_timeout_s:.0f} s; "
                    f"the cluster has {self._free()} free: lower ray.actors/num_cpus/num_gpus or add nodes"
                ) from None
            except Exception as exc:
                reason = _cause(exc)
                raise RuntimeError(f"{ctx.label}: a Ray actor could not build {kind!r}: {reason}") from None
        except BaseException:
            self._kill_all()
            _RayRuntime.release()
            raise
        identities = {_canonical(info["identity"]) for info in infos}
        if len(identities) != 1:
            self._kill_all()
            _RayRuntime.release()
            raise RuntimeError(
                f"{ctx.label}: Ray actors report different identities (check the nodes' versions): {infos}"
            )
        self.info = infos[0]
        driver_node = self.ray.get_runtime_context().get_node_id()
        self.ship_images = [
            spec.ship_images == "always" or (spec.ship_images == "auto" and info["node_id"] != driver_node)
            for info in infos
        ]
        self.shipped: list[set[str]] = [set() for _ in self.actors]
        self.inflight = [0] * len(self.actors)
        self.calls = [0] * len(self.actors)  # per actor, for tests and the benchmark
        self.alive = [True] * len(self.actors)
        self._next = 0

    def _free(self) -> str:
        free = self.ray.available_resources()
        return f"CPU={free.get('CPU', 0):g}, GPU={free.get('GPU', 0):g}"

    def _warn_if_short(self, cpus: float, gpus: float) -> None:
        free = self.ray.available_resources()
        if cpus > free.get("CPU", 0) + 1e-9 or gpus > free.get("GPU", 0) + 1e-9:
            log.warning(
                "%s: the actors need CPU=%g, GPU=%g but the cluster has %s free; they wait for resources",
                self.label,
                cpus,
                gpus,
                self._free(),
            )

    def pick(self) -> int:
        live = [i for i, ok in enumerate(self.alive) if ok]
        if not live:
            raise RuntimeError(f"{self.label}: every Ray actor has died")
        # Least in flight; ties rotate so idle actors share the start of a run.
        self._next += 1
        return min(live, key=lambda i: (self.inflight[i], (i - self._next) % len(self.actors)))

    async def call(self, method: str, *args: Any, images_for: Sequence[Probe] = ()) -> Any:
        """Run `method` on a live actor; an actor that died is dropped and the call goes to another."""
        while True:
            index = self.pick()
            extra: tuple[Any, ...] = ()
            if method == "generate":
                extra = (self._images_to_ship(index, images_for),)
            self.inflight[index] += 1
            self.calls[index] += 1
            try:
                return await getattr(self.actors[index], method).remote(*args, *extra)
            except self.ray.exceptions.RayActorError as exc:
                log.warning("%s: Ray actor %d died (%s); using the others", self.label, index, _cause(exc))
                self.alive[index] = False
            finally:
                self.inflight[index] -= 1

    def _images_to_ship(self, index: int, probes: Sequence[Probe]) -> dict[str, bytes]:
        if not self.ship_images[index]:
            return {}
        out: dict[str, bytes] = {}
        for sha, path in _images_of(probes).items():
            if sha not in self.shipped[index]:
                out[sha] = Path(path).read_bytes()
        self.shipped[index].update(out)
        return out

    def _kill_all(self) -> None:
        for actor in getattr(self, "actors", []):
            try:
                self.ray.kill(actor)
            except Exception as exc:  # an actor that never started cannot be killed; nothing to free
                log.debug("%s: ray.kill: %s", self.label, exc)

    async def aclose(self) -> None:
        try:
            closing = [a.aclose.remote() for a, ok in zip(self.actors, self.alive, strict=True) if ok]
            await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), timeout=60)
        except TimeoutError:
            log.warning("%s: Ray actors did not close within 60 s; killing them", self.label)
        finally:
            self._kill_all()
            _RayRuntime.release()


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    return f"{type(exc).__name__}: {exc}"


def _canonical(identity: dict[str, Any]) -> str:
    from safemlrm.core.hashing import content_hash

    return content_hash(identity)


class RayTarget:
    """A target whose `generate` runs on Ray actors; the same identity as the target it hosts."""

    def __init__(self, kind: str, params: dict[str, Any], ctx: PluginContext, spec: RaySpec) -> None:
        self.label = ctx.label
        self.pool = _ActorPool("targets", kind, params, ctx, spec)
        self.max_batch_size = self.pool.info["max_batch_size"]
        # Every actor takes as many batches at once as the hosted target does on its own.
        self.max_concurrency = self.pool.info["max_concurrency"] * len(self.pool.actors)

    def identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = self.pool.info["identity"]
        return identity

    async def generate(self, probes: Sequence[Probe]) -> list[Generation]:
        generations: list[Generation] = await self.pool.call("generate", list(probes), images_for=probes)
        return generations

    async def aclose(self) -> None:
        await self.pool.aclose()


def _validation_json(plugin: object) -> dict[str, Any] | None:
    """A hosted judge's validation record as JSON (None for a target or a judge without one)."""
    describe = getattr(plugin, "validation", None)
    if not callable(describe):
        return None
    record = describe()
    return record.model_dump(mode="json") if isinstance(record, JudgeValidation) else None


class RayJudge:
    """A judge whose calls run on Ray actors (for judges that load a model)."""

    def __init__(self, kind: str, params: dict[str, Any], ctx: PluginContext, spec: RaySpec) -> None:
        self.label = ctx.label
        self.pool = _ActorPool("judges", kind, params, ctx, spec)
        self.max_concurrency = self.pool.info["max_concurrency"] * len(self.pool.actors)

    def identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = self.pool.info["identity"]
        return identity

    def validation(self) -> JudgeValidation:
        raw = self.pool.info.get("validation")
        if raw is None:
            return not_validated("the judge hosted on Ray does not describe its agreement with human labels")
        return JudgeValidation.model_validate(raw)

    async def judge(self, sample: Sample, text: str, part: Part) -> Judgement:
        try:
            judgement: Judgement = await self.pool.call("judge", sample, text, part)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # judges return failures as values: a resume judges it again
            return Judgement(judge=self.label, score=NAN, error=f"ray: {_cause(exc)}")
        return judgement

    async def aclose(self) -> None:
        await self.pool.aclose()
