#include "tests/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace slabserve::testing {
namespace {

constexpr char kBinary[] = "server/slabserve";

std::string MakeTempDir() {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string pattern =
      absl::StrCat(root != nullptr ? root : "/tmp", "/slabserve.XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  return mkdtemp(buffer.data()) != nullptr ? std::string(buffer.data()) : "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Spawns the binary with stdout and stderr going to `log_path`.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& flags,
                            const std::string& log_path) {
  std::vector<std::string> args = {kBinary};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, kBinary, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("cannot spawn ", kBinary, ": ", std::strerror(rc)));
  }
  return pid;
}

// Waits for `pid`; the exit code, -1 if it died by a signal, nullopt if it
// is still running after `timeout`.
std::optional<int> WaitPid(pid_t pid, absl::Duration timeout) {
  absl::Time end = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (done < 0) return -1;
    if (absl::Now() >= end) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

std::optional<int> ReadPort(const std::string& path) {
  int port = 0;
  std::string text = ReadFile(path);
  if (text.empty() || text.back() != '\n') return std::nullopt;
  text.pop_back();
  if (!absl::SimpleAtoi(text, &port)) return std::nullopt;
  return port;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::vector<std::string>& flags) {
  std::string dir = MakeTempDir();
  if (dir.empty()) return absl::InternalError("cannot create a temp dir");
  std::vector<std::string> all = flags;
  all.push_back("--listen=127.0.0.1:0");
  all.push_back("--metrics_listen=127.0.0.1:0");
  all.push_back(absl::StrCat("--port_file=", dir, "/port"));
  all.push_back(absl::StrCat("--metrics_port_file=", dir, "/metrics_port"));
  absl::StatusOr<pid_t> pid = Spawn(all, dir + "/log");
  if (!pid.ok()) return pid.status();
  std::unique_ptr<ServerProcess> server(new ServerProcess(*pid, dir));
  absl::Time end = absl::Now() + absl::Seconds(60);
  while (true) {
    std::optional<int> port = ReadPort(dir + "/port");
    std::optional<int> metrics_port = ReadPort(dir + "/metrics_port");
    if (port && metrics_port) {
      server->port_ = *port;
      server->metrics_port_ = *metrics_port;
      return server;
    }
    if (std::optional<int> code = server->WaitForExit(absl::ZeroDuration())) {
      return absl::InternalError(absl::StrCat("slabserve exited with ", *code,
                                              " before serving:\n",
                                              server->Log()));
    }
    if (absl::Now() >= end) {
      return absl::DeadlineExceededError(
          absl::StrCat("slabserve did not start in 60 s:\n", server->Log()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

ServerProcess::~ServerProcess() {
  if (!exited_) {
    kill(pid_, SIGKILL);
    WaitPid(pid_, absl::Seconds(10));
  }
}

std::string ServerProcess::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

std::shared_ptr<grpc::Channel> ServerProcess::NewChannel() const {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address(),
                                   grpc::InsecureChannelCredentials(), args);
}

std::optional<int> ServerProcess::WaitForExit(absl::Duration timeout) {
  if (exited_) return std::nullopt;
  std::optional<int> code = WaitPid(pid_, timeout);
  if (code.has_value()) exited_ = true;
  return code;
}

std::string ServerProcess::Log() const { return ReadFile(dir_ + "/log"); }

ProcessResult RunServerToExit(const std::vector<std::string>& flags,
                              absl::Duration timeout) {
  ProcessResult result;
  std::string dir = MakeTempDir();
  absl::StatusOr<pid_t> pid = Spawn(flags, dir + "/log");
  if (!pid.ok()) {
    result.output = std::string(pid.status().message());
    return result;
  }
  std::optional<int> code = WaitPid(*pid, timeout);
  if (!code.has_value()) {
    kill(*pid, SIGKILL);
    WaitPid(*pid, absl::Seconds(10));
  }
  result.exit_code = code.value_or(-1);
  result.output = ReadFile(dir + "/log");
  return result;
}

std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ==
      0) {
    std::string request = absl::StrCat(
        "GET ", path,
        " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      ssize_t n;
      while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
        response.append(buffer, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  return response;
}

}  // namespace slabserve::testing
