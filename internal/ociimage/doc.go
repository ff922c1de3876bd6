// Package ociimage writes and reads OCI image layouts (oci-layout,
// index.json, blobs/sha256/…) for podkit's static binaries with the standard
// library alone: one layer holding the binary and a passwd entry for the
// non-root user, on an empty base. It needs no container engine and pushes
// nothing; copy the layout to a registry with skopeo, crane or oras.
package ociimage
