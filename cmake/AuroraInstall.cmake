# cmake --install: headers, the SDK library with a CMake package
# (find_package(Aurora) -> Aurora::sdk) and a pkg-config file (DESIGN §8).
include(CMakePackageConfigHelpers)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/sdk/include/aurora"
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(FILES "${CMAKE_BINARY_DIR}/generated/include/aurora/version.h"
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/aurora)

install(TARGETS aurora_sdk EXPORT AuroraTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT AuroraTargets NAMESPACE Aurora::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Aurora)

configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/AuroraConfig.cmake.in"
  "${CMAKE_BINARY_DIR}/AuroraConfig.cmake"
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Aurora)
write_basic_package_version_file("${CMAKE_BINARY_DIR}/AuroraConfigVersion.cmake"
  COMPATIBILITY SameMajorVersion)
install(FILES "${CMAKE_BINARY_DIR}/AuroraConfig.cmake"
  "${CMAKE_BINARY_DIR}/AuroraConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/AuroraPlugin.cmake"
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Aurora)

# ${pcfiledir}-relative (pkg-config sets it to the .pc's folder), so an install
# made with --prefix, or moved, is found where it is.
file(RELATIVE_PATH AURORA_PC_PREFIX_FROM_PCDIR "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
configure_file("${PROJECT_SOURCE_DIR}/cmake/aurora.pc.in"
  "${CMAKE_BINARY_DIR}/aurora.pc" @ONLY)
install(FILES "${CMAKE_BINARY_DIR}/aurora.pc"
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Profiles and the web client (DESIGN §8). Profiles that need plugins not
# written yet are added with those plugins.
install(DIRECTORY "${PROJECT_SOURCE_DIR}/samples/config/" DESTINATION ${CMAKE_INSTALL_DATADIR}/aurora/config
  FILES_MATCHING PATTERN "*.json")
install(DIRECTORY "${PROJECT_SOURCE_DIR}/samples/web/" DESTINATION ${CMAKE_INSTALL_DATADIR}/aurora/web)
