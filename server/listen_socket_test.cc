#include "server/listen_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve::server {
namespace {

using ::testing::HasSubstr;

// Not a valid host name, so the resolver rejects it without asking DNS.
constexpr char kUnresolvableHost[] = "bad host!";

void CloseAll(const ListeningSockets& sockets) {
  for (int fd : sockets.fds) close(fd);
}

// Whether a client connects to 127.0.0.1:`port`.
bool Connects(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool connected =
      connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return connected;
}

TEST(ListenSocketTest, ResolvesANumericAddressWithItsPort) {
  absl::StatusOr<std::vector<ListenAddress>> addresses =
      ResolveListenAddresses("127.0.0.1", 8080);
  ASSERT_TRUE(addresses.ok()) << addresses.status();
  ASSERT_EQ(addresses->size(), 1u);
  const ListenAddress& address = addresses->front();
  ASSERT_EQ(address.family, AF_INET);
  const auto& ipv4 = reinterpret_cast<const sockaddr_in&>(address.address);
  EXPECT_EQ(ntohs(ipv4.sin_port), 8080);
  EXPECT_EQ(ntohl(ipv4.sin_addr.s_addr), INADDR_LOOPBACK);
}

TEST(ListenSocketTest, PortZeroListensOnAFreePort) {
  absl::StatusOr<ListeningSockets> sockets =
      ListenOnEveryAddress("127.0.0.1", 0, 16);
  ASSERT_TRUE(sockets.ok()) << sockets.status();
  EXPECT_EQ(sockets->fds.size(), 1u);
  ASSERT_GT(sockets->port, 0);
  EXPECT_TRUE(Connects(sockets->port));
  CloseAll(*sockets);
}

TEST(ListenSocketTest, PortInUseIsUnavailable) {
  absl::StatusOr<ListeningSockets> first =
      ListenOnEveryAddress("127.0.0.1", 0, 16);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<ListeningSockets> second =
      ListenOnEveryAddress("127.0.0.1", first->port, 16);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("cannot listen on 127.0.0.1:", first->port,
                                     ": Address already in use")));
  CloseAll(*first);
}

TEST(ListenSocketTest, UnresolvableHostIsInvalidArgument) {
  const std::string expected =
      absl::StrCat("cannot listen on ", kUnresolvableHost, ":80: ");
  absl::StatusOr<std::vector<ListenAddress>> addresses =
      ResolveListenAddresses(kUnresolvableHost, 80);
  EXPECT_EQ(addresses.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(addresses.status().message(), HasSubstr(expected));
  absl::StatusOr<ListeningSockets> sockets =
      ListenOnEveryAddress(kUnresolvableHost, 80, 16);
  EXPECT_EQ(sockets.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sockets.status().message(), HasSubstr(expected));
}

}  // namespace
}  // namespace slabserve::server
