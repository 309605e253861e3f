#include "core/child.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX, for posix_spawnp

namespace assetmv {

namespace {

// How often an exited child's status is asked for once its pipes closed: a
// process that closes its output exits within milliseconds.
constexpr std::chrono::milliseconds kReapPoll{10};

struct Child {
  EventLoop& loop;
  pid_t pid = -1;
  std::array<int, 2> fds{-1, -1};  // our ends of its stdout and stderr
  std::array<std::string, 2> text;
  EventLoop::TimerId deadline = 0;
  EventLoop::TimerId reaper = 0;
  bool timed_out = false;
  bool finished = false;
  std::function<void(Result<ChildOutput>)> done;

  explicit Child(EventLoop& l) : loop(l) {}
  ~Child() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
};

void finish(const std::shared_ptr<Child>& c, Result<ChildOutput> r) {
  if (c->finished) return;
  c->finished = true;
  c->loop.cancel(c->deadline);
  c->loop.cancel(c->reaper);
  for (int& fd : c->fds) {
    if (fd < 0) continue;
    c->loop.unwatch(fd);
    ::close(fd);
    fd = -1;
  }
  auto done = std::move(c->done);
  done(std::move(r));
}

void reap(const std::shared_ptr<Child>& c) {
  int status = 0;
  const pid_t r = ::waitpid(c->pid, &status, WNOHANG);
  if (r == 0) {  // output closed, process not gone yet
    c->reaper = c->loop.call_after(kReapPoll, [c] { reap(c); });
    return;
  }
  if (c->timed_out) return finish(c, fail(ErrorKind::Retryable, "Timeout", "did not finish in time: killed"));
  ChildOutput out;
  out.out = std::move(c->text[0]);
  out.err = std::move(c->text[1]);
  if (r < 0) return finish(c, fail(ErrorKind::Fatal, "WaitFailed", errno_text(errno)));
  if (WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) out.signal = WTERMSIG(status);
  finish(c, std::move(out));
}

void on_readable(const std::shared_ptr<Child>& c, std::size_t which) {
  std::array<char, 4096> buf{};
  for (;;) {
    const ssize_t n = ::read(c->fds[which], buf.data(), buf.size());
    if (n > 0) {
      auto& t = c->text[which];
      t.append(buf.data(), std::min<std::size_t>(static_cast<std::size_t>(n), kMaxChildOutput - t.size()));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    break;  // end of output (or an error reading it)
  }
  c->loop.unwatch(c->fds[which]);
  ::close(c->fds[which]);
  c->fds[which] = -1;
  if (c->fds[0] < 0 && c->fds[1] < 0) reap(c);
}

}  // namespace

void run_child(EventLoop& loop, std::vector<std::string> argv, std::chrono::milliseconds timeout,
               std::function<void(Result<ChildOutput>)> done) {
  auto c = std::make_shared<Child>(loop);
  c->done = std::move(done);
  auto refuse = [&loop, c](std::string why) {
    loop.post([c, why = std::move(why)] { finish(c, fail(ErrorKind::Fatal, "CannotStart", why)); });
  };
  if (argv.empty()) return refuse("the command is empty");
  std::array<std::array<int, 2>, 2> pipes{};
  for (auto& p : pipes) {
    if (::pipe2(p.data(), O_CLOEXEC) != 0) return refuse(fmt::format("pipe: {}", errno_text(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipes[0][1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipes[1][1], 2);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const int rc = posix_spawnp(&c->pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  for (auto& p : pipes) ::close(p[1]);
  c->fds = {pipes[0][0], pipes[1][0]};
  if (rc != 0) return refuse(fmt::format("cannot run {}: {}", argv[0], errno_text(rc)));
  for (std::size_t i = 0; i < 2; ++i) {
    ::fcntl(c->fds[i], F_SETFL, ::fcntl(c->fds[i], F_GETFL) | O_NONBLOCK);
    loop.watch(c->fds[i], true, false, [c, i](bool, bool, bool) { on_readable(c, i); });
  }
  c->deadline = loop.call_after(timeout, [c] {
    c->timed_out = true;
    ::kill(c->pid, SIGKILL);
    // Its pipes may be held open by its own children: reap it now.
    for (int& fd : c->fds) {
      if (fd < 0) continue;
      c->loop.unwatch(fd);
      ::close(fd);
      fd = -1;
    }
    reap(c);
  });
}

std::optional<std::vector<std::string>> split_command(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char ch = line[i];
    if (quote == '\'') {
      if (ch == '\'')
        quote = 0;
      else
        word += ch;
    } else if (quote == '"') {
      if (ch == '"') {
        quote = 0;
      } else if (ch == '\\' && i + 1 < line.size() && std::strchr("\"\\$`\n", line[i + 1]) != nullptr) {
        word += line[++i];
      } else {
        word += ch;
      }
    } else if (ch == '\'' || ch == '"') {
      quote = ch;
      in_word = true;
    } else if (ch == '\\' && i + 1 < line.size()) {
      word += line[++i];
      in_word = true;
    } else if (ch == ' ' || ch == '\t' || ch == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += ch;
      in_word = true;
    }
  }
  if (quote != 0) return std::nullopt;
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace assetmv
