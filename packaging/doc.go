// Package packaging holds what installs and ships edgetrack: the systemd
// units (systemd/), used by `make install`, beside the Dockerfile and
// compose.yaml at the repository root. Its tests install into a temporary
// tree and run what was installed.
package packaging
