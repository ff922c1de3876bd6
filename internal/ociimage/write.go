package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Media types and file names of the OCI image specification (v1.1).
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"

	// LayoutFile marks a directory as an OCI image layout.
	LayoutFile = "oci-layout"
	// IndexFile is the layout's entry point.
	IndexFile = "index.json"
	// LayoutVersion is the layout version written to LayoutFile.
	LayoutVersion = "1.0.0"

	// AnnotationRefName names an image in index.json (its tag).
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationCreated is the build time, RFC 3339.
	AnnotationCreated = "org.opencontainers.image.created"
)

// DefaultUser is the numeric non-root user:group images run as (distroless'
// "nonroot"), so that runAsNonRoot admits them without a name lookup.
const DefaultUser = "65532:65532"

// Options describe the image Write builds. Binary is required.
type Options struct {
	// Binary is the path of a statically linked ELF executable to put in the
	// image. A dynamically linked one is refused: the base is empty, so its
	// loader would be missing (build with CGO_ENABLED=0).
	Binary string
	// Path is where the binary lives in the image. Default "/" + the
	// binary's base name.
	Path string
	// Files are further static binaries to add, by absolute path in the
	// image (a test image holding a shell beside podkit's binaries).
	// Default none.
	Files []ExtraFile
	// Links are absolute paths added to the image as symbolic links to
	// Path, e.g. /bin/sh for a multi-call binary such as busybox. Default
	// none.
	Links []string
	// Entrypoint is the image's entrypoint. Default [Path].
	Entrypoint []string
	// Cmd are the default arguments after Entrypoint. Default none.
	Cmd []string
	// User is "uid:gid" (numeric, so no passwd lookup is needed). Default
	// DefaultUser. A passwd and group file naming it are added to the layer.
	User string
	// Env is the image's environment. Default ["PATH=/"].
	Env []string
	// Labels are set in the image config and, as annotations, on the
	// manifest (org.opencontainers.image.title, .version, .source, ...).
	// Default none; AnnotationCreated is always added.
	Labels map[string]string
	// OS and Architecture of the image. Default "linux" and the binary's
	// ELF machine (amd64, arm64, ...).
	OS, Architecture string
	// RefName is the tag recorded in index.json. Default "latest".
	RefName string
	// Created is the build time written to the config and every file of
	// the layer. Default: $SOURCE_DATE_EPOCH, else the Unix epoch, so that
	// builds of the same binary are byte-for-byte identical.
	Created time.Time
}

// ExtraFile is one more executable file of an image.
type ExtraFile struct {
	// Path in the image: clean and absolute.
	Path string
	// Source is the file on this machine to copy, statically linked.
	Source string
}

func (o *Options) setDefaults() error {
	if o.Path == "" {
		o.Path = "/" + filepath.Base(o.Binary)
	}
	if len(o.Entrypoint) == 0 {
		o.Entrypoint = []string{o.Path}
	}
	if o.User == "" {
		o.User = DefaultUser
	}
	if o.Env == nil {
		o.Env = []string{"PATH=/"}
	}
	if o.OS == "" {
		o.OS = "linux"
	}
	if o.RefName == "" {
		o.RefName = "latest"
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0).UTC()
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			sec, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds: unset it or fix it", s)
			}
			o.Created = time.Unix(sec, 0).UTC()
		}
	}
	return nil
}

func (o *Options) validate() error {
	var errs []error
	if o.Binary == "" {
		errs = append(errs, errors.New("Options.Binary is empty: give the path of a static binary"))
	}
	if !path.IsAbs(o.Path) || path.Clean(o.Path) != o.Path || o.Path == "/" {
		errs = append(errs, fmt.Errorf("Options.Path %q: use a clean absolute file path such as /podkit", o.Path))
	}
	if _, _, err := parseUser(o.User); err != nil {
		errs = append(errs, err)
	}
	for i, f := range o.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == o.Path || slices.Contains(o.Links, f.Path) || strings.HasPrefix(f.Path, "/etc/") || f.Path == "/tmp" || f.Path == "/etc" {
			errs = append(errs, fmt.Errorf("Options.Files[%d].Path %q: use a clean absolute file path other than Path, a link, /etc/… and /tmp", i, f.Path))
		}
		if f.Source == "" {
			errs = append(errs, fmt.Errorf("Options.Files[%d].Source is empty: give the path of a static binary", i))
		}
	}
	for i, l := range o.Links {
		if !path.IsAbs(l) || path.Clean(l) != l || l == "/" || l == o.Path || strings.HasPrefix(l, "/etc/") || l == "/etc" || l == "/tmp" {
			errs = append(errs, fmt.Errorf("Options.Links[%d] %q: use a clean absolute file path other than Path, /etc/… and /tmp, such as /bin/sh", i, l))
		}
	}
	return errors.Join(errs...)
}

