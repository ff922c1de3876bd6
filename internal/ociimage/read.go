package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Image is one image read back from a layout, every blob checked against
// its digest and size.
type Image struct {
	// Descriptor is the manifest's entry in index.json.
	Descriptor Descriptor
	Manifest   Manifest
	Config     Config
	// Layers are the compressed layer blobs, in manifest order.
	Layers [][]byte
}

// Read opens the layout in dir and returns the image tagged refName (any
// image when refName is ""). It verifies the layout version, every digest
// and size from index.json down to the layers, the media types, and that
// each layer's uncompressed digest matches the config's diff_ids: what
// crane validate does, without crane. A multi-platform image (an image
// index, see WriteIndex) is refused: read it with ReadAll.
func Read(dir, refName string) (*Image, error) {
	desc, err := readTop(dir, refName)
	if err != nil {
		return nil, err
	}
	if desc.MediaType == MediaTypeIndex {
		return nil, fmt.Errorf("%s: %q is a multi-platform image index: read it with ReadAll", IndexFile, refName)
	}
	return readImage(dir, *desc)
}

// ReadAll returns every image tagged refName, verified as Read verifies
// one: the image itself, or each platform's image of an image index. For
// an index it also checks that each entry's platform matches its image's
// config and that no platform appears twice. Each Image's Descriptor is its
// entry in the index, platform included.
func ReadAll(dir, refName string) ([]*Image, error) {
	desc, err := readTop(dir, refName)
	if err != nil {
		return nil, err
	}
	if desc.MediaType != MediaTypeIndex {
		img, err := readImage(dir, *desc)
		if err != nil {
			return nil, err
		}
		return []*Image{img}, nil
	}
	var index Index
	if err := readBlobJSON(dir, *desc, MediaTypeIndex, &index); err != nil {
		return nil, err
	}
	if index.SchemaVersion != 2 || len(index.Manifests) == 0 {
		return nil, fmt.Errorf("image index %s: schemaVersion %d with %d manifests, want 2 and at least one", desc.Digest, index.SchemaVersion, len(index.Manifests))
	}
	seen := map[Platform]bool{}
	var images []*Image
	for i, m := range index.Manifests {
		if m.Platform == nil {
			return nil, fmt.Errorf("image index %s: manifests[%d] has no platform", desc.Digest, i)
		}
		if seen[*m.Platform] {
			return nil, fmt.Errorf("image index %s: platform %s/%s listed twice", desc.Digest, m.Platform.OS, m.Platform.Architecture)
		}
		seen[*m.Platform] = true
		img, err := readImage(dir, m)
		if err != nil {
			return nil, fmt.Errorf("image index %s: manifests[%d]: %w", desc.Digest, i, err)
		}
		if img.Config.OS != m.Platform.OS || img.Config.Architecture != m.Platform.Architecture {
			return nil, fmt.Errorf("image index %s: manifests[%d] says %s/%s but its config is %s/%s", desc.Digest, i, m.Platform.OS, m.Platform.Architecture, img.Config.OS, img.Config.Architecture)
		}
		images = append(images, img)
	}
	return images, nil
}

// readTop checks the layout's version and returns index.json's entry
// tagged refName (the first when refName is "").
func readTop(dir, refName string) (*Descriptor, error) {
	var layout struct {
		ImageLayoutVersion string `json:"imageLayoutVersion"`
	}
	if err := readJSON(filepath.Join(dir, LayoutFile), &layout); err != nil {
		return nil, err
	}
	if layout.ImageLayoutVersion != LayoutVersion {
		return nil, fmt.Errorf("%s: imageLayoutVersion %q, want %q", LayoutFile, layout.ImageLayoutVersion, LayoutVersion)
	}
	var index Index
	if err := readJSON(filepath.Join(dir, IndexFile), &index); err != nil {
		return nil, err
	}
	if index.SchemaVersion != 2 {
		return nil, fmt.Errorf("%s: schemaVersion %d, want 2", IndexFile, index.SchemaVersion)
	}
	for i, m := range index.Manifests {
		if refName == "" || m.Annotations[AnnotationRefName] == refName {
			return &index.Manifests[i], nil
		}
	}
	return nil, fmt.Errorf("%s: no image tagged %q", IndexFile, refName)
}

// readImage reads and verifies the image whose manifest desc points at.
func readImage(dir string, desc Descriptor) (*Image, error) {
	img := &Image{Descriptor: desc}
	if err := readBlobJSON(dir, desc, MediaTypeManifest, &img.Manifest); err != nil {
		return nil, err
	}
	if err := readBlobJSON(dir, img.Manifest.Config, MediaTypeConfig, &img.Config); err != nil {
		return nil, err
	}
	if len(img.Manifest.Layers) != len(img.Config.RootFS.DiffIDs) {
		return nil, fmt.Errorf("manifest has %d layers but config has %d diff_ids", len(img.Manifest.Layers), len(img.Config.RootFS.DiffIDs))
	}
	for i, l := range img.Manifest.Layers {
		data, err := ReadBlob(dir, l)
		if err != nil {
			return nil, err
		}
		if l.MediaType != MediaTypeLayer {
			return nil, fmt.Errorf("layer %d: media type %q, want %q", i, l.MediaType, MediaTypeLayer)
		}
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("layer %d: decompress: %w", i, err)
		}
		if got, want := digestOf(raw), img.Config.RootFS.DiffIDs[i]; got != want {
			return nil, fmt.Errorf("layer %d: uncompressed digest %s, config diff_id %s", i, got, want)
		}
		img.Layers = append(img.Layers, data)
	}
	return img, nil
}

// ReadBlob returns the blob d points at, after checking its size and digest.
func ReadBlob(dir string, d Descriptor) ([]byte, error) {
	p, err := blobPath(dir, d.Digest)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d.Digest, err)
	}
	if int64(len(data)) != d.Size {
		return nil, fmt.Errorf("blob %s: size %d, descriptor says %d", d.Digest, len(data), d.Size)
	}
	if got := digestOf(data); got != d.Digest {
		return nil, fmt.Errorf("blob %s: content digest is %s", d.Digest, got)
	}
	return data, nil
}

func readBlobJSON(dir string, d Descriptor, mediaType string, v any) error {
	if d.MediaType != mediaType {
		return fmt.Errorf("blob %s: media type %q, want %q", d.Digest, d.MediaType, mediaType)
	}
	data, err := ReadBlob(dir, d)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode blob %s: %w", d.Digest, err)
	}
	return nil
}

func readJSON(name string, v any) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("read %s (is this an OCI image layout?): %w", name, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", name, err)
	}
	return nil
}

// File is one entry of a layer.
type File struct {
	Header tar.Header
	Data   []byte
}

// LayerFiles decompresses a gzip layer and returns its entries by path
// (without a leading "/" or "./").
func LayerFiles(layer []byte) (map[string]File, error) {
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		return nil, fmt.Errorf("open layer: %w", err)
	}
	tr := tar.NewReader(zr)
	files := map[string]File{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read layer: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read layer entry %s: %w", hdr.Name, err)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/")
		files[name] = File{Header: *hdr, Data: data}
	}
}
