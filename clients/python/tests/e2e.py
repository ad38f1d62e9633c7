"""End-to-end checks of the Python client against a running server.

usage: e2e.py HOST:PORT   (slabserve must be importable)
"""
import sys
import unittest

import slabserve
from slabserve import slabserve_pb2

TARGET = "127.0.0.1:50051"


class ClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.client = slabserve.Client(TARGET, timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def test_health(self):
        self.assertEqual(self.client.health(), "SERVING")

    def test_info(self):
        info = self.client.info()
        self.assertEqual(info.architecture, "griffin")
        self.assertGreater(info.vocab_size, 0)
        self.assertGreater(info.num_layers, 0)
        self.assertGreater(info.slot_capacity, 0)
        self.assertTrue(info.has_tokenizer)

    def test_tokenize_round_trip(self):
        ids = self.client.tokenize("hello world")
        self.assertTrue(ids)
        self.assertTrue(all(isinstance(i, int) for i in ids))
        self.assertEqual(self.client.detokenize(ids), "hello world")

    def test_generate_streams_exactly_max_tokens(self):
        chunks = list(self.client.generate("hello", max_tokens=8,
                                           ignore_eos=True))
        self.assertTrue(chunks)
        ids = [i for c in chunks for i in c.token_ids]
        self.assertEqual(len(ids), 8)
        last = chunks[-1]
        self.assertEqual(last.finish_reason, slabserve_pb2.FINISH_REASON_LENGTH)
        self.assertEqual(last.usage.completion_tokens, 8)
        self.assertGreater(last.usage.prompt_tokens, 0)
        self.assertEqual(self.client.detokenize(ids),
                         "".join(c.text for c in chunks))

    def test_greedy_and_seeded_sampling_repeat(self):
        def run(**kw):
            return [i for c in self.client.generate(ids=[5, 6, 7, 8],
                                                    max_tokens=6,
                                                    ignore_eos=True, **kw)
                    for i in c.token_ids]
        self.assertEqual(run(), run())
        self.assertEqual(run(temperature=1.0, seed=42),
                         run(temperature=1.0, seed=42))

    def test_n_completions(self):
        texts = self.client.complete("abc", max_tokens=4, n=2,
                                     ignore_eos=True, temperature=1.0,
                                     seed=3)
        self.assertEqual(len(texts), 2)

    def test_errors_carry_status(self):
        with self.assertRaises(slabserve.SlabserveError) as caught:
            list(self.client.generate("hi", max_tokens=0))
        self.assertEqual(caught.exception.code, "INVALID_ARGUMENT")
        self.assertTrue(caught.exception.details)
        with self.assertRaises(ValueError):
            self.client.generate()

    def test_unreachable_server(self):
        with slabserve.Client("127.0.0.1:1", timeout=5) as dead:
            with self.assertRaises(slabserve.SlabserveError) as caught:
                dead.health()
            self.assertEqual(caught.exception.code, "UNAVAILABLE")


if __name__ == "__main__":
    TARGET = sys.argv.pop(1)
    unittest.main(verbosity=2)
