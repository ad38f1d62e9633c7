"""Python client for a slabserve server (gRPC API slabserve.v1).

    import slabserve
    with slabserve.Client("127.0.0.1:50051") as client:
        for chunk in client.generate("Once upon a time", max_tokens=32):
            print(chunk.text, end="", flush=True)

Chunks are slabserve.v1.GenerateChunk protobuf messages (fields index,
token_ids, text, finish_reason, usage, ...). Failed calls raise
SlabserveError carrying the gRPC status code name and the server's message.
"""

import grpc

try:
    from slabserve.v1 import health_pb2
    from slabserve.v1 import slabserve_pb2
    from slabserve.v1 import slabserve_pb2_grpc
except ImportError as e:  # The stubs are generated at build time.
    raise ImportError(
        "slabserve: generated stubs are missing; run "
        "scripts/install_python_client.sh (%s)" % e) from e

__all__ = ["Client", "SlabserveError", "slabserve_pb2"]

_HEALTH_CHECK = "/grpc.health.v1.Health/Check"


class SlabserveError(Exception):
    """A failed call: `code` is the gRPC status name, `details` its message."""

    def __init__(self, code, details):
        super().__init__("%s: %s" % (code, details))
        self.code = code
        self.details = details


# A stream that an HTTP/2 proxy (nginx's grpc_pass) cuts because its server
# went away mid-stream can only be reset, with INTERNAL_ERROR, which gRPC
# reports as INTERNAL; a direct connection that breaks reads UNAVAILABLE.
# Both mean the server vanished, so the reset is reported as UNAVAILABLE.
_PROXY_RESET = "Received RST_STREAM with error code 2"


def _error(rpc_error):
    code, details = rpc_error.code().name, rpc_error.details() or ""
    if code == "INTERNAL" and details.startswith(_PROXY_RESET):
        return SlabserveError(
            "UNAVAILABLE", "stream reset by a proxy (HTTP/2 INTERNAL_ERROR): "
            "the server behind it went away")
    return SlabserveError(code, details)


class Client:
    """Connection to one server; safe to share between threads."""

    def __init__(self, target="127.0.0.1:50051", timeout=None, *,
                 tls=False, root_certificates=None, certificate_chain=None,
                 private_key=None, api_key=None):
        """`timeout` (seconds) is the default deadline of every call.

        TLS is on with `tls=True` or any PEM argument (bytes): the server is
        checked against `root_certificates` (default: the system's CAs);
        `certificate_chain` and `private_key` answer a server that asks for
        a client certificate. `api_key`, when given, is sent with every call
        as "authorization: Bearer KEY".
        """
        self.target = target
        self.timeout = timeout
        self._metadata = (("authorization", "Bearer " + api_key),) \
            if api_key else None
        if tls or root_certificates or certificate_chain or private_key:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=root_certificates, private_key=private_key,
                certificate_chain=certificate_chain)
            self._channel = grpc.secure_channel(target, credentials)
        else:
            self._channel = grpc.insecure_channel(target)
        self._stub = slabserve_pb2_grpc.SlabserveStub(self._channel)
        self._health = self._channel.unary_unary(
            _HEALTH_CHECK,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _timeout(self, timeout):
        return self.timeout if timeout is None else timeout

    def generate(self, prompt=None, *, ids=None, max_tokens=64,
                 temperature=0.0, top_k=0, top_p=0.0, min_p=0.0,
                 repetition_penalty=0.0, presence_penalty=0.0,
                 frequency_penalty=0.0, seed=0, n=1, stop=(),
                 stop_token_ids=(), ignore_eos=False, logprobs=False,
                 top_logprobs=0, priority=0, request_id="", timeout=None):
        """Yields GenerateChunk messages as the server streams them.

        Give the prompt as text (`prompt`) or token ids (`ids`). Leaving the
        loop early cancels the request on the server.
        """
        if (prompt is None) == (ids is None):
            raise ValueError("generate needs exactly one of prompt or ids")
        request = slabserve_pb2.GenerateRequest(
            request_id=request_id, max_tokens=max_tokens, n=n,
            stop=list(stop), stop_token_ids=list(stop_token_ids),
            ignore_eos=ignore_eos, logprobs=logprobs,
            top_logprobs=top_logprobs, priority=priority,
            sampling=slabserve_pb2.SamplingParams(
                temperature=temperature, top_k=top_k, top_p=top_p,
                min_p=min_p, repetition_penalty=repetition_penalty,
                presence_penalty=presence_penalty,
                frequency_penalty=frequency_penalty, seed=seed))
        if prompt is not None:
            request.text = prompt
        else:
            request.token_ids.ids.extend(ids)
        # Validation above runs at the call; the stream starts on iteration.
        return self._stream(request, self._timeout(timeout))

    def _stream(self, request, timeout):
        call = self._stub.Generate(request, timeout=timeout,
                                   metadata=self._metadata)
        try:
            for chunk in call:
                yield chunk
        except grpc.RpcError as e:
            raise _error(e) from None
        finally:
            call.cancel()  # No-op when the stream already finished.

    def complete(self, prompt=None, **kwargs):
        """Runs generate() to the end; returns the text of each completion."""
        texts = {}
        for chunk in self.generate(prompt, **kwargs):
            texts[chunk.index] = texts.get(chunk.index, "") + chunk.text
        return [texts[i] for i in sorted(texts)]

    def tokenize(self, text, add_bos=False, timeout=None):
        """Returns the token ids of `text`."""
        return list(self._unary(
            self._stub.Tokenize,
            slabserve_pb2.TokenizeRequest(text=text, add_bos=add_bos),
            timeout).ids)

    def detokenize(self, ids, timeout=None):
        """Returns the text of token `ids`."""
        return self._unary(self._stub.Detokenize,
                           slabserve_pb2.DetokenizeRequest(ids=list(ids)),
                           timeout).text

    def info(self, timeout=None):
        """Returns the ModelInfo message (model shape, slots, limits)."""
        return self._unary(self._stub.GetModelInfo,
                           slabserve_pb2.ModelInfoRequest(), timeout)

    def health(self, service="", timeout=None):
        """Returns the serving status name, e.g. "SERVING"."""
        response = self._unary(
            self._health, health_pb2.HealthCheckRequest(service=service),
            timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(
            response.status)

    def _unary(self, method, request, timeout):
        try:
            return method(request, timeout=self._timeout(timeout),
                          metadata=self._metadata)
        except grpc.RpcError as e:
            raise _error(e) from None
