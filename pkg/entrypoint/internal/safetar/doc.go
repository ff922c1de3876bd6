// Package safetar extracts a tar archive into a directory confined with os.Root. It rejects, as a
// whole, archives with path traversal, absolute names, links that escape, devices, FIFOs, setuid or
// setgid bits, duplicate names or truncation, and enforces size and count limits. It does not
// clean up after a rejection: extract into a fresh staging directory and remove it on error.
package safetar
