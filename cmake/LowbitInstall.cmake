# Install the headers, both library targets and a package config, so that
# `find_package(lowbit 0.1 REQUIRED)` works from an install prefix.
include(CMakePackageConfigHelpers)

set(LOWBIT_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/lowbit")

install(DIRECTORY include/lowbit DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS lowbit_headers lowbit lowbit_cuda EXPORT lowbitTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}"
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

# pkg-config, for build systems other than CMake: `pkg-config --cflags --libs lowbit`. A static
# lowbit needs OpenMP's runtime and PCRE2 at the final link; a shared one carries them.
if(LOWBIT_SHARED)
  set(LOWBIT_PC_LIBS "-L\${libdir} -llowbit")
  set(LOWBIT_PC_LIBS_PRIVATE "${OpenMP_CXX_FLAGS}")
else()
  set(LOWBIT_PC_LIBS "-L\${libdir} -llowbit ${OpenMP_CXX_FLAGS} -lpcre2-8")
  set(LOWBIT_PC_LIBS_PRIVATE "")
endif()
# The prefix is found from the .pc file's own place, so `cmake --install --prefix` anywhere works.
file(RELATIVE_PATH LOWBIT_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
configure_file(cmake/lowbit.pc.in "${CMAKE_CURRENT_BINARY_DIR}/lowbit.pc" @ONLY)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/lowbit.pc"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
