# aurora_add_plugin(NAME <name> SOURCES <files...> [DEPS <targets...>])
#
# Builds plugins/<name> as a loadable module <name>.so: C/C++ with hidden
# visibility so that the only exported symbol is aurora_plugin_entry, linked
# against the SDK helpers, installed to lib/aurora/plugins.
include(GNUInstallDirs)  # out of tree too: installs to lib/aurora/plugins, not /aurora/plugins

function(aurora_add_plugin)
  cmake_parse_arguments(P "" "NAME" "SOURCES;DEPS" ${ARGN})
  if(NOT P_NAME OR NOT P_SOURCES)
    message(FATAL_ERROR "aurora_add_plugin: NAME and SOURCES are required")
  endif()
  set(_target aurora_plugin_${P_NAME})
  add_library(${_target} MODULE ${P_SOURCES})
  set_target_properties(${_target} PROPERTIES
    OUTPUT_NAME ${P_NAME}
    PREFIX ""
    LIBRARY_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/plugins"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_link_libraries(${_target} PRIVATE Aurora::sdk ${P_DEPS})
  if(TARGET aurora_build_flags)  # in-tree: the project's warning flags
    target_link_libraries(${_target} PRIVATE aurora_build_flags)
  endif()
  # A plugin must resolve every symbol at link time: a missing one is a build
  # error, not a dlopen failure in production. And it exports one symbol:
  # hidden visibility does not cover template instantiations from the C++
  # standard library, so a version script makes the rule hold for C++ too.
  set(_map "${CMAKE_CURRENT_BINARY_DIR}/aurora_plugin.map")
  if(NOT EXISTS "${_map}")
    file(WRITE "${_map}" "{ global: aurora_plugin_entry; local: *; };\n")
  endif()
  target_link_options(${_target} PRIVATE -Wl,--no-undefined "-Wl,--version-script=${_map}")
  install(TARGETS ${_target} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/aurora/plugins)
endfunction()
