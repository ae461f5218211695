// Package clustertest holds the system tests: they build the real
// zaqar-server binary once per run, start clusters of it as separate
// processes on loopback ports, drive them with real clients (gophercloud,
// python-zaqarclient, the openstack CLI and plain HTTP), and kill, stop and
// restart the processes to check that acknowledged writes survive and that
// a node resumes from its own store.
//
// Run them with:
//
//	go test -p 1 -count=1 -v ./cluster-test/
//
// Every process's output goes to a file that the tests print when they
// fail. The Python parts need /usr/bin/python3 with Debian's
// python3-zaqarclient and python3-openstackclient; the tests fail, not
// skip, when those are missing.
package clustertest
