"""Arena's Gymnasium environments; importing this package registers them as arena/<Name>-v0."""

from gymnasium.envs.registration import register, registry

from envs.grid import GridError, GridWorldEnv
from envs.imagegen import ImageError, ImageGenerationEnv
from envs.sequence import SequenceError, SequencePredictionEnv
from envs.text import TextError, TextGenerationEnv
from envs.textbook import MaximizationBiasEnv

__all__ = ["GridError", "GridWorldEnv", "ImageError", "ImageGenerationEnv", "MaximizationBiasEnv", "SequenceError", "SequencePredictionEnv", "TextError",
           "TextGenerationEnv"]

if "arena/GridWorld-v0" not in registry:
    register(id="arena/GridWorld-v0", entry_point="envs.grid:GridWorldEnv", vector_entry_point="envs.grid:GridWorldVectorEnv")
if "arena/MaximizationBias-v0" not in registry:
    register(id="arena/MaximizationBias-v0", entry_point="envs.textbook:MaximizationBiasEnv")
if "arena/SequencePrediction-v0" not in registry:
    register(
        id="arena/SequencePrediction-v0",
        entry_point="envs.sequence:SequencePredictionEnv",
        vector_entry_point="envs.sequence:SequenceVectorEnv",
    )
if "arena/ImageGeneration-v0" not in registry:
    register(id="arena/ImageGeneration-v0", entry_point="envs.imagegen:ImageGenerationEnv")
if "arena/TextGeneration-v0" not in registry:
    register(id="arena/TextGeneration-v0", entry_point="envs.text:TextGenerationEnv")
