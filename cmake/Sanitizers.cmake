# ASSETMV_SANITIZE=address -> ASan + UBSan; ASSETMV_SANITIZE=thread -> TSan.
# Applied to every target so that no library runs uninstrumented.
# -O1 with line tables only (-g1), after the build type's -O2 -g: what the
# sanitizers' docs advise, stack traces keep their files and lines, and the
# build takes half the time (src/cli/migrate_command.cpp under ASan+UBSan:
# 82 s at -O2 -g, 35 s at -O1 -g1; under TSan 23 s and 13 s).
if(ASSETMV_SANITIZE)
  add_compile_options(-O1 -g1)
endif()
if(ASSETMV_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
elseif(ASSETMV_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(ASSETMV_SANITIZE)
  message(FATAL_ERROR "ASSETMV_SANITIZE must be 'address' or 'thread', not '${ASSETMV_SANITIZE}'")
endif()
