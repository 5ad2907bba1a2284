"""MM-SafetyBench (Liu et al., ECCV 2024): 1680 questions over 13 scenarios, text or image variants."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.datasets._common import (
    DatasetError,
    check_unique,
    dataset_label,
    image_ref,
    normalise_name,
    read_json,
    require_dir,
    text_field,
)
from safemlrm.plugin_api import MUST_EXIST, ImageRef, PluginContext, Sample, datasets

log = logging.getLogger(__name__)

# (upstream file id, readable name); the upstream typo "Activitiy" is kept, it names files and folders.
SCENARIOS: tuple[tuple[str, str], ...] = (
    ("01-Illegal_Activitiy", "Illegal Activity"),
    ("02-HateSpeech", "Hate Speech"),
    ("03-Malware_Generation", "Malware Generation"),
    ("04-Physical_Harm", "Physical Harm"),
    ("05-EconomicHarm", "Economic Harm"),
    ("06-Fraud", "Fraud"),
    ("07-Sex", "Sex"),
    ("08-Political_Lobbying", "Political Lobbying"),
    ("09-Privacy_Violence", "Privacy Violence"),
    ("10-Legal_Opinion", "Legal Opinion"),
    ("11-Financial_Advice", "Financial Advice"),
    ("12-Health_Consultation", "Health Consultation"),
    ("13-Gov_Decision", "Government Decision"),
)
SCENARIO_NAMES = dict(SCENARIOS)

Variant = Literal["text", "SD", "TYPO", "SD_TYPO"]
# The prompt field of each image variant (upstream pairs TYPO and SD_TYPO with the same question).
VARIANT_PROMPT_FIELD = {
    "SD": "Rephrased Question(SD)",
    "TYPO": "Rephrased Question",
    "SD_TYPO": "Rephrased Question",
}


def _aliases(scenario_id: str, name: str) -> set[str]:
    number, _, rest = scenario_id.partition("-")
    return {
        normalise_name(scenario_id),
        normalise_name(rest),
        normalise_name(name),
        normalise_name(rest.replace("Activitiy", "Activity")),
        str(int(number)) if number.isdigit() else number,
    }


def resolve_scenarios(selectors: list[int | str], available: list[str]) -> list[str]:
    """Map scenario numbers or names (any spelling of the upstream id or the readable name) to ids."""
    chosen: list[str] = []
    for selector in selectors:
        text = str(selector)
        key = str(int(text)) if text.isdigit() else normalise_name(text)
        matches = [sid for sid in available if key in _aliases(sid, SCENARIO_NAMES.get(sid, sid))]
        if not matches:
            known = ", ".join(f"{sid} ({SCENARIO_NAMES.get(sid, sid)})" for sid in available)
            raise DatasetError(f"mm_safetybench: unknown scenario {selector!r}; known: {known}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


@datasets.register("mm_safetybench")
class MMSafetyBenchDataset:
    """MM-SafetyBench: 1680 questions over 13 scenarios, as text or with its SD / TYPO / SD_TYPO images.

    `root` holds `processed_questions/*.json` (and `TinyVersion_ID_List.json` for `tiny: true`); the
    optional `image_root` is laid out `imgs/{scenario}/{SD,SD_TYPO,TYPO}/{id}.jpg` as upstream ships
    it. The judge instruction is always `Changed Question`; the prompt depends on `variant`.
    Without an image root an image variant gives text-only samples with the benchmark's prompt and
    key phrase, for the typography / sd_typography attacks to render.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        root: str = Field(
            description="folder with processed_questions/ (or that folder itself)",
            json_schema_extra=MUST_EXIST,
        )
        variant: Variant = Field(
            default="text",
            description="text: the question alone; SD, TYPO, SD_TYPO: the rephrased question for that image",
        )
        changed_question: bool = Field(
            default=False,
            description="text variant: send `Changed Question`, not `Question` (as the SafeMLRM study did)",
        )
        image_root: str | None = Field(
            default=None,
            description="folder with imgs/{scenario}/{SD,SD_TYPO,TYPO}/{id}.jpg, or imgs/ itself",
            json_schema_extra=MUST_EXIST,
        )
        scenarios: list[int | str] | None = Field(
            default=None, description="scenario numbers (1-13) or names; default all"
        )
        tiny: bool = Field(default=False, description="only the 168-item tiny subset")
        tiny_list: str | None = Field(default=None, description="path of the tiny id list (default: in root)")
        verify_images: bool = Field(default=True, description="open each image once to catch corrupt files")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.ctx = ctx
        root = ctx.resolve(params.root)
        self.questions_dir = root if root.name == "processed_questions" else root / "processed_questions"
        self.root = self.questions_dir.parent
        self.image_root: Path | None = None
        if params.image_root is not None:
            images = ctx.resolve(params.image_root)
            self.image_root = images / "imgs" if (images / "imgs").is_dir() else images

    def scenario_files(self) -> dict[str, Path]:
        require_dir(self.questions_dir, "MM-SafetyBench processed_questions folder")
        files = {path.stem: path for path in sorted(self.questions_dir.glob("*.json"))}
        if not files:
            raise DatasetError(f"{self.questions_dir}: no scenario files (*.json)")
        return files

    def load(self) -> Iterator[Sample]:
        files = self.scenario_files()
        wanted = resolve_scenarios(self.params.scenarios, list(files)) if self.params.scenarios else list(files)
        tiny = self._tiny_ids() if self.params.tiny else None
        if self.params.variant != "text" and self.image_root is None:
            log.warning(
                "mm_safetybench variant %s without image_root: samples carry no image; "
                "use the typography / sd_typography attack to render one",
                self.params.variant,
            )
        if self.image_root is not None:
            require_dir(self.image_root, "MM-SafetyBench image root")
        return check_unique(self._samples(files, wanted, tiny), str(self.questions_dir))

    def _tiny_ids(self) -> dict[str, set[str]]:
        default = self.root / "TinyVersion_ID_List.json"
        path = self.ctx.resolve(self.params.tiny_list) if self.params.tiny_list else default
        data = read_json(path)
        if not isinstance(data, list):
            raise DatasetError(f"{path}: expected a list of {{Scenario, Sampled_ID_List}} objects")
        ids: dict[str, set[str]] = {}
        for position, entry in enumerate(data):
            if not isinstance(entry, dict) or "Scenario" not in entry or "Sampled_ID_List" not in entry:
                raise DatasetError(f"{path}: item {position} lacks `Scenario` or `Sampled_ID_List`")
            ids[str(entry["Scenario"])] = {str(i) for i in entry["Sampled_ID_List"]}
        return ids

    def _samples(self, files: dict[str, Path], wanted: list[str], tiny: dict[str, set[str]] | None) -> Iterator[Sample]:
        name = dataset_label(self.ctx, "mm_safetybench")
        for scenario_id in wanted:
            path = files[scenario_id]
            data = read_json(path)
            if not isinstance(data, dict):
                raise DatasetError(f"{path}: expected an object keyed by question id, not {type(data).__name__}")
            keep = tiny.get(scenario_id, set()) if tiny is not None else None
            for question_id, item in data.items():
                if keep is not None and str(question_id) not in keep:
                    continue
                where = f"{path}: question {question_id!r}"
                if not isinstance(item, dict):
                    raise DatasetError(f"{where}: expected an object, got {type(item).__name__}")
                yield self._sample(name, scenario_id, str(question_id), item, where)

    def _sample(self, dataset: str, scenario_id: str, question_id: str, item: Mapping[str, Any], where: str) -> Sample:
        variant = self.params.variant
        question = text_field(item, "Question", where)
        changed = text_field(item, "Changed Question", where)
        if variant == "text":
            prompt = changed if self.params.changed_question else question
        else:
            prompt = text_field(item, VARIANT_PROMPT_FIELD[variant], where)
        images: tuple[ImageRef, ...] = ()
        if variant != "text" and self.image_root is not None:
            relative = Path(scenario_id) / variant / f"{question_id}.jpg"
            images = (image_ref(relative, root=self.image_root, where=where, verify=self.params.verify_images),)
        fallback_name = scenario_id.partition("-")[2].replace("_", " ")
        return Sample(
            id=f"{scenario_id}-{question_id}",
            dataset=dataset,
            category=SCENARIO_NAMES.get(scenario_id, fallback_name),
            instruction=changed,
            prompt=prompt,
            images=images,
            key_phrase=text_field(item, "Key Phrase", where, required=False),
            metadata={
                "scenario_id": scenario_id,
                "question_id": question_id,
                "variant": variant,
                "question": question,
                "phrase_type": text_field(item, "Phrase Type", where, required=False),
                "rephrased_question": text_field(item, "Rephrased Question", where, required=False),
                "rephrased_question_sd": text_field(item, "Rephrased Question(SD)", where, required=False),
            },
        )
