// A progress line for long runs: a redrawn bar with an ETA on a terminal, plain lines at every
// tenth otherwise (logs and CI stay readable). Runs shorter than a second show nothing.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

#include <fmt/core.h>

namespace lowbit::cli {

class Progress {
 public:
  /// `total` may be left 0 and given with the first update instead.
  explicit Progress(std::string label, std::size_t total = 0, std::FILE* out = stderr)
      : label_(std::move(label)),
        total_(total),
        out_(out),
        terminal_(::isatty(::fileno(out)) != 0),
        start_(Clock::now()) {}
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() { finish(); }

  void update(std::size_t done, std::size_t total) {
    total_ = total;
    update(done);
  }

  void update(std::size_t done) {
    if (finished_ || total_ == 0) return;
    const auto now = Clock::now();
    // Quick jobs stay quiet: nothing is shown before the first second.
    if (now - start_ < std::chrono::seconds(1)) return;
    if (terminal_) {
      // Redraw at most ten times a second, and always at the end.
      if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
      last_draw_ = now;
      constexpr std::size_t width = 30;
      const std::size_t filled = width * done / total_;
      fmt::print(out_, "\r{} [{}{}] {}/{} {}\x1b[K", label_, std::string(filled, '#'),
                 std::string(width - filled, ' '), done, total_, eta(done, now));
    } else {
      const std::size_t tenth = 10 * done / total_;
      if (tenth <= last_tenth_) return;
      last_tenth_ = tenth;
      fmt::print(out_, "{}: {}/{} ({}%) {}\n", label_, done, total_, 10 * tenth, eta(done, now));
    }
    std::fflush(out_);
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    if (terminal_ && total_ != 0) fmt::print(out_, "\r\x1b[K");
    std::fflush(out_);
  }

 private:
  using Clock = std::chrono::steady_clock;

  std::string eta(std::size_t done, Clock::time_point now) const {
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    if (done == 0) return "";
    if (done >= total_) return fmt::format("done in {:.1f} s", elapsed);
    const double left = elapsed * static_cast<double>(total_ - done) / static_cast<double>(done);
    const auto seconds = static_cast<long>(left + 0.5);
    return fmt::format("ETA {}:{:02}", seconds / 60, seconds % 60);
  }

  std::string label_;
  std::size_t total_;
  std::FILE* out_;
  bool terminal_;
  Clock::time_point start_;
  Clock::time_point last_draw_{};
  std::size_t last_tenth_ = 0;
  bool finished_ = false;
};

}  // namespace lowbit::cli
