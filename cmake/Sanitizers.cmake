# ASSETMV_SANITIZE=address -> ASan + UBSan; ASSETMV_SANITIZE=thread -> TSan.
# Applied to every target so that no library runs uninstrumented.
if(ASSETMV_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
elseif(ASSETMV_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(ASSETMV_SANITIZE)
  message(FATAL_ERROR "ASSETMV_SANITIZE must be 'address' or 'thread', not '${ASSETMV_SANITIZE}'")
endif()
