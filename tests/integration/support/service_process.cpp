#include "support/service_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>
#include <stdexcept>

namespace pix::test {

std::string kafka_bootstrap() {
  const char* v = std::getenv("PIX_KAFKA_BOOTSTRAP");
  return v && *v ? v : "127.0.0.1:9092";
}

std::string rabbit_url() {
  const char* v = std::getenv("PIX_RABBIT_URL");
  return v && *v ? v : "amqp://guest:guest@127.0.0.1:5672/";
}

std::string program_path(const std::string& name) {
  const std::string api = PIX_API_BINARY;
  return api.substr(0, api.rfind('/') + 1) + name;
}

GatewayProcess::GatewayProcess(std::vector<std::string> args, const std::map<std::string, std::string>& env)
    : ServiceProcess(
          PIX_API_BINARY,
          [&] {
            std::vector<std::string> a{"--port", "0", "--log-format", "text"};
            a.insert(a.end(), args.begin(), args.end());
            return a;
          }(),
          R"(listening on https?://[0-9.]+:([0-9]+)/)", env) {}

StageProcess::StageProcess(const std::string& program, std::vector<std::string> args,
                           const std::map<std::string, std::string>& env)
    : ServiceProcess(
          program_path(program),
          [&] {
            std::vector<std::string> a{"--admin-port", "0", "--log-format", "text"};
            a.insert(a.end(), args.begin(), args.end());
            return a;
          }(),
          R"(admin on http://[0-9.]+:([0-9]+))", env) {}

ServiceProcess::ServiceProcess(const std::string& binary, std::vector<std::string> args,
                               const std::string& port_pattern, const std::map<std::string, std::string>& env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::vector<std::string> argv_s{binary};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  // The child's environment, built before fork(): the test's own, with `env` on top.
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv(*e);
    if (!env.count(kv.substr(0, kv.find('=')))) env_s.push_back(kv);
  }
  for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& kv : env_s) envp.push_back(kv.data());
  envp.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(fds[1], STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  stderr_fd_ = fds[0];
  fcntl(stderr_fd_, F_SETFL, O_NONBLOCK);

  const std::regex kListening(port_pattern);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::smatch m;
  while (!std::regex_search(logs_, m, kListening)) {
    if (std::chrono::steady_clock::now() > deadline || waitpid(pid_, nullptr, WNOHANG) == pid_) {
      throw std::runtime_error(binary + " did not start; its output:\n" + logs_);
    }
    pump(std::chrono::milliseconds(100));
  }
  port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
}

ServiceProcess::~ServiceProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (stderr_fd_ >= 0) close(stderr_fd_);
}

void ServiceProcess::pump(std::chrono::milliseconds timeout) {
  pollfd p{stderr_fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(stderr_fd_, buf, sizeof buf);
    if (n <= 0) break;
    logs_.append(buf, static_cast<std::size_t>(n));
  }
}

std::string ServiceProcess::logs() {
  pump(std::chrono::milliseconds(0));
  return logs_;
}

void ServiceProcess::signal(int sig) const {
  ::kill(pid_, sig);
}

int ServiceProcess::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      pump(std::chrono::milliseconds(0));
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    pump(std::chrono::milliseconds(20));
  }
  return -1;
}

}  // namespace pix::test

namespace pix::test {

void ServiceProcess::kill_hard() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace pix::test
