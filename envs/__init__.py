"""Arena's Gymnasium environments; importing this package registers them as arena/<Name>-v0."""

from gymnasium.envs.registration import register, registry

from envs.grid import GridError, GridWorldEnv
from envs.imagegen import ImageError, ImageGenerationEnv
from envs.mdp import MDPError, TabularMDPEnv
from envs.sequence import SequenceError, SequencePredictionEnv
from envs.text import TextError, TextGenerationEnv
from envs.textbook import MaximizationBiasEnv

__all__ = ["GridError", "GridWorldEnv", "ImageError", "ImageGenerationEnv", "MDPError", "MaximizationBiasEnv",
           "SequenceError", "SequencePredictionEnv", "TabularMDPEnv", "TextError", "TextGenerationEnv"]

if "arena/GridWorld-v0" not in registry:
    register(id="arena/GridWorld-v0", entry_point="envs.grid:GridWorldEnv", vector_entry_point="envs.grid:GridWorldVectorEnv")
if "arena/TabularMDP-v0" not in registry:
    register(id="arena/TabularMDP-v0", entry_point="envs.mdp:TabularMDPEnv")
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