func parseUser(s string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("Options.User %q: use numeric uid:gid such as %s", s, DefaultUser)
	}
	return uid, gid, nil
}

// Descriptor points at a blob (OCI content descriptor).
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

// Platform is the OS and CPU an image runs on.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Index is index.json, and the blob of a multi-platform image index.
type Index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Manifests     []Descriptor      `json:"manifests"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Manifest is an image manifest.
type Manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        Descriptor        `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Config is an image configuration.
type Config struct {
	Created      string          `json:"created,omitempty"`
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	Config       ContainerConfig `json:"config"`
	RootFS       RootFS          `json:"rootfs"`
	History      []History       `json:"history,omitempty"`
}

// ContainerConfig is how a container of the image runs.
type ContainerConfig struct {
	User       string            `json:"User,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

// RootFS lists the uncompressed layer digests.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// History describes how a layer was made.
type History struct {
	Created   string `json:"created,omitempty"`
	CreatedBy string `json:"created_by,omitempty"`
}

// Write builds the image described by opts and writes it as an OCI image
// layout into dir (created if missing). An image already in dir is
// replaced: index.json lists only this one and blobs it does not reference
// are removed. It returns the manifest's descriptor,
// whose Digest is the image's digest.
func Write(dir string, opts Options) (*Descriptor, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	manifestDesc, blobs, err := writeImage(dir, &opts)
	if err != nil {
		return nil, err
	}
	manifestDesc.Annotations = map[string]string{AnnotationRefName: opts.RefName}
	if err := writeIndexJSON(dir, *manifestDesc); err != nil {
		return nil, err
	}
	if err := removeUnreferenced(dir, blobs...); err != nil {
		return nil, err
	}
	return manifestDesc, nil
}

// WriteIndex writes one image per element of images, each for its own
// platform, and an image index over them tagged refName: a multi-arch image
// that a runtime resolves to its own platform. The layout in dir is replaced
// as Write replaces it. Each image's Architecture defaults to its binary's
// ELF machine; two images of the same OS and architecture are refused, as is
// an image whose RefName is set to something other than refName. It returns
// the image index's descriptor, whose Digest is the multi-arch image's
// digest.
func WriteIndex(dir, refName string, images []Options) (*Descriptor, error) {
	if refName == "" {
		refName = "latest"
	}
	if len(images) == 0 {
		return nil, errors.New("WriteIndex: no images: give one Options per platform")
	}
	var errs []error
	seen := map[Platform]int{}
	for i := range images {
		o := &images[i]
		if o.RefName != "" && o.RefName != refName {
			errs = append(errs, fmt.Errorf("images[%d].RefName %q differs from the index's %q: leave it empty", i, o.RefName, refName))
		}
		o.RefName = refName
		if err := o.setDefaults(); err != nil {
			return nil, fmt.Errorf("images[%d]: %w", i, err)
		}
		if err := o.validate(); err != nil {
			errs = append(errs, fmt.Errorf("images[%d]: %w", i, err))
			continue
		}
		if o.Architecture == "" {
			arch, err := checkStatic(o.Binary)
			if err != nil {
				errs = append(errs, fmt.Errorf("images[%d]: %w", i, err))
				continue
			}
			o.Architecture = arch
		}
		p := Platform{OS: o.OS, Architecture: o.Architecture}
		if j, dup := seen[p]; dup {
			errs = append(errs, fmt.Errorf("images[%d] and images[%d] are both %s/%s: give each platform once", j, i, p.OS, p.Architecture))
		}
		seen[p] = i
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var manifests []Descriptor
	var blobs []string
	for i := range images {
		d, b, err := writeImage(dir, &images[i])
		if err != nil {
			return nil, fmt.Errorf("images[%d]: %w", i, err)
		}
		manifests = append(manifests, *d)
		blobs = append(blobs, b...)
	}
	// The index carries the shared labels (title, version, source, ...)
	// as annotations, as the manifests do.
	annotations := maps.Clone(images[0].Labels)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationCreated] = images[0].Created.Format(time.RFC3339)
	indexJSON, err := json.Marshal(Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: manifests, Annotations: annotations})
	if err != nil {
		return nil, fmt.Errorf("encode image index: %w", err)
	}
	indexDesc, err := writeBlob(dir, MediaTypeIndex, indexJSON)
	if err != nil {
		return nil, err
	}
	indexDesc.Annotations = map[string]string{AnnotationRefName: refName}
	if err := writeIndexJSON(dir, *indexDesc); err != nil {
		return nil, err
	}
	if err := removeUnreferenced(dir, append(blobs, indexDesc.Digest)...); err != nil {
		return nil, err
	}
	return indexDesc, nil
}

// writeImage writes the layer, config and manifest blobs of one image
// (opts defaulted and valid) and returns the manifest's descriptor, with
// its platform, and the digests of the blobs it wrote.
func writeImage(dir string, opts *Options) (*Descriptor, []string, error) {
	bin, err := os.ReadFile(opts.Binary)
	if err != nil {
		return nil, nil, fmt.Errorf("read binary: %w", err)
	}
	arch, err := checkStatic(opts.Binary)
	if err != nil {
		return nil, nil, err
	}
	if opts.Architecture == "" {
		opts.Architecture = arch
	}
	uid, gid, _ := parseUser(opts.User)
	extra := make([][]byte, len(opts.Files))
	for i, f := range opts.Files {
		if _, err := checkStatic(f.Source); err != nil {
			return nil, nil, fmt.Errorf("Options.Files[%d]: %w", i, err)
		}
		if extra[i], err = os.ReadFile(f.Source); err != nil {
			return nil, nil, fmt.Errorf("read Options.Files[%d]: %w", i, err)
		}
	}

	layerTar, err := buildLayer(bin, extra, *opts, uid, gid)
	if err != nil {
		return nil, nil, err
	}
	layerGz, err := gzipBytes(layerTar)
	if err != nil {
		return nil, nil, err
	}
	created := opts.Created.Format(time.RFC3339)
	labels := maps.Clone(opts.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[AnnotationCreated] = created
	cfg := Config{
		Created:      created,
		Architecture: opts.Architecture,
		OS:           opts.OS,
		Config: ContainerConfig{
			User:       opts.User,
			Env:        opts.Env,
			Entrypoint: opts.Entrypoint,
			Cmd:        opts.Cmd,
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS:  RootFS{Type: "layers", DiffIDs: []string{digestOf(layerTar)}},
		History: []History{{Created: created, CreatedBy: "podkit hack/image: " + opts.Path}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("encode image config: %w", err)
	}

	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, nil, fmt.Errorf("create layout directory: %w", err)
	}
	layerDesc, err := writeBlob(dir, MediaTypeLayer, layerGz)
	if err != nil {
		return nil, nil, err
	}
	cfgDesc, err := writeBlob(dir, MediaTypeConfig, cfgJSON)
	if err != nil {
		return nil, nil, err
	}
	manifest := Manifest{
		SchemaVersion: 2,
		MediaType:     MediaTypeManifest,
		Config:        *cfgDesc,
		Layers:        []Descriptor{*layerDesc},
		Annotations:   labels,
	}
	manifestJSON, err := json.Marshal(manifest)
	if err != nil {
		return nil, nil, fmt.Errorf("encode image manifest: %w", err)
	}
	manifestDesc, err := writeBlob(dir, MediaTypeManifest, manifestJSON)
	if err != nil {
		return nil, nil, err
	}
	manifestDesc.Platform = &Platform{Architecture: opts.Architecture, OS: opts.OS}
	return manifestDesc, []string{layerDesc.Digest, cfgDesc.Digest, manifestDesc.Digest}, nil
}

// writeIndexJSON writes the layout's oci-layout file and an index.json
// holding the one descriptor top.
func writeIndexJSON(dir string, top Descriptor) error {
	index := Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{top}}
	indexJSON, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return fmt.Errorf("encode image index: %w", err)
	}
	layout := []byte(`{"imageLayoutVersion":"` + LayoutVersion + `"}` + "\n")
	if err := writeFileAtomic(filepath.Join(dir, LayoutFile), layout); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, IndexFile), append(indexJSON, '\n'))
}

// checkStatic refuses binaries that need a dynamic loader and returns the
// OCI architecture of the ELF machine.
func checkStatic(name string) (string, error) {
	f, err := elf.Open(name)
	if err != nil {
		return "", fmt.Errorf("binary %s is not an ELF executable (build it for linux): %w", name, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("binary %s is dynamically linked and cannot run on an empty base: build it with CGO_ENABLED=0", name)
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_386:
		return "386", nil
	case elf.EM_ARM:
		return "arm", nil
	case elf.EM_PPC64:
		return "ppc64le", nil
	case elf.EM_S390:
		return "s390x", nil
	case elf.EM_RISCV:
		return "riscv64", nil
	default:
		return "", fmt.Errorf("binary %s: unsupported ELF machine %s: set Options.Architecture", name, f.Machine)
	}
}

// buildLayer returns the layer's uncompressed tar: the parent directories
// of the binary, the binary (0755, root-owned so the non-root user cannot
// replace it), /etc/passwd and /etc/group naming the user, and /tmp.
func buildLayer(bin []byte, extra [][]byte, opts Options, uid, gid int) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := opts.Created
	dirs := map[string]bool{"etc": true, "tmp": true}
	paths := append([]string{opts.Path}, opts.Links...)
	for _, f := range opts.Files {
		paths = append(paths, f.Path)
	}
	for _, p := range paths {
		for d := path.Dir(strings.TrimPrefix(p, "/")); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, fmt.Errorf("write layer directory %s: %w", d, err)
		}
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, gid)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", gid)
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"etc/group", 0o644, []byte(group)},
		{"etc/passwd", 0o644, []byte(passwd)},
		{strings.TrimPrefix(opts.Path, "/"), 0o755, bin},
	}
	for i, f := range opts.Files {
		files = append(files, struct {
			name string
			mode int64
			data []byte
		}{strings.TrimPrefix(f.Path, "/"), 0o755, extra[i]})
	}
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write layer file %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("write layer file %s: %w", f.name, err)
		}
	}
	for _, l := range slices.Sorted(slices.Values(opts.Links)) {
		hdr := &tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(l, "/"), Linkname: opts.Path, Mode: 0o777, ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write layer link %s: %w", l, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("finish layer: %w", err)
	}
	return buf.Bytes(), nil
}

// gzipBytes compresses with a header that carries no name or time, so the
// compressed layer is reproducible too.
func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("compress layer: %w", err)
	}
	if _, err := zw.Write(data); err != nil {
		return nil, fmt.Errorf("compress layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress layer: %w", err)
	}
	return buf.Bytes(), nil
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func blobPath(dir, digest string) (string, error) {
	hexSum, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexSum) != sha256.Size*2 {
		return "", fmt.Errorf("digest %q: only sha256 digests are supported", digest)
	}
	if _, err := hex.DecodeString(hexSum); err != nil {
		return "", fmt.Errorf("digest %q is not hex", digest)
	}
	return filepath.Join(dir, "blobs", "sha256", hexSum), nil
}

func writeBlob(dir, mediaType string, data []byte) (*Descriptor, error) {
	d := &Descriptor{MediaType: mediaType, Digest: digestOf(data), Size: int64(len(data))}
	p, err := blobPath(dir, d.Digest)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(p, data); err != nil {
		return nil, err
	}
	return d, nil
}

// removeUnreferenced deletes the blobs of an earlier image in dir.
func removeUnreferenced(dir string, keep ...string) error {
	blobDir := filepath.Join(dir, "blobs", "sha256")
	entries, err := os.ReadDir(blobDir)
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, e := range entries {
		if slices.Contains(keep, "sha256:"+e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(blobDir, e.Name())); err != nil {
			return fmt.Errorf("remove stale blob: %w", err)
		}
	}
	return nil
}

func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// WriteArchiveFile writes the layout in dir as an oci-archive file, creating
// its parent directory. This is what `podkit dev import` and containerd's
// `ctr images import` load.
func WriteArchiveFile(name, dir string) (err error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("create archive directory: %w", err)
	}
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("create archive: %w", err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	return WriteArchive(f, dir)
}

// WriteArchive writes the layout in dir as one uncompressed tar stream to w
// (an "oci-archive" that skopeo, podman and crane can load).
func WriteArchive(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open layout %s: %w", dir, err)
	}
	defer root.Close()
	names := []string{LayoutFile, IndexFile}
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		return fmt.Errorf("list blobs of %s: %w", dir, err)
	}
	for _, b := range blobs {
		if b.Type().IsRegular() && !strings.HasPrefix(b.Name(), ".") {
			names = append(names, path.Join("blobs", "sha256", b.Name()))
		}
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
	}
	for _, n := range names {
		data, err := root.ReadFile(n)
		if err != nil {
			return fmt.Errorf("read %s: %w", n, err)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(data)), Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	return nil
}
