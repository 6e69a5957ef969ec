package api_test

// helperEnv names the variable that would make the test binary a client
// run as another user (peercred_test.go); Windows tests run no such
// client, since a process cannot start another as a different user
// without that user's password.
const helperEnv = "VXWIRE_API_TEST_HELPER"

// helperMain is never selected on Windows.
func helperMain() int { return 1 }
