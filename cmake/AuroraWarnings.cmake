# Warnings and sanitizers for every Aurora target (not for third-party code).
add_library(aurora_build_flags INTERFACE)
target_compile_options(aurora_build_flags INTERFACE -Wall -Wextra -Wshadow -Wformat=2)
if(AURORA_WERROR)
  target_compile_options(aurora_build_flags INTERFACE -Werror)
endif()

if(AURORA_SANITIZE)
  # e.g. -DAURORA_SANITIZE=address,undefined
  set(_san "-fsanitize=${AURORA_SANITIZE}" -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_compile_options(${_san})
  add_link_options(-fsanitize=${AURORA_SANITIZE})
  message(STATUS "Aurora: sanitizers ${AURORA_SANITIZE}")
endif()
