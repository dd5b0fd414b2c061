"""The model zoo: shipped configs and the Detectron2 checkpoints trained with them."""
from .model_zoo import get, get_checkpoint_url, get_config, get_config_file, list_configs

__all__ = ["get_config_file", "get_config", "get_checkpoint_url", "list_configs", "get"]
