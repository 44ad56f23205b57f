"""Neural-network building blocks of relnet."""

from relnet.nn.baselines import ObjectMLP
from relnet.nn.mlp import MLP
from relnet.nn.objects import (ConvObjects, KeypointObjects, SentenceObjects, StateObjects, colour_clusters,
                               grid_coordinates)
from relnet.nn.questions import QuestionLSTM
from relnet.nn.relation import RelationNetwork
from relnet.nn.ternary import TernaryRelationNetwork

__all__ = ["MLP", "RelationNetwork", "TernaryRelationNetwork", "ConvObjects", "KeypointObjects", "SentenceObjects", "StateObjects", "QuestionLSTM", "ObjectMLP",
           "grid_coordinates"]
