"""Question encoders: a word-level LSTM whose final hidden state is the question vector q."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence


def reverse_padded(tokens: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first ``lengths[b]`` tokens, keeping the padding at the end: ``(B, T) -> (B, T)``."""
    B, T = tokens.shape
    pos = torch.arange(T, device=tokens.device).expand(B, T)  # (B, T)
    src = torch.where(pos < lengths[:, None], lengths[:, None] - 1 - pos, pos)  # (B, T)
    return tokens.gather(1, src)


class QuestionLSTM(nn.Module):
    """Word embedding + single-layer LSTM over a padded batch (packed, so padding costs nothing).

    Args:
        vocab_size: number of token ids (id 0 is padding).
        embed_dim: word-embedding size (paper: 32).
        hidden_dim: LSTM units; the final hidden state h_T is the output (paper: 128 for CLEVR pixels).
        reverse: feed the words last-to-first (the trick that made CLEVR reproductions work).
        embedding: share an existing ``nn.Embedding`` instead of creating one.

    Shapes:
        tokens ``(B, T)`` long, lengths ``(B,)`` long (each >= 1) -> ``(B, hidden_dim)``.
    """

    def __init__(self, *, vocab_size: int, embed_dim: int = 32, hidden_dim: int = 128, reverse: bool = False,
                 embedding: nn.Embedding | None = None) -> None:
        super().__init__()
        self.embedding = embedding if embedding is not None else nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(self.embedding.embedding_dim, hidden_dim, batch_first=True)
        self.reverse = reverse
        self.out_dim = hidden_dim

    def extra_repr(self) -> str:
        return f"reverse={self.reverse}"

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        if tokens.ndim != 2 or lengths.shape != tokens.shape[:1]:
            raise ValueError(f"tokens must be (B, T) and lengths (B,), got {tuple(tokens.shape)}, {tuple(lengths.shape)}")
        if tokens.shape[0] == 0:
            return tokens.new_zeros(0, self.out_dim, dtype=self.embedding.weight.dtype)
        if bool((lengths < 1).any()):
            raise ValueError("every question must have at least one token")
        if self.reverse:
            tokens = reverse_padded(tokens, lengths)
        emb = self.embedding(tokens)  # (B, T, E)
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)  # h: (1, B, hidden) in the original batch order
        return h[-1]
