"""Hub publishing: model card templates (`tca_card.md`, `locvtp_card.md`) and `vidtempo-publish`."""

from .publish import PublishError, build_model_card, load_results, publish_model, push_folder

__all__ = ["PublishError", "build_model_card", "load_results", "publish_model", "push_folder"]
