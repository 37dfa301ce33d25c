# Dependencies come from the system (Debian's packages); nothing is downloaded at build time.
include(GNUInstallDirs)

find_package(Eigen3 3.4 REQUIRED NO_MODULE)
# Debian's xsimd 8.1 export names an `xtl` target it never defines; xsimd itself does not need it.
if(NOT TARGET xtl)
  add_library(xtl INTERFACE IMPORTED)
endif()
find_package(xsimd 8.1 REQUIRED)
find_package(fmt 9 REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
# PCRE2 (JIT, UTF and Unicode properties): the pre-tokenizer regexes of the BPE tokenizers.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
