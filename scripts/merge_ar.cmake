# merge_ar.cmake - merge static archives into one (libdam.a) from an ar MRI
# script: cmake -DAR=ar -DMRI=libdam.mri -P merge_ar.cmake
execute_process(COMMAND ${AR} -M INPUT_FILE ${MRI} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${AR} -M < ${MRI} failed: ${rc}")
endif()
