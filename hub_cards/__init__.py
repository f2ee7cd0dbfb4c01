"""Hub publishing: model card templates (`tca_card.md`, `locvtp_card.md`), `publish` (the folder, the card and
the one model-index builder, `model_index_entries`) and `reload_check` (the reload-without-vidtempo check).
The command is `cli/publish.py`."""

from .publish import PublishError, build_model_card, load_results, publish_model, push_folder

__all__ = ["PublishError", "build_model_card", "load_results", "publish_model", "push_folder"]
