# Warnings for lowbit's own targets only; consumers never inherit them.
function(lowbit_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion)
  if(LOWBIT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
