// Package pkgtest tests what makercast ships rather than its code: the
// packaging files (here, in make test), the cross-built binaries under
// qemu-user (build tag cross, make cross-test) and the .deb installed and
// run as a systemd service in a VM (build tag pkgtest, make package-test).
// README.md says what each proves and what it costs.
package pkgtest
