"""Builds the training corpus and tokenizer from the King James Bible.

Source: Debian's bible-kjv-text (read with the `bible` program from bible-kjv).
One verse per line. Every 50th chapter (chapter index % 50 == 49, about 2 % of
the text) is held out for perplexity. The SentencePiece BPE tokenizer is
trained on the training split only and uses Gemma's special ids.

Writes into WORKDIR (default out/train): train.txt, heldout.txt,
tokenizer.model, tokens.npz (train ids, verse start offsets, held-out ids).
"""

import os
import re
import subprocess
import sys

import numpy as np
import sentencepiece as spm

HELDOUT_EVERY = 50
VOCAB_SIZE = 4096
NEWLINE_PIECE = "<0x0A>"


def read_bible():
    """Returns a list of chapters, each a list of verse strings."""
    text = subprocess.run(
        ["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
    chapters, key = [], None
    for line in text.splitlines():
        match = re.match(r"^(\S+?)(\d+):(\d+) (.*)$", line)
        if not match:
            continue
        book, chapter, _, verse = match.groups()
        if (book, chapter) != key:
            chapters.append([])
            key = (book, chapter)
        chapters[-1].append(verse.strip())
    if len(chapters) != 1189:
        raise RuntimeError(f"expected 1189 chapters from `bible`, got {len(chapters)}")
    return chapters


def train_tokenizer(train_txt, prefix):
    spm.SentencePieceTrainer.train(
        input=train_txt,
        model_prefix=prefix,
        model_type="bpe",
        vocab_size=VOCAB_SIZE,
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        split_digits=True,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        num_threads=1,
        minloglevel=2,
    )


def encode_verses(sp, verses):
    """Concatenates verses, each followed by a newline; returns ids and verse starts."""
    newline = sp.piece_to_id(NEWLINE_PIECE)
    ids, starts = [], []
    for verse in verses:
        starts.append(len(ids))
        ids.extend(sp.encode(verse))
        ids.append(newline)
    return np.array(ids, dtype=np.int32), np.array(starts, dtype=np.int64)


def main(workdir="out/train"):
    os.makedirs(workdir, exist_ok=True)
    chapters = read_bible()
    is_held = [i % HELDOUT_EVERY == HELDOUT_EVERY - 1 for i in range(len(chapters))]
    train = [v for ch, h in zip(chapters, is_held) if not h for v in ch]
    held = [v for ch, h in zip(chapters, is_held) if h for v in ch]
    for name, verses in (("train.txt", train), ("heldout.txt", held)):
        with open(os.path.join(workdir, name), "w") as f:
            f.write("\n".join(verses) + "\n")
    prefix = os.path.join(workdir, "tokenizer")
    train_tokenizer(os.path.join(workdir, "train.txt"), prefix)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    train_ids, train_starts = encode_verses(sp, train)
    held_ids, _ = encode_verses(sp, held)
    np.savez(os.path.join(workdir, "tokens.npz"),
             train_ids=train_ids, train_starts=train_starts, heldout_ids=held_ids)
    chars = sum(len(v) + 1 for v in train)
    print(f"train: {len(train)} verses, {chars} chars, {len(train_ids)} tokens "
          f"({chars / len(train_ids):.2f} chars/token); held out: {len(held)} verses, "
          f"{len(held_ids)} tokens")


if __name__ == "__main__":
    main(*sys.argv[1:])
