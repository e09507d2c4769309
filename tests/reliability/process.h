/// @file tests/reliability/process.h @brief Child processes for the fault tests: start a program with extra environment variables and its output in a file, kill it, wait for its status.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace ember::test {

/// How a child ended (waitpid's status).
struct ExitStatus {
  int raw = 0;
  bool exited_with(int code) const { return WIFEXITED(raw) && WEXITSTATUS(raw) == code; }
  bool killed_by(int sig) const { return WIFSIGNALED(raw) && WTERMSIG(raw) == sig; }
};

/// A started child; wait() must be called (the destructor kills and reaps a child still running).
class Process {
 public:
  explicit Process(pid_t pid) : pid_(pid) {}
  Process(Process&& o) noexcept : pid_(o.pid_), status_(o.status_) { o.pid_ = -1; }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  /// True while the child has not exited (reaps it when it has).
  bool running() {
    if (pid_ <= 0) return false;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_.raw = st;
      pid_ = -1;
      return false;
    }
    return true;
  }
  /// Sends `sig`; false when the child had already ended.
  bool kill(int sig) { return running() && ::kill(pid_, sig) == 0; }
  ExitStatus wait() {
    if (pid_ > 0) {
      int st = 0;
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
      status_.raw = st;
      pid_ = -1;
    }
    return status_;
  }

 private:
  pid_t pid_;
  ExitStatus status_;
};

/// Starts argv[0] (a path) with argv, this process's environment plus `extra_env` ("NAME=value"), stdin
/// from /dev/null and stdout + stderr to `log` (truncated).
inline Process start_process(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                             const std::string& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings(extra_env);
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);  // extras first: they win
  std::vector<char*> env;
  for (auto& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
  return Process(pid);
}

/// Runs a program to its end (see start_process).
inline ExitStatus run_process(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                              const std::string& log) {
  return start_process(argv, extra_env, log).wait();
}

}  // namespace ember::test
