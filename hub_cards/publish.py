"""Write a Hub-ready model folder (weights, config, code, processor, model card) and optionally upload it
(the library behind `vidtempo-publish`, whose parser lives in `cli/publish.py`).

Evaluation results are JSON files (or dicts) of the shape written by `vidtempo-eval`::

    {"benchmark": "fivr:synthetic", "similarity": "chamfer", "metrics": {"DSVR": 0.81, "CSVR": 0.77, ...},
     "task": "video-retrieval" (optional), "dataset_name": "..." (optional), ...}

or a list of such objects, or the LocVTP evaluation JSON (`vidtempo-eval-locvtp`):
``{"retrieval": {"t2v": {"R@1": ...}, "v2t": {...}}, "grounding": {"R@1,IoU=0.5": ..., "mIoU": ...},
"dataset": name (optional)}``, read as one text-to-video-retrieval and one temporal-grounding result.
Every numeric metric becomes one `model-index` entry: ``metric_type`` from the
metric name (`METRIC_TYPES`, e.g. ``DSVR`` -> ``map``, ``R@1`` -> ``recall@1``), ``metric_name`` =
``"<name> (<similarity>)"``, dataset = the benchmark, value rounded to 4 decimals. When the result
states its protocol and counts (``vidtempo-eval`` does), every entry carries them: ``metric_config`` = the
protocol variant (``reference`` = the published evaluators), ``dataset_args`` = the queries and database videos
evaluated and the positives without features; the card's evaluation section lists them under the table.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

TEMPLATES = {
    "tca": "tca_card.md",
    "tca_video": "tca_video_card.md",
    "locvtp": "locvtp_card.md",
    "vidtempo_frame_descriptor": "descriptor_card.md",
}
# the card's pipeline_tag: a task the repo's shipped pipelines serve (`config.custom_pipelines`); none for TCA
# alone (descriptor input) and the descriptor model (no pipeline)
PIPELINE_TAGS = {"tca_video": "feature-extraction", "locvtp": "feature-extraction"}
NEEDS_PROCESSOR = ("tca_video", "locvtp")
METRIC_TYPES = {
    "dsvr": "map",
    "csvr": "map",
    "isvr": "map",
    "map": "map",
    "map@all": "map",
    "ndvr": "map",
    "mdr": "median_rank",
    "mnr": "mean_rank",
    "miou": "miou",
    "t2v mdr": "median_rank",
    "t2v mnr": "mean_rank",
    "v2t mdr": "median_rank",
    "v2t mnr": "mean_rank",
}
TASK_TAGS = {
    "tca": ["video-retrieval", "near-duplicate-video-retrieval"],
    "tca_video": ["video-retrieval", "near-duplicate-video-retrieval", "tca"],
    "vidtempo_frame_descriptor": ["frame-descriptors", "tca"],
    "locvtp": ["text-to-video-retrieval", "temporal-grounding", "video-text"],
}
PROCESSOR_FILES = (
    "processor_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "video_preprocessor_config.json",
)


class PublishError(RuntimeError):
    """Publishing failed for a reason the user can fix (bad input, offline Hub)."""


# ----------------------------------------------------------------------------------------------------
# Evaluation results -> model-index
# ----------------------------------------------------------------------------------------------------


def load_results(sources) -> list[dict]:
    """Evaluation result objects from JSON paths and/or dicts (a file may hold one object or a list)."""
    if sources is None:
        return []
    if isinstance(sources, (str, os.PathLike, Mapping)):
        sources = [sources]
    results = []
    for source in sources:
        where = "results" if isinstance(source, Mapping) else str(source)
        if isinstance(source, Mapping):
            data = source
        else:
            try:
                data = json.loads(Path(source).read_text())
            except FileNotFoundError:
                raise PublishError(f"evaluation results file {source} does not exist") from None
            except json.JSONDecodeError as error:
                raise PublishError(f"{source}: not valid JSON ({error})") from None
        for item in data if isinstance(data, list) else [data]:
            if (
                isinstance(item, Mapping)
                and "benchmark" not in item
                and ("retrieval" in item or "grounding" in item)
            ):
                results += _from_locvtp_eval(item)
                continue
            if (
                not isinstance(item, Mapping)
                or not isinstance(item.get("benchmark"), str)
                or not isinstance(item.get("metrics"), Mapping)
            ):
                raise PublishError(
                    f"{where}: each result needs 'benchmark' (str) and 'metrics' ({{name: value}}); "
                    f"got keys {sorted(item) if isinstance(item, Mapping) else type(item).__name__}"
                )
            results.append(dict(item))
    return results


def _numeric(metrics: Mapping, prefix: str = "") -> dict:
    return {
        f"{prefix}{k}": v
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.startswith("num_")
    }


def _from_locvtp_eval(item: Mapping) -> list[dict]:
    """Result objects from the LocVTP evaluation JSON (retrieval per direction, grounding)."""
    dataset = str(item.get("dataset", "captions"))
    out = []
    if isinstance(item.get("retrieval"), Mapping):
        metrics = {}
        for direction, values in item["retrieval"].items():
            if isinstance(values, Mapping):
                metrics.update(_numeric(values, f"{direction} "))
        out.append({"benchmark": dataset, "task": "text-to-video-retrieval", "metrics": metrics})
    if isinstance(item.get("grounding"), Mapping):
        out.append(
            {
                "benchmark": str(item.get("grounding_dataset", dataset)),
                "task": "temporal-grounding",
                "metrics": _numeric(item["grounding"]),
            }
        )
    return out


def metric_type(name: str) -> str:
    """Hub metric type of a metric name: ``R@5`` -> ``recall@5``, ``R@1 IoU>0.5`` -> ``recall@1_iou0.5``."""
    key = name.strip().lower()
    if key in METRIC_TYPES:
        return METRIC_TYPES[key]
    match = re.fullmatch(r"(?:[tv]2[tv]\s+)?r@(\d+)(?:\s*,?\s*iou\s*[>=]+\s*([\d.]+))?", key)
    if match:
        return f"recall@{match.group(1)}" + (f"_iou{match.group(2)}" if match.group(2) else "")
    return re.sub(r"[^a-z0-9@._-]+", "_", key).strip("_") or "score"


def _task_type(result: Mapping) -> str:
    if result.get("task"):
        return str(result["task"])
    benchmark = result["benchmark"].lower()
    if any(word in benchmark for word in ("charades", "grounding", "anet", "tacos")):
        return "temporal-grounding"
    if any(word in benchmark for word in ("msrvtt", "msr-vtt", "didemo", "text")):
        return "text-to-video-retrieval"
    return "video-retrieval"


def _protocol_name(result: Mapping) -> str | None:
    protocol = result.get("protocol")
    if not isinstance(protocol, Mapping):
        return None
    name = str(protocol.get("variant", ""))
    return name if protocol.get("published_evaluator") else f"{name}, missing={protocol.get('missing')}"


def coverage(result: Mapping) -> dict | None:
    """What a result evaluated: queries and database videos (evaluated / total), positives without features."""
    counts = result.get("counts")
    if not isinstance(counts, Mapping) or "queries_evaluated" not in counts:
        return None
    out = {"queries_evaluated": counts["queries_evaluated"], "queries": counts.get("queries")}
    if "database" in counts:
        database_evaluated = counts.get(
            "database_evaluated", counts["database"] - counts.get("database_missing", 0)
        )
        out.update(database_evaluated=database_evaluated, database=counts["database"])
    for key in ("positives_missing", "missing_mode"):
        if key in counts:
            out[key] = counts[key]
    return out


def _dataset_type(result: Mapping) -> str:
    """The model-index dataset type: the result's own, else the benchmark; a synthetic benchmark (not a Hub
    dataset) is typed `synthetic` so that no one looks for it on the Hub."""
    if result.get("dataset_type"):
        return str(result["dataset_type"])
    return "synthetic" if "synthetic" in result["benchmark"].lower() else str(result["benchmark"])


def model_index_entries(results: Sequence[Mapping]) -> list[dict]:
    """The card's `model-index` entries as plain dicts (`huggingface_hub.EvalResult` keyword sets), one per
    numeric metric of every result: the one builder of model-index entries (`vidtempo-eval` writes them into
    its results JSON, `build_model_card` turns them into the card)."""
    entries = []
    for result in results:
        similarity = result.get("similarity")
        protocol, counts = _protocol_name(result), coverage(result)
        for name, value in result["metrics"].items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue  # None (not computable) or nested values
            entries.append(
                {
                    "task_type": _task_type(result),
                    "dataset_type": _dataset_type(result),
                    "dataset_name": str(result.get("dataset_name", result["benchmark"])),
                    "dataset_split": result.get("split"),
                    "metric_type": metric_type(name),
                    "metric_name": f"{name} ({similarity})" if similarity else str(name),
                    "metric_value": round(float(value), 4),
                    "metric_config": protocol,
                    "dataset_args": counts,
                }
            )
    return entries


def eval_results_from(results: Sequence[Mapping]) -> list:
    """`huggingface_hub.EvalResult`s of `model_index_entries(results)`."""
    from huggingface_hub import EvalResult

    return [EvalResult(**entry) for entry in model_index_entries(results)]


def _evaluation_section(results: Sequence[Mapping]) -> str:
    if not results:
        return "No evaluation results were supplied when this card was written."
    lines = ["| benchmark | similarity | metric | value |", "| --- | --- | --- | --- |"]
    for result in results:
        for name, value in result["metrics"].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                lines.append(
                    f"| {result['benchmark']} | {result.get('similarity', '')} | {name} | {value:.4f} |"
                )
    notes = []
    for result in results:
        counts, protocol = coverage(result), _protocol_name(result)
        if counts is None and protocol is None:
            continue
        text = (
            f"- {result['benchmark']} ({result.get('similarity', '')}): protocol {protocol or 'not stated'}"
        )
        if counts:
            text += f"; {counts['queries_evaluated']:,}/{counts['queries']:,} queries"
            if "database" in counts:
                text += (
                    f" and {counts['database_evaluated']:,}/{counts['database']:,} database videos evaluated"
                )
            if "positives_missing" in counts:
                rule = {"drop": "dropped from the positives", "miss": "counted as misses"}.get(
                    counts.get("missing_mode"), ""
                )
                text += f"; {counts['positives_missing']:,} positives without features" + (
                    f" ({rule})" if rule else ""
                )
        notes.append(text)
    synthetic = sorted({r["benchmark"] for r in results if _dataset_type(r) == "synthetic"})
    if synthetic:
        notes.append(
            f"- {', '.join(synthetic)}: synthetic videos rendered by vidtempo (`vidtempo-demo`), not a published "
            "dataset; the numbers show that the pipeline works, not how it does on real footage"
        )
    if notes:
        lines += [
            "",
            "Protocol (`reference` = the published TCA/ViSiL/DnS/S2VS evaluators) and what was evaluated:",
            "",
            *notes,
        ]
    return "\n".join(lines)


def _training_section(training: Mapping | str | None) -> str:
    if not training:
        return "Training details were not supplied when this card was written."
    if isinstance(training, str):
        return training
    return "\n".join(f"- **{key}:** {value}" for key, value in training.items())


# ----------------------------------------------------------------------------------------------------
# Publishing
# ----------------------------------------------------------------------------------------------------


def _load_model(model):
    if hasattr(model, "save_pretrained"):
        return model
    path = Path(model)
    if not (path / "config.json").exists():
        raise PublishError(f"{path}: not a saved model folder (no config.json)")
    from transformers import AutoModel

    import vidtempo.modeling  # noqa: F401 - registers the Auto classes and code export

    return AutoModel.from_pretrained(path, trust_remote_code=True)


def _copy_processor(processor, output_dir: Path) -> list[str]:
    if processor is None:
        return []
    before = set(os.listdir(output_dir))
    if hasattr(processor, "save_pretrained"):
        processor.save_pretrained(output_dir)
    else:
        source = Path(processor)
        files = (
            [source / name for name in PROCESSOR_FILES if (source / name).exists()] if source.is_dir() else []
        )
        if not files:
            raise PublishError(f"processor {source}: expected a folder with one of {PROCESSOR_FILES}")
        for file in files:
            shutil.copy2(file, output_dir / file.name)
        for code in source.glob("*.py"):  # remote code of the processor
            if not (output_dir / code.name).exists():
                shutil.copy2(code, output_dir / code.name)
    return sorted(set(os.listdir(output_dir)) - before)


def _listed(values) -> str:
    return "(" + ", ".join(f"{float(v):.3g}" for v in values) + ")"


def _backbone_facts(descriptor_config) -> dict:
    """What a card says about a frame descriptor network, read from its config (never assumed)."""
    backbone = descriptor_config.backbone_config
    kind = getattr(backbone, "model_type", "?")
    if kind == "resnet":
        name = f"ResNet ({getattr(backbone, 'layer_type', '?')} blocks, depths {list(backbone.depths)}, widths {list(backbone.hidden_sizes)})"
    else:
        name = f"EfficientNet-Lite (width x{getattr(backbone, 'width_coefficient', '?')}, maps {backbone.out_features})"
    pca = descriptor_config.pca_dim
    return {
        "backbone": name,
        "pooling": {"l3_irmac": "L3-iRMAC", "imac": "iMAC"}.get(
            descriptor_config.pooling, descriptor_config.pooling
        ),
        "num_maps": len(backbone.hidden_sizes),
        "feature_dim": descriptor_config.feature_dim,
        "pca_dim": pca if pca is not None else "none",
        "output_dim": descriptor_config.output_dim,
        "pca": f", PCA-whitened to {pca}-d" if pca is not None else " (no PCA whitening)",
    }


def _processor_facts(folder: Path | None) -> dict:
    """Frame rate and frame preprocessing of the processor saved in `folder` (`?` for what is absent)."""
    facts = {"fps": "?", "shortest_edge": "?", "crop_size": "?", "image_mean": "?", "image_std": "?"}
    if folder is None:
        return facts
    for name in ("processor_config.json", "preprocessor_config.json"):
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text())
            image = data.get("image_processor", data)
            facts.update({k: image[k] for k in ("shortest_edge", "crop_size") if k in image})
            facts.update({k: _listed(image[k]) for k in ("image_mean", "image_std") if k in image})
            if "fps" in data:
                facts["fps"] = f"{float(data['fps']):g}"
    return facts


def _card_fields(config, folder: Path | None) -> dict:
    """The template fields of a model type, from its config and saved processor."""
    model_type = getattr(config, "model_type", "tca")
    if model_type == "tca_video":
        tca = config.tca_config
        fields = {
            k: getattr(tca, k)
            for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
        }
        fields.update(_backbone_facts(config.descriptor_config), **_processor_facts(folder))
        has_comparator = config.comparator_config is not None
        fields["comparator"] = (
            "; a TCA_v comparator (ViSiL/DnS) on the frame similarities" if has_comparator else ""
        )
        fields["comparator_key"] = ', "comparator"' if has_comparator else ""
        return fields
    if model_type == "vidtempo_frame_descriptor":
        return {**_backbone_facts(config), **_processor_facts(folder)}
    if model_type == "locvtp":
        return {"example_sentence": "a man is cooking"}
    keys = ("input_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    return {k: getattr(config, k) for k in keys}


def build_model_card(
    config,
    results: Sequence[Mapping] = (),
    model_name: str | None = None,
    repo_id: str | None = None,
    license: str = "apache-2.0",
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    training: Mapping | str | None = None,
    processor_files: Sequence[str] = (),
    base_model: str | None = None,
    folder: Path | None = None,
):
    """A `huggingface_hub.ModelCard` for a vidtempo model config from its model type's template (`folder`: the
    folder being published, whose processor files the card describes)."""
    from huggingface_hub import ModelCard, ModelCardData

    model_type = getattr(config, "model_type", "tca")
    if model_type not in TEMPLATES:
        raise PublishError(
            f"no model card template for model type {model_type!r} (known: {sorted(TEMPLATES)})"
        )
    template = Path(__file__).with_name(TEMPLATES[model_type])
    model_name = model_name or f"vidtempo-{model_type}".replace("vidtempo-vidtempo_", "vidtempo-")
    eval_results = eval_results_from(results)
    card_data = ModelCardData(
        library_name="transformers",
        license=license,
        tags=list(dict.fromkeys(["vidtempo", model_type, *TASK_TAGS.get(model_type, []), *tags])),
        datasets=list(datasets) or None,
        base_model=base_model,
        pipeline_tag=PIPELINE_TAGS.get(model_type),
        model_name=model_name,
        eval_results=eval_results or None,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template),
        model_name=model_name,
        repo_id=repo_id or f"<user>/{model_name}",
        license=license,
        training_section=_training_section(training),
        evaluation_section=_evaluation_section(results),
        processor_files=", ".join(f"`{f}`" for f in processor_files),
        **_card_fields(config, folder),
    )


def check_card(card, results: Sequence[Mapping] = ()) -> None:
    """Offline checks of a card: its YAML parses back with `library_name: transformers` and its
    `model-index` holds exactly the metrics of `results`."""
    from huggingface_hub import ModelCard

    parsed = ModelCard(str(card))
    data = parsed.data.to_dict()
    if data.get("library_name") != "transformers":
        raise PublishError(
            f"model card: library_name is {data.get('library_name')!r}, expected 'transformers'"
        )
    expected = sorted((e.metric_name, e.metric_value) for e in eval_results_from(results))
    found = sorted((e.metric_name, e.metric_value) for e in (parsed.data.eval_results or []))
    if expected != found:
        raise PublishError(
            f"model card: model-index metrics {found} differ from the evaluation results {expected}"
        )


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in {
        "1",
        "ON",
        "YES",
        "TRUE",
    }


def push_folder(
    folder: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None
) -> str:
    """Upload `folder` to the model repo `repo_id` (created if missing); returns the commit URL."""
    if _hub_offline():
        raise PublishError(
            f"cannot push to {repo_id}: the Hugging Face Hub is disabled (HF_HUB_OFFLINE=1). "
            f"The folder {folder} is ready; upload it later with `hf upload {repo_id} {folder} .`."
        )
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="model",
            commit_message="Upload vidtempo model",
        )
    except Exception as error:  # network, authentication, permission
        raise PublishError(
            f"cannot push to {repo_id}: {type(error).__name__}: {error}. Check the network and "
            f"`hf auth login`; the folder {folder} is ready to upload."
        ) from error
    return str(getattr(info, "commit_url", info))


def publish_model(
    model,
    output_dir: str | os.PathLike,
    results=None,
    processor=None,
    model_name: str | None = None,
    license: str = "apache-2.0",
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    training: Mapping | str | None = None,
    push_to_hub: str | None = None,
    private: bool = False,
    base_model: str | None = None,
) -> Path:
    """Write a Hub-ready folder to `output_dir` and optionally push it.

    `model`: a vidtempo `PreTrainedModel` or a saved model folder. `results`: evaluation JSON path(s) or
    dict(s) (module docstring). `processor`: a processor object or a folder with its saved files.
    `training`: a dict or markdown text for the card's training section. The folder holds
    `model.safetensors`, `config.json` with `auto_map`, the model's code, processor files, `README.md`
    (the card) and `eval_results.json`; it is written to a temporary folder and renamed into place.
    """
    results = load_results(results)
    if processor is None and not hasattr(model, "save_pretrained"):  # a saved folder keeps its processor
        if any((Path(model) / name).is_file() for name in PROCESSOR_FILES):
            processor = Path(model)
    model = _load_model(model)
    model_type = getattr(model.config, "model_type", "tca")
    if processor is None and model_type in NEEDS_PROCESSOR:
        raise PublishError(
            f"a {model_type} repo needs its processor (frame decoding/preprocessing"
            f"{' and tokenizer' if model_type == 'locvtp' else ''}): pass processor= (object or saved folder)"
        )
    from .pipelines import ship_pipelines

    output_dir = Path(output_dir)
    from ..processing.atomic_files import write_folder_atomically  # lazy: processing imports torch

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        if not (tmp / "model.safetensors").exists() or "auto_map" not in json.loads(
            (tmp / "config.json").read_text()
        ):
            raise PublishError(
                f"{type(model).__name__}.save_pretrained did not write model.safetensors and an auto_map; "
                "import vidtempo.modeling before saving so its classes export their code"
            )
        ship_pipelines(tmp, model_type)
        processor_files = _copy_processor(processor, tmp)
        card = build_model_card(
            model.config,
            results,
            model_name,
            push_to_hub,
            license,
            datasets,
            tags,
            training,
            processor_files,
            base_model,
            tmp,
        )
        check_card(card, results)
        if (
            not _hub_offline()
        ):  # the Hub's own metadata validation needs the network; offline checks ran above
            try:
                card.validate()
            except Exception as error:  # noqa: BLE001 - a warning: the folder is still usable
                logger.warning("the Hub could not validate the card (%s: %s)", type(error).__name__, error)
        card.save(tmp / "README.md")
        (tmp / "eval_results.json").write_text(json.dumps(results, indent=1))

    write_folder_atomically(output_dir, fill)
    if push_to_hub:
        url = push_folder(output_dir, push_to_hub, private)
        logger.info("pushed %s to %s", output_dir, url)
    return output_dir


def compose_tca_video(
    tca_model, descriptor_model, image_processor, fps: float = 1.0, max_frames: int | None = None
):
    """The complete video model and its processor: a trained TCA on the descriptor network (CNN + PCA) and
    frame preprocessing it was trained with, sampling `fps` frames per second (the extraction's rate)."""
    from ..modeling import TCAVideoModel
    from ..processing.processing_tca_video import TCAVideoProcessor

    model = TCAVideoModel.from_descriptor_and_tca(descriptor_model, tca_model, fps=fps, max_frames=max_frames)
    processor = TCAVideoProcessor(image_processor, fps=fps, max_frames=max_frames)
    return model, processor


def publish_tca_video(
    tca_model, descriptor_dir: str | os.PathLike, output_dir: str | os.PathLike, fps: float = 1.0, **kwargs
) -> Path:
    """Publish the complete TCA video repo (descriptor CNN + PCA + TCA + processor + pipelines) from a trained
    TCA and a saved descriptor-model folder holding its PCA and image processor (what extraction and
    `fit-pca` leave, e.g. the demo's `descriptor_model/`). `kwargs` go to `publish_model`."""
    from transformers import AutoImageProcessor

    import vidtempo.processing  # noqa: F401 - registers the image processor

    descriptor_dir = Path(descriptor_dir)
    descriptor = _load_model(descriptor_dir)
    if getattr(descriptor.config, "model_type", None) != "vidtempo_frame_descriptor":
        raise PublishError(
            f"{descriptor_dir}: expected a saved frame descriptor model, got {type(descriptor).__name__}"
        )
    try:
        image_processor = AutoImageProcessor.from_pretrained(descriptor_dir, trust_remote_code=True)
    except (OSError, ValueError) as error:
        raise PublishError(
            f"{descriptor_dir}: no image processor saved with the descriptor model ({error})"
        ) from None
    try:
        model, processor = compose_tca_video(
            _load_model(tca_model), descriptor.eval(), image_processor, fps=fps
        )
    except ValueError as error:
        raise PublishError(f"cannot compose the TCA video model: {error}") from None
    return publish_model(model, output_dir, processor=processor, **kwargs)


def read_training(path: str | os.PathLike | None) -> Mapping | str | None:
    """The card's training section from a file: a ``.json`` file is a dict of hyper-parameters, anything else
    markdown text."""
    if path is None:
        return None
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PublishError(f"training section ({path}): the file does not exist") from None
    if path.suffix != ".json":
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PublishError(f"training section ({path}): expected a JSON object ({error})") from None
