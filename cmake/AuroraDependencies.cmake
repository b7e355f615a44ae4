# Every external library, found once, as imported targets named Aurora::dep::*.
# Installed by scripts/bootstrap.sh (Debian packages).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

pkg_check_modules(LWS REQUIRED IMPORTED_TARGET libwebsockets>=4.1)
pkg_check_modules(UV REQUIRED IMPORTED_TARGET libuv>=1.30)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis>=0.14)
pkg_check_modules(MONGOC REQUIRED IMPORTED_TARGET libmongoc-1.0>=1.23)
pkg_check_modules(BSON REQUIRED IMPORTED_TARGET libbson-1.0>=1.23)
pkg_check_modules(JWT REQUIRED IMPORTED_TARGET libjwt>=1.10)
pkg_check_modules(XCRYPT REQUIRED IMPORTED_TARGET libxcrypt>=4.4)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson>=1.7)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib>=1.2.9)  # permessage-deflate (9-bit raw windows)
pkg_check_modules(CRYPTO REQUIRED IMPORTED_TARGET libcrypto>=3.0)  # rooms: direct room ids (SHA-256); JWKS keys
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl>=7.68)  # fetching an identity provider's JWKS URL

foreach(_dep IN ITEMS LWS UV HIREDIS MONGOC BSON JWT XCRYPT CJSON ZLIB CRYPTO CURL)
  string(TOLOWER ${_dep} _name)
  add_library(Aurora::dep::${_name} ALIAS PkgConfig::${_dep})
endforeach()

if(AURORA_BUILD_TESTS)
  find_package(GTest 1.12 REQUIRED)
  find_package(benchmark QUIET)
endif()

if(AURORA_BUILD_PYTHON)
  # Development.Embed: plugins/python_policy embeds the interpreter.
  find_package(Python 3.9 REQUIRED COMPONENTS Interpreter Development.Module Development.Embed)
  # The module uses py::set_error and list::clear (pybind11 2.12). Debian 12's
  # pybind11-dev is 2.10: the build scripts pass the venv's (requirements.txt).
  find_package(pybind11 2.12 CONFIG QUIET)
  if(NOT pybind11_FOUND)
    set(_seen ${pybind11_CONSIDERED_VERSIONS})
    list(REMOVE_DUPLICATES _seen)
    if(NOT _seen)
      set(_seen "none")
    endif()
    string(REPLACE ";" ", " _seen "${_seen}")
    message(FATAL_ERROR
      "pybind11 >= 2.12 is needed for the Python module (found: ${_seen}). "
      "scripts/bootstrap.sh installs one into .cache/venv; point CMake at it with "
      "-Dpybind11_DIR=$(.cache/venv/bin/python -m pybind11 --cmakedir), or configure with -DAURORA_BUILD_PYTHON=OFF.")
  endif()
endif()

# bson_t is declared with an alignment attribute that GCC drops (with a
# warning) whenever bson_t appears as a template argument: unique_ptr<bson_t>,
# vector<const bson_t *>. The warning says nothing about our code.
foreach(_t IN ITEMS PkgConfig::BSON PkgConfig::MONGOC)
  set_property(TARGET ${_t} APPEND PROPERTY
    INTERFACE_COMPILE_OPTIONS $<$<COMPILE_LANGUAGE:CXX>:-Wno-ignored-attributes>)
endforeach()
