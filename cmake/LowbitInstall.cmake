# Install the headers, both library targets and a package config, so that
# `find_package(lowbit 0.1 REQUIRED)` works from an install prefix.
include(CMakePackageConfigHelpers)

set(LOWBIT_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/lowbit")

install(DIRECTORY include/lowbit DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS lowbit_headers lowbit lowbit_cuda EXPORT lowbitTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(EXPORT lowbitTargets NAMESPACE lowbit:: DESTINATION "${LOWBIT_CMAKE_DIR}")

configure_package_config_file(cmake/lowbitConfig.cmake.in
  "${CMAKE_CURRENT_BINARY_DIR}/lowbitConfig.cmake" INSTALL_DESTINATION "${LOWBIT_CMAKE_DIR}")
# 0.x releases make no promise across minor versions.
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/lowbitConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/lowbitConfig.cmake"
              "${CMAKE_CURRENT_BINARY_DIR}/lowbitConfigVersion.cmake"
        DESTINATION "${LOWBIT_CMAKE_DIR}")
