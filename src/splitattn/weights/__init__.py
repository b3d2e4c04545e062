"""Checkpoint interchange: reference layouts to ours."""

from .convert import SOURCES, convert_state_dict, unwrap_state_dict

__all__ = ["SOURCES", "convert_state_dict", "unwrap_state_dict"]
