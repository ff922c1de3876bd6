// Command image writes an OCI image layout (and optionally an oci-archive
// tarball) holding one static binary, without a container engine. make image
// runs it for podkit and podkit-entrypoint:
//
//	go run ./hack/image --binary bin/podkit --out _output/image/podkit --tag dev
//
// Given --binary more than once (one static binary per architecture), it
// writes a multi-platform image: an OCI image index over one image per
// binary, which a runtime resolves to its own platform. make release does
// that for linux/amd64 and linux/arm64.
//
// It re-reads what it wrote, verifying every digest, and prints the image's
// digest, entrypoint and user.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/podkit-dev/podkit/internal/ociimage"
)

type labelFlag map[string]string

func (l labelFlag) String() string { return fmt.Sprint(map[string]string(l)) }

func (l labelFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("label %q: use key=value", s)
	}
	l[k] = v
	return nil
}

type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	var binaries stringsFlag
	fs.Var(&binaries, "binary", "static binary to put in the image (required; build with CGO_ENABLED=0); repeat it with one binary per architecture for a multi-platform image")
	entrypoint := fs.String("entrypoint", "", "path of the binary in the image, also the entrypoint (default /<binary name>)")
	out := fs.String("out", "", "directory of the OCI image layout to write (required)")
	archive := fs.String("archive", "", "also write the layout as an oci-archive tarball to this file")
	tag := fs.String("tag", "dev", "tag recorded in index.json (org.opencontainers.image.ref.name)")
	user := fs.String("user", ociimage.DefaultUser, "numeric uid:gid the image runs as")
	version := fs.String("version", "dev", "org.opencontainers.image.version label")
	var links stringsFlag
	fs.Var(&links, "link", "absolute path to add as a symbolic link to the binary, e.g. /bin/sh for busybox (repeatable)")
	var files stringsFlag
	fs.Var(&files, "file", "another static binary to add, as /path/in/image=source (repeatable)")
	labels := labelFlag{}
	fs.Var(labels, "label", "extra label key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(binaries) == 0 || *out == "" {
		return errors.New("--binary and --out are required")
	}
	name := filepath.Base(binaries[0])
	for _, b := range binaries[1:] {
		if filepath.Base(b) != name && *entrypoint == "" {
			return fmt.Errorf("--binary %s and %s have different names: give --entrypoint, the one path of the binary in every platform's image", binaries[0], b)
		}
	}
	if *entrypoint != "" {
		name = filepath.Base(*entrypoint)
	}
	all := map[string]string{
		"org.opencontainers.image.title":    name,
		"org.opencontainers.image.version":  *version,
		"org.opencontainers.image.source":   "https://github.com/podkit-dev/podkit",
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.vendor":   "podkit",
	}
	for k, v := range labels {
		all[k] = v
	}
	var extra []ociimage.ExtraFile
	for _, f := range files {
		p, src, ok := strings.Cut(f, "=")
		if !ok || p == "" || src == "" {
			return fmt.Errorf("--file %q: use /path/in/image=source", f)
		}
		extra = append(extra, ociimage.ExtraFile{Path: p, Source: src})
	}
	var images []ociimage.Options
	for _, b := range binaries {
		images = append(images, ociimage.Options{
			Binary:  b,
			Path:    *entrypoint,
			Links:   links,
			Files:   extra,
			User:    *user,
			Labels:  all,
			RefName: *tag,
		})
	}
	var desc *ociimage.Descriptor
	var err error
	if len(images) == 1 {
		desc, err = ociimage.Write(*out, images[0])
	} else {
		desc, err = ociimage.WriteIndex(*out, *tag, images)
	}
	if err != nil {
		return err
	}
	imgs, err := ociimage.ReadAll(*out, *tag)
	if err != nil {
		return fmt.Errorf("verify written image: %w", err)
	}
	if *archive != "" {
		if err := ociimage.WriteArchiveFile(*archive, *out); err != nil {
			return err
		}
	}
	fmt.Printf("%s:%s %s\n", *out, *tag, desc.Digest)
	for _, img := range imgs {
		var size int64
		for _, l := range img.Manifest.Layers {
			size += l.Size
		}
		fmt.Printf("  %s/%s %s entrypoint=%v user=%s layer=%.1f MiB\n",
			img.Config.OS, img.Config.Architecture, img.Descriptor.Digest,
			img.Config.Config.Entrypoint, img.Config.Config.User, float64(size)/(1<<20))
	}
	return nil
}
