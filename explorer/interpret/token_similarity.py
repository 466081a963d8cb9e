"""The bi-encoder contrast: query and document never meet until the final cosine.

Each text goes through the bi-encoder in its own pass. The matrix compares their
contextual token vectors (cosine), next to the one pooled sentence cosine the retriever
actually uses. Nothing in either pass can see the other text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.engine.model import LoadedModel
from explorer.rankers.bi_encoder import BiEncoder


@dataclass
class TokenSimilarity:
    """A bi-encoder's view of one pair: the cosine of every (query token, document token) pair of contextual
    vectors, beside the pooled sentence embeddings' cosine that retrieval uses."""
    query_tokens: list[str]
    doc_tokens: list[str]
    similarity: np.ndarray  # (query tokens, doc tokens) cosine of contextual token vectors
    pooled_cosine: float  # cosine of the two sentence embeddings, as used for retrieval
    model_name: str


def _token_vectors(model: LoadedModel, text: str, side: str) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """One pass over one text through the sentence-transformers model itself (fp32), with the
    side's prompt: its tokens (specials and prompt included), token vectors and sentence vector."""
    library = model.library
    prompt = model.prompt(side)
    features = library.preprocess([text], prompt=prompt or None, task=side)
    with torch.inference_mode():
        output = library(dict(features), task=side)
    hidden = output["token_embeddings"].float()
    tokens = model.tokenizer.convert_ids_to_tokens(features["input_ids"][0].tolist())
    return tokens, hidden[0], output["sentence_embedding"][0].float()


def bi_encoder_token_similarity(
    encoder: BiEncoder, query: str, document: str, include_special: bool = False
) -> TokenSimilarity:
    """Cosine between the bi-encoder's query-token and document-token vectors, from two separate passes (fp32)."""
    model = encoder.model
    query_tokens, query_hidden, query_sentence = _token_vectors(model, query, "query")
    doc_tokens, doc_hidden, doc_sentence = _token_vectors(model, document, "document")
    unit = torch.nn.functional.normalize
    similarity = (unit(query_hidden, dim=-1) @ unit(doc_hidden, dim=-1).T).numpy()
    if not include_special:
        # [UNK] stays: it is what the model read for a character it does not know (an emoji).
        special = set(model.tokenizer.all_special_tokens) - {model.tokenizer.unk_token}
        keep_q = [i for i, t in enumerate(query_tokens) if t not in special]
        keep_d = [j for j, t in enumerate(doc_tokens) if t not in special]
        similarity = similarity[np.ix_(keep_q, keep_d)]
        query_tokens = [query_tokens[i] for i in keep_q]
        doc_tokens = [doc_tokens[j] for j in keep_d]
    # The retriever's own score: the cosine of the two pooled sentence vectors.
    pooled_cosine = float(unit(query_sentence, dim=0) @ unit(doc_sentence, dim=0))
    return TokenSimilarity(
        query_tokens=query_tokens,
        doc_tokens=doc_tokens,
        similarity=similarity.astype(np.float32),
        pooled_cosine=pooled_cosine,
        model_name=model.name,
    )
