#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "lowbit/cpu_features.hpp"
#include "lowbit/error.hpp"
#include "lowbit/threads.hpp"

namespace {

// Sets an environment variable for one scope and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_.empty())
      ::unsetenv(name_);
    else
      ::setenv(name_, old_.c_str(), 1);
  }

 private:
  const char* name_;
  std::string old_;
};

}  // namespace

TEST_CASE("ISA names parse and print", "[cpu]") {
  for (auto isa : {lowbit::Isa::scalar, lowbit::Isa::avx2, lowbit::Isa::avx512})
    CHECK(lowbit::parse_isa(lowbit::to_string(isa)) == isa);
  CHECK_FALSE(lowbit::parse_isa("sse9").has_value());
}

TEST_CASE("the detected features are consistent", "[cpu]") {
  const auto& f = lowbit::cpu_features();
  if (f.avx2) CHECK(f.avx);
  if (f.avx512bw) CHECK(f.avx512f);
  if (f.avx512_vnni) CHECK(f.avx512f);
  CHECK(lowbit::supports(f, lowbit::Isa::scalar));
  CHECK(lowbit::supports(f, lowbit::best_isa()));
  if (lowbit::best_isa() == lowbit::Isa::avx512) CHECK(lowbit::supports(f, lowbit::Isa::avx2));
}

TEST_CASE("LOWBIT_ISA forces the instruction set, and rejects what cannot run", "[cpu]") {
  {
    ScopedEnv env("LOWBIT_ISA", "scalar");
    CHECK(lowbit::selected_isa() == lowbit::Isa::scalar);
  }
  {
    ScopedEnv env("LOWBIT_ISA", "pentium");
    CHECK_THROWS_AS(lowbit::selected_isa(), lowbit::unsupported);
  }
  for (auto isa : {lowbit::Isa::avx2, lowbit::Isa::avx512}) {
    ScopedEnv env("LOWBIT_ISA", lowbit::to_string(isa));
    if (lowbit::supports(lowbit::cpu_features(), isa))
      CHECK(lowbit::selected_isa() == isa);
    else
      CHECK_THROWS_AS(lowbit::selected_isa(), lowbit::unsupported);
  }
  {
    ScopedEnv env("LOWBIT_ISA", "");
    CHECK(lowbit::selected_isa() == lowbit::best_isa());
  }
}

TEST_CASE("set_threads sets the count every parallel loop uses, 0 restores the default",
          "[threads]") {
  const int initial = lowbit::thread_count();
  CHECK(initial >= 1);
  lowbit::set_threads(1);
  CHECK(lowbit::thread_count() == 1);
  lowbit::set_threads(3);
  CHECK(lowbit::thread_count() == 3);
  lowbit::set_threads(-2);  // taken as 0
  CHECK(lowbit::thread_count() == initial);
  lowbit::set_threads(0);
  CHECK(lowbit::thread_count() == initial);
}
