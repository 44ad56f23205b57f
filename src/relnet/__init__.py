"""relnet: Relation Networks (Santoro et al. 2017) for PyTorch, end to end."""

from relnet.nn import (ConvObjects, MLP, ObjectMLP, QuestionLSTM, RelationNetwork, SentenceObjects, StateObjects,
                       TernaryRelationNetwork)

__version__ = "0.1.0"

__all__ = ["RelationNetwork", "TernaryRelationNetwork", "MLP", "ConvObjects", "SentenceObjects", "StateObjects",
           "QuestionLSTM", "ObjectMLP", "__version__"]
