# A CTest helper: runs a command and checks its exit status (and optionally its output),
# which add_test's PASS_REGULAR_EXPRESSION cannot do together.
#
#   cmake -DCOMMAND="prog|arg1|arg2" -DEXPECTED=2 [-DMATCH=regex] -P expect_status.cmake
#
# COMMAND separates its words with "|" (a ";" would split the -D argument itself).
string(REPLACE "|" ";" command "${COMMAND}")
execute_process(COMMAND ${command} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status STREQUAL EXPECTED)
  message(FATAL_ERROR "exit status ${status}, expected ${EXPECTED}\n${out}${err}")
endif()
if(DEFINED MATCH AND NOT "${out}${err}" MATCHES "${MATCH}")
  message(FATAL_ERROR "the output does not match '${MATCH}':\n${out}${err}")
endif()
