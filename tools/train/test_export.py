"""Tests of the exported default model folder.

Run from the repository root: /usr/bin/python3 tools/train/test_export.py
"""

import json
import os
import sys
import unittest

import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import griffin  # noqa: E402
import safetensors_io  # noqa: E402

MODEL_DIR = "models/default"


def model_file(name):
    return os.path.join(MODEL_DIR, name)


class TokenizerTest(unittest.TestCase):
    def setUp(self):
        self.sp = spm.SentencePieceProcessor(model_file=model_file("tokenizer.model"))

    def test_gemma_special_ids(self):
        self.assertEqual(self.sp.pad_id(), 0)
        self.assertEqual(self.sp.eos_id(), 1)
        self.assertEqual(self.sp.bos_id(), 2)
        self.assertEqual(self.sp.unk_id(), 3)
        pieces = [self.sp.id_to_piece(i) for i in range(4)]
        self.assertEqual(pieces, ["<pad>", "<eos>", "<bos>", "<unk>"])

    def test_round_trip(self):
        for text in ["In the beginning God created the heaven and the earth.",
                     "And God said, Let there be light: and there was light.",
                     "Verse 3:16 and 2 spaces  here\nnew line",
                     "Jérusalem, Ζεύς, 東京 🙂"]:
            ids = self.sp.encode(text)
            self.assertTrue(all(4 <= i < self.sp.get_piece_size() for i in ids), text)
            self.assertEqual(self.sp.decode(ids), text)

    def test_common_words_are_single_pieces(self):
        self.assertEqual(self.sp.encode("In the beginning", out_type=str),
                         ["In", "▁the", "▁beginning"])

    def test_vocab_matches_config(self):
        with open(model_file("config.json")) as f:
            config = json.load(f)
        self.assertEqual(self.sp.get_piece_size(), config["vocab_size"])


class CheckpointTest(unittest.TestCase):
    def test_hf_layout(self):
        with open(model_file("config.json")) as f:
            config = json.load(f)
        self.assertEqual(config["model_type"], "recurrent_gemma")
        tensors = safetensors_io.load(model_file("model.safetensors"))
        self.assertNotIn("lm_head.weight", tensors)
        expected = griffin.Griffin(griffin.GriffinConfig.from_hf(config)).state_dict()
        self.assertEqual(sorted(tensors), sorted(expected))
        for name, tensor in tensors.items():
            self.assertEqual(tensor.shape, expected[name].shape, name)
        self.assertLessEqual(os.path.getsize(model_file("model.safetensors")), 30 * 2**20)

    def test_reference_matches_weights(self):
        with open(model_file("reference.json")) as f:
            reference = json.load(f)
        model = griffin.load_pretrained(model_file("config.json"), model_file("model.safetensors"))
        case = reference["cases"][0]
        steps, ids = griffin.greedy(model, case["prompt_ids"], reference["greedy_new_tokens"])
        expected = torch.tensor(case["last_logits"], dtype=torch.float64)
        self.assertLessEqual((steps[0] - expected).abs().max().item(), 1e-5)
        self.assertEqual(ids, case["greedy_ids"])


if __name__ == "__main__":
    unittest.main()
