"""End-to-end checks of the Python client against a running server.

usage: e2e.py HOST:PORT   (slabserve must be importable)
       e2e.py --secure HOST:PORT CA_PEM API_KEY  (a server with TLS and keys)
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


class SecureClientTest(unittest.TestCase):
    """Against a server with TLS and API keys (run with --secure)."""

    def secure_client(self, **kwargs):
        with open(CA_FILE, "rb") as ca:
            return slabserve.Client(TARGET, timeout=30,
                                    root_certificates=ca.read(), **kwargs)

    def test_key_over_tls(self):
        with self.secure_client(api_key=API_KEY) as client:
            self.assertEqual(client.info().architecture, "griffin")
            chunks = list(client.generate(ids=[2, 3, 4], max_tokens=3))
            self.assertEqual(sum(len(c.token_ids) for c in chunks), 3)

    def test_missing_or_wrong_key_is_unauthenticated(self):
        for key in (None, "wrong-key-0123456789abcdef"):
            with self.secure_client(api_key=key) as client:
                with self.assertRaises(slabserve.SlabserveError) as caught:
                    client.info()
                self.assertEqual(caught.exception.code, "UNAUTHENTICATED")
                self.assertIn("API key", caught.exception.details)

    def test_plaintext_does_not_connect(self):
        with slabserve.Client(TARGET, timeout=10, api_key=API_KEY) as client:
            with self.assertRaises(slabserve.SlabserveError) as caught:
                client.info()
            self.assertEqual(caught.exception.code, "UNAVAILABLE")


if __name__ == "__main__":
    if sys.argv[1] == "--secure":
        _, _, TARGET, CA_FILE, API_KEY = sys.argv[:5]
        del sys.argv[1:5]
        unittest.main(verbosity=2, defaultTest="SecureClientTest")
    else:
        TARGET = sys.argv.pop(1)
        unittest.main(verbosity=2, defaultTest="ClientTest")
