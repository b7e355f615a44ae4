# Warnings and sanitizers for every Aurora target (not for third-party code).
add_library(aurora_build_flags INTERFACE)
target_compile_options(aurora_build_flags INTERFACE -Wall -Wextra -Wshadow -Wformat=2)
if(AURORA_WERROR)
  target_compile_options(aurora_build_flags INTERFACE -Werror)
endif()
# GCC 12 at -O3 (Release) reports -Wrestrict inside libstdc++'s char_traits
# for plain std::string operator+ chains (GCC bug 105651, fixed in 13): a
# false positive in every other file. Kept a warning there, not an error.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
   AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(aurora_build_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-error=restrict>)
endif()

if(AURORA_SANITIZE)
  # e.g. -DAURORA_SANITIZE=address,undefined
  set(_san "-fsanitize=${AURORA_SANITIZE}" -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_compile_options(${_san})
  add_link_options(-fsanitize=${AURORA_SANITIZE})
  message(STATUS "Aurora: sanitizers ${AURORA_SANITIZE}")
endif()
