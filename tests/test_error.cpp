#include <catch2/catch.hpp>

#include "lowbit/error.hpp"

TEST_CASE("error messages carry the file, tensor, shape and reason", "[error]") {
  const lowbit::io_error e("offset 90 is past the end of the file",
                           {"model.safetensors", "layers.0.wq", {64, 64}});
  CHECK(std::string(e.what()) ==
        "file 'model.safetensors': tensor 'layers.0.wq': shape [64, 64]: offset 90 is past the end "
        "of the file");
  CHECK(e.reason() == "offset 90 is past the end of the file");
  CHECK(e.context().tensor == "layers.0.wq");
}

TEST_CASE("an error without context is just its reason", "[error]") {
  const lowbit::invalid_argument e("bits must be 2..8");
  CHECK(std::string(e.what()) == "bits must be 2..8");
}

TEST_CASE("every lowbit exception derives from lowbit::error and std::runtime_error", "[error]") {
  auto throws_as_base = [](auto exception) {
    try {
      throw exception;
    } catch (const lowbit::error&) {
      return true;
    } catch (...) {
      return false;
    }
  };
  CHECK(throws_as_base(lowbit::invalid_argument("a")));
  CHECK(throws_as_base(lowbit::invalid_value("b")));
  CHECK(throws_as_base(lowbit::io_error("c")));
  CHECK(throws_as_base(lowbit::unsupported("d")));
  STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, lowbit::error>);
}
